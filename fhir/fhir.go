// Package fhir owns Haven's FHIR R4 surface apart from the record itself:
// which resource types and search parameters the API serves, how a search
// is parsed from a query and matched against a resource, and the
// documents it answers with (searchset Bundles, OperationOutcomes, the
// CapabilityStatement), written with a kept model library. How a record
// maps to resources is service's, one mapping for the export and the API;
// who may read what is policy's, decided by service's gate.
package fhir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sort"

	m "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// ContentType is every answer's media type.
const ContentType = "application/fhir+json"

// Param is a search parameter of a type: its name, FHIR type and the
// resource elements it reads.
type Param struct {
	Name   string
	Type   m.SearchParamType
	Fields []string // the elements read, first present wins
	Doc    string
}

// TypeSpec is what the API serves of one resource type.
type TypeSpec struct {
	// Read is true when the type answers GET [type]/[id].
	Read   bool
	Params []Param
	Doc    string
}

var (
	pID      = Param{Name: "_id", Type: m.SearchParamTypeToken, Fields: []string{"id"}, Doc: "The resource's id."}
	pPatient = Param{Name: "patient", Type: m.SearchParamTypeReference, Doc: "The patient (Patient/[id] or [id]); a patient's own when she is the caller."}
	pStatus  = Param{Name: "status", Type: m.SearchParamTypeToken, Fields: []string{"status"}}
	// pCount is the page size; the server's own _offset carries the paging
	// links' position.
	pCount = Param{Name: "_count", Type: m.SearchParamTypeNumber, Doc: "Page size, at most 100."}
)

func pDate(fields ...string) Param {
	return Param{Name: "date", Type: m.SearchParamTypeDate, Fields: fields, Doc: "With a prefix eq, lt, le, gt or ge; a date or a date and time."}
}

func pCode(field string) Param {
	return Param{Name: "code", Type: m.SearchParamTypeToken, Fields: []string{field}, Doc: "[system]|[code] or [code]."}
}

// Types is every resource type the API serves and how; the
// CapabilityStatement is written from it and searches are parsed by it,
// so the statement says exactly what is implemented.
var Types = map[string]TypeSpec{
	"Patient": {Read: true, Params: []Param{pID, pCount},
		Doc: "Search by _id, or with no parameter a patient's own record."},
	"Observation":       {Read: true, Params: []Param{pID, pPatient, pDate("effectiveDateTime", "issued"), pCode("code"), pStatus, pCount}, Doc: "Released lab results' values."},
	"DiagnosticReport":  {Read: true, Params: []Param{pID, pPatient, pDate("effectiveDateTime", "issued"), pCode("code"), pStatus, pCount}, Doc: "Released lab results."},
	"MedicationRequest": {Read: true, Params: []Param{pID, pPatient, pDate("authoredOn"), pCode("medicationCodeableConcept"), pStatus, pCount}, Doc: "Signed prescriptions."},
	"Appointment":       {Read: true, Params: []Param{pID, pPatient, pDate("start"), pStatus, pCount}, Doc: "Video visits."},
	"Communication":     {Read: true, Params: []Param{pID, pPatient, pDate("sent"), pStatus, pCount}, Doc: "Secure messages."},
	"DocumentReference": {Read: true, Params: []Param{pID, pPatient, pDate("date"), pCode("type"), pStatus, pCount}, Doc: "Signed visit notes and files (their metadata)."},
}

// TypeNames are Types' names, sorted.
func TypeNames() []string {
	out := make([]string, 0, len(Types))
	for k := range Types {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (t TypeSpec) param(name string) (Param, bool) {
	i := slices.IndexFunc(t.Params, func(p Param) bool { return p.Name == name })
	if i < 0 {
		return Param{}, false
	}
	return t.Params[i], true
}

// ETag is the weak entity tag of an answer's body.
func ETag(body []byte) string {
	h := sha256.Sum256(body)
	return `W/"` + hex.EncodeToString(h[:12]) + `"`
}

// resourceType returns the library's code for a type's name.
func resourceType(name string) m.ResourceType {
	var rt m.ResourceType
	b, _ := json.Marshal(name)
	_ = rt.UnmarshalJSON(b)
	return rt
}

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
	Read bool
	// Create, when set, is what POST [type] does.
	Create string
	Params []Param
	// Summary is the type's elements _summary=true keeps (besides
	// resourceType, id and meta): those R4 marks as summary that the
	// record maps.
	Summary []string
	Doc     string
}

var (
	pID      = Param{Name: "_id", Type: m.SearchParamTypeToken, Fields: []string{"id"}, Doc: "The resource's id."}
	pPatient = Param{Name: "patient", Type: m.SearchParamTypeReference, Doc: "The patient (Patient/[id] or [id]); a patient's own when she is the caller."}
	pStatus  = Param{Name: "status", Type: m.SearchParamTypeToken, Fields: []string{"status"}}
	// pCount is the page size; the server's own _offset carries the paging
	// links' position.
	pCount = Param{Name: "_count", Type: m.SearchParamTypeNumber, Doc: "Page size, at most 100."}
	// pSummary and pSort shape the answer rather than choose the
	// matches; they are listed with the search parameters so that the
	// statement names every parameter a search accepts.
	pSummary = Param{Name: "_summary", Type: m.SearchParamTypeToken, Doc: "true (the summary elements, tagged SUBSETTED), data (without the narrative), count (the total only) or false."}
)

// pSort is _sort over the keys a type sorts by: _id always, date when
// the type has it.
func pSort(date bool) Param {
	doc := "_id or -_id (descending); the default is the record's order, oldest first."
	if date {
		doc = "date, -date (newest first), _id or -_id, comma-separated for ties; the default is the record's order, oldest first."
	}
	return Param{Name: "_sort", Type: m.SearchParamTypeString, Doc: doc}
}

// withResult appends the result parameters to a type's search
// parameters.
func withResult(ps ...Param) []Param {
	date := slices.ContainsFunc(ps, func(p Param) bool { return p.Name == "date" })
	return append(ps, pSort(date), pSummary)
}

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
	"Patient": {Read: true, Params: withResult(pID, pCount),
		Summary: []string{"identifier", "active", "name", "telecom", "gender", "birthDate", "address"},
		Doc:     "Search by _id, or with no parameter a patient's own record."},
	"Observation": {Read: true, Params: withResult(pID, pPatient, pDate("effectiveDateTime", "issued"), pCode("code"), pStatus, pCount),
		Summary: []string{"identifier", "basedOn", "status", "category", "code", "subject", "effectiveDateTime", "issued", "performer",
			"valueQuantity", "valueString", "valueCodeableConcept", "dataAbsentReason", "hasMember", "derivedFrom"},
		Create: "A patient's app or device records a vital sign of her own: status final or preliminary, code with a LOINC coding of a vital sign " +
			"(heart rate, respiratory rate, blood pressure, temperature, weight, height, oxygen saturation, BMI, blood glucose), valueQuantity " +
			"in a UCUM unit (system " + UCUM + "), effectiveDateTime with its time zone, subject her own Patient, category vital-signs when given; " +
			"answered 201 with Location, ETag and the Observation as read back.",
		Doc: "Released lab results' values, and vital signs the patient recorded (category vital-signs)."},
	"DiagnosticReport": {Read: true, Params: withResult(pID, pPatient, pDate("effectiveDateTime", "issued"), pCode("code"), pStatus, pCount),
		Summary: []string{"identifier", "basedOn", "status", "category", "code", "subject", "effectiveDateTime", "issued", "performer", "result"},
		Doc:     "Released lab results."},
	"MedicationRequest": {Read: true, Params: withResult(pID, pPatient, pDate("authoredOn"), pCode("medicationCodeableConcept"), pStatus, pCount),
		Summary: []string{"identifier", "status", "intent", "medicationCodeableConcept", "subject", "authoredOn", "requester"},
		Doc:     "Signed prescriptions."},
	"Appointment": {Read: true, Params: withResult(pID, pPatient, pDate("start"), pStatus, pCount),
		Summary: []string{"identifier", "status", "start", "end", "participant"},
		Doc:     "Video visits."},
	"Communication": {Read: true, Params: withResult(pID, pPatient, pDate("sent"), pStatus, pCount),
		Summary: []string{"identifier", "status", "subject"},
		Create: "A signed-in patient's message to her care team: status completed, one payload with the text in contentString, " +
			"optionally topic.text (its subject) and subject (her own Patient); answered 201 with Location and the message as read back.",
		Doc: "Secure messages."},
	"DocumentReference": {Read: true, Params: withResult(pID, pPatient, pDate("date"), pCode("type"), pStatus, pCount),
		Summary: []string{"masterIdentifier", "identifier", "status", "docStatus", "type", "category", "subject", "date", "author",
			"authenticator", "relatesTo", "securityLabel", "content"},
		Doc: "Signed visit notes and files (their metadata)."},
	"Practitioner": {Read: true, Params: withResult(pID, Param{Name: "name", Type: m.SearchParamTypeString, Fields: []string{"name"},
		Doc: "The start of any word of the name, in any case."}, pCount),
		Summary: []string{"identifier", "active", "name"},
		Doc:     "The practice's clinicians: their names, nothing more."},
	"ServiceRequest": {Read: true, Params: withResult(pID, pPatient, pDate("authoredOn"), pCode("code"), pStatus, pCount),
		Summary: []string{"identifier", "basedOn", "requisition", "status", "intent", "category", "code", "subject", "authoredOn",
			"requester", "performer"},
		Doc: "Lab orders, one a test."},
	"AllergyIntolerance": {Read: true, Params: withResult(pID, pPatient, pDate("recordedDate"), pCount),
		Summary: []string{"identifier", "clinicalStatus", "verificationStatus", "type", "category", "criticality", "code", "patient",
			"recordedDate"},
		Doc: "The allergy list of the chart."},
	"Encounter": {Read: true, Params: withResult(pID, pPatient, pDate("period"), pStatus, pCount),
		Summary: []string{"identifier", "status", "class", "type", "subject", "participant", "appointment", "period", "reasonCode"},
		Doc:     "Video visits once they began; date is the visit's period."},
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

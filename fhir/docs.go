package fhir

import (
	"encoding/json"
	"net/url"
	"strconv"
	"time"

	m "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Entry is one resource of a searchset: its id and its JSON.
type Entry struct {
	Type, ID string
	JSON     json.RawMessage
}

// SearchSet writes a searchset Bundle of the page [from, to) of total
// matches, with self and (when more remain) next links under base (the
// API's root URL, without a trailing slash).
//
// The Bundle carries no id or timestamp, so the same page of the same
// matches is the same bytes, and its ETag holds until the record changes.
func SearchSet(base string, s *Search, total, from int, page []Entry) ([]byte, error) {
	link := func(offset int) string {
		q := url.Values{}
		for k, v := range s.Query {
			q[k] = v
		}
		if s.Patient != "" {
			q.Set("patient", s.Patient)
		}
		q.Set("_count", strconv.Itoa(s.Count))
		if offset > 0 {
			q.Set("_offset", strconv.Itoa(offset))
		}
		return base + "/" + s.Type + "?" + q.Encode()
	}
	b := m.Bundle{Type: m.BundleTypeSearchset, Total: &total,
		Link: []m.BundleLink{{Relation: "self", Url: link(from)}}}
	if next := from + len(page); next < total && len(page) > 0 {
		b.Link = append(b.Link, m.BundleLink{Relation: "next", Url: link(next)})
	}
	match := m.SearchEntryModeMatch
	for _, e := range page {
		u := base + "/" + e.Type + "/" + e.ID
		b.Entry = append(b.Entry, m.BundleEntry{FullUrl: &u, Resource: e.JSON, Search: &m.BundleEntrySearch{Mode: &match}})
	}
	return json.Marshal(b)
}

// Issue codes of OperationOutcome, by the kind of failure.
var (
	IssueInvalid      = m.IssueTypeInvalid
	IssueNotFound     = m.IssueTypeNotFound
	IssueLogin        = m.IssueTypeLogin
	IssueForbidden    = m.IssueTypeForbidden
	IssueSecurity     = m.IssueTypeSecurity
	IssueThrottled    = m.IssueTypeThrottled
	IssueTransient    = m.IssueTypeTransient
	IssueConflict     = m.IssueTypeConflict
	IssueException    = m.IssueTypeException
	IssueNotSupported = m.IssueTypeNotSupported
)

// Outcome writes an OperationOutcome of one error issue; diagnostics is
// shown to the client, so it must be safe to (no PHI, no id it was not
// sent).
func Outcome(code m.IssueType, diagnostics string) []byte {
	o := m.OperationOutcome{Issue: []m.OperationOutcomeIssue{{Severity: m.IssueSeverityError, Code: code, Diagnostics: &diagnostics}}}
	b, err := json.Marshal(o)
	if err != nil {
		return []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}`)
	}
	return b
}

// Capability writes the server's CapabilityStatement: what Types says,
// and Patient/$everything.
func Capability(base, software string, date time.Time) ([]byte, error) {
	name, title := "HavenFHIR", "Haven FHIR R4 API"
	desc := "Read and search of a practice's records, a patient's messages to her care team and the vital signs she records, each request decided by the practice's policy and audited. " +
		"Callers authenticate with a SMART on FHIR access token or a Haven session."
	rest := m.CapabilityStatementRest{Mode: m.RestfulCapabilityModeServer}
	sec := "SMART on FHIR (App Launch 2 and backend services; discovery at .well-known/smart-configuration): a bearer access token, " +
		"narrowed by its scopes and patient; or a Haven session (its cookie, or its token as a bearer token)."
	smartSystem, smartCode, cors := "http://terminology.hl7.org/CodeSystem/restful-security-service", "SMART-on-FHIR", true
	rest.Security = &m.CapabilityStatementRestSecurity{Cors: &cors, Description: &sec,
		Service: []m.CodeableConcept{{Coding: []m.Coding{{System: &smartSystem, Code: &smartCode}}}}}
	for _, t := range TypeNames() {
		spec := Types[t]
		doc := spec.Doc
		r := m.CapabilityStatementRestResource{Type: resourceType(t), Documentation: &doc}
		if spec.Read {
			r.Interaction = append(r.Interaction, m.CapabilityStatementRestResourceInteraction{Code: m.TypeRestfulInteractionRead})
		}
		r.Interaction = append(r.Interaction, m.CapabilityStatementRestResourceInteraction{Code: m.TypeRestfulInteractionSearchType})
		if spec.Create != "" {
			d := spec.Create
			r.Interaction = append(r.Interaction, m.CapabilityStatementRestResourceInteraction{Code: m.TypeRestfulInteractionCreate, Documentation: &d})
		}
		for _, p := range spec.Params {
			sp := m.CapabilityStatementRestResourceSearchParam{Name: p.Name, Type: p.Type}
			if p.Doc != "" {
				d := p.Doc
				sp.Documentation = &d
			}
			r.SearchParam = append(r.SearchParam, sp)
		}
		if t == "Patient" {
			d := "The patient's whole record, the same Bundle as her download of it; it needs a recent sign-in."
			r.Operation = []m.CapabilityStatementRestResourceOperation{{Name: "everything",
				Definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything", Documentation: &d}}
		}
		rest.Resource = append(rest.Resource, r)
	}
	u := base + "/metadata"
	cs := m.CapabilityStatement{Url: &u, Name: &name, Title: &title, Status: m.PublicationStatusActive,
		Date: date.UTC().Format(time.DateOnly), Description: &desc, Kind: m.CapabilityStatementKindInstance,
		Software:       &m.CapabilityStatementSoftware{Name: software},
		Implementation: &m.CapabilityStatementImplementation{Description: "Haven", Url: &base},
		FhirVersion:    m.FHIRVersion4_0_1, Format: []string{"json"}, Rest: []m.CapabilityStatementRest{rest}}
	return json.Marshal(cs)
}

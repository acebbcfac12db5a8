package service

import (
	"context"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"haven"
)

// The lab part of the record export: each ordered test a ServiceRequest
// (one per LOINC code, the order's placer number as their shared
// requisition, as FHIR groups the tests of one order), and each released
// result a DiagnosticReport based on its ServiceRequest and holding its
// Observations.

// FHIR systems of the lab export.
const (
	fhirLOINC          = "http://loinc.org"
	fhirHavenLabOrder  = "urn:haven:lab-order"
	fhirInterpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
)

// fhirDecimal is FHIR's decimal as JSON carries it, kept as the lab wrote
// it; anything else (an exponent, a sign) is reformatted.
var fhirDecimal = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// fhirNumber is a lab's numeric value as a FHIR decimal, or false when it
// is not a finite number.
func fhirNumber(v string) (json.Number, bool) {
	v = strings.TrimSpace(v)
	if fhirDecimal.MatchString(v) {
		return json.Number(v), true
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return "", false
	}
	return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), true
}

// hl7Time reads an HL7 v2 timestamp as the lab sent it (YYYYMMDD[HHMM[SS]]
// with an optional offset) as a FHIR dateTime, or "" when it is not one.
func hl7Time(ts string) string {
	ts = strings.TrimSpace(ts)
	if i := strings.IndexByte(ts, '.'); i >= 0 { // fractions of a second are dropped
		j := i + 1
		for j < len(ts) && ts[j] >= '0' && ts[j] <= '9' {
			j++
		}
		ts = ts[:i] + ts[j:]
	}
	for _, l := range []string{"20060102150405-0700", "200601021504-0700", "20060102150405", "200601021504", "2006010215"} {
		if t, err := time.Parse(l, ts); err == nil {
			return fhirTime(t)
		}
	}
	if t, err := time.Parse("20060102", ts); err == nil {
		return t.Format(time.DateOnly)
	}
	return ""
}

// reportStatus maps OBR-25 (result status) to FHIR's report and
// observation status.
func reportStatus(code string) string {
	switch code {
	case "F":
		return "final"
	case "C":
		return "corrected"
	case "P", "I", "S":
		return "preliminary"
	case "X":
		return "cancelled"
	}
	return "final"
}

// organization returns the reference of the Organization for one of the
// practice's vendors, adding it the first time, and its name ("" when the
// vendor is no longer the practice's).
func (b *recordBuilder) organization(ctx context.Context, vendorID, kind string) (fhirRef, string, bool) {
	v, err := b.s.db.FindVendor(ctx, vendorID)
	if err != nil || v.PracticeID != b.row.PracticeID {
		return fhirRef{}, "", false
	}
	if u, ok := b.refs["Organization/"+v.ID]; ok {
		return fhirRef{Reference: u}, v.Name, true
	}
	return b.add("Organization/"+v.ID, map[string]any{"resourceType": "Organization", "id": fhirID(v.ID), "name": v.Name,
		"type": []map[string]any{{"text": kind}}}), v.Name, true
}

// addLabs adds her lab orders and their released results.
func (b *recordBuilder) addLabs(ctx context.Context, pref fhirRef) error {
	s, row := b.s, b.row
	orders, err := s.db.PatientLabOrders(ctx, row.ID)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load lab orders")
	}
	results, err := s.db.PatientLabResults(ctx, row.ID)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load results")
	}
	// A result the ordering clinician has not reviewed and released is not
	// the patient's to read yet (Results and LabResult refuse it to her
	// too): a critical value must reach her with her clinician's word, not
	// alone in a download. It joins her export once released; until then
	// the order shows as still in progress, so its status does not tell
	// her either that a result is waiting.
	var released []*haven.LabResult
	completed := map[string]bool{}
	for _, r := range results {
		if r.PracticeID != row.PracticeID || r.PatientID != row.ID || r.Status != haven.ResultReleased {
			continue
		}
		released = append(released, r)
		completed[r.OrderID] = true
	}
	for i := len(orders) - 1; i >= 0; i-- { // oldest first, as the rest of the record
		o := orders[i]
		if o.PracticeID != row.PracticeID || o.PatientID != row.ID {
			continue
		}
		var c haven.LabOrderContent
		if err := s.openJSON(ctx, labOrderAD(o), o.Content, &c); err != nil {
			return err
		}
		req, rname := b.person(ctx, o.OrdererID)
		status := "active"
		switch {
		case completed[o.ID]:
			status = "completed"
		case o.Status == haven.LabRejected, o.Status.Cancelled():
			status = "revoked" // refused by the lab, or cancelled by the clinician
		}
		lab, labName, hasLab := b.organization(ctx, o.LabID, "Laboratory")
		names := make([]string, 0, len(c.Tests))
		for _, t := range c.Tests {
			sr := map[string]any{"resourceType": "ServiceRequest", "id": fhirID(o.ID + "-" + t.LOINC),
				"identifier":  []fhirIdentifier{{System: fhirHavenLabOrder, Value: o.Number + "/" + t.LOINC}},
				"requisition": fhirIdentifier{System: fhirHavenLabOrder, Value: o.Number},
				"status":      status, "intent": "order",
				"category": []map[string]any{{"coding": []fhirCoding{{System: "http://snomed.info/sct", Code: "108252007", Display: "Laboratory procedure"}}}},
				"code":     map[string]any{"coding": []fhirCoding{{System: fhirLOINC, Code: t.LOINC, Display: t.Name}}, "text": t.Name},
				"subject":  pref, "authoredOn": fhirTime(o.Created), "requester": req}
			if hasLab {
				sr["performer"] = []fhirRef{lab}
			}
			if c.Note != "" {
				sr["note"] = []map[string]any{{"text": c.Note}}
			}
			ref := b.add("ServiceRequest/"+o.ID+"/"+t.LOINC, sr)
			if _, ok := b.refs["ServiceRequest/"+o.ID]; !ok {
				b.refs["ServiceRequest/"+o.ID] = ref.Reference
			}
			names = append(names, t.Name+" ("+t.LOINC+")")
		}
		what := strings.Join(names, ", ") + " — ordered by " + rname
		if labName != "" {
			what += " from " + labName
		}
		b.sum.LabOrders = append(b.sum.LabOrders, summaryLine{When: sumTime(o.Created), What: what, Detail: c.Note})
	}
	for _, r := range released {
		if err := b.addResult(ctx, pref, r); err != nil {
			return err
		}
	}
	return nil
}

// addResult adds one released result: its Observations and the
// DiagnosticReport holding them.
func (b *recordBuilder) addResult(ctx context.Context, pref fhirRef, r *haven.LabResult) error {
	s := b.s
	var c haven.LabResultContent
	if err := s.openJSON(ctx, labResultAD(r, "content"), r.Content, &c); err != nil {
		return err
	}
	comment := ""
	if len(r.Comment) > 0 {
		t, err := s.keys.Open(ctx, labResultAD(r, "comment"), r.Comment)
		if err != nil {
			return err
		}
		comment = string(t)
	}
	status := reportStatus(c.ResultStatus)
	category := []map[string]any{{"coding": []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/observation-category", Code: "laboratory", Display: "Laboratory"}}}}
	effective := hl7Time(c.ObservedAt)
	lab, labName, hasLab := b.organization(ctx, r.LabID, "Laboratory")
	sr := summaryResult{When: sumTime(r.Released), Test: c.Test.Name, Lab: labName, Comment: comment, Notes: c.Notes}
	var obs []fhirRef
	for i, o := range c.Observations {
		code := map[string]any{"text": o.Name}
		if ValidLOINC(o.Code) {
			code["coding"] = []fhirCoding{{System: fhirLOINC, Code: o.Code, Display: o.Name}}
		}
		if o.Name == "" {
			code["text"] = o.Code
		}
		ob := map[string]any{"resourceType": "Observation", "id": fhirID(r.ID + "-" + strconv.Itoa(i+1)), "status": status, "category": category, "code": code,
			"subject": pref, "issued": fhirTime(r.Received)}
		if effective != "" {
			ob["effectiveDateTime"] = effective
		}
		if hasLab {
			ob["performer"] = []fhirRef{lab}
		}
		if n, ok := fhirNumber(o.Numeric); ok && o.Numeric != "" {
			q := map[string]any{"value": n}
			if o.Units != "" {
				q["unit"] = o.Units
			}
			ob["valueQuantity"] = q
		} else if o.Value != "" {
			ob["valueString"] = strings.TrimSpace(o.Value + " " + o.Units)
		} else {
			ob["dataAbsentReason"] = map[string]any{"coding": []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/data-absent-reason", Code: "unknown"}}}
		}
		if o.Range != "" {
			rr := map[string]any{"text": o.Range}
			if lo, hi, ok := strings.Cut(o.Range, "-"); ok {
				l, lok := fhirNumber(lo)
				h, hok := fhirNumber(hi)
				if lok && hok && strings.TrimSpace(lo) != "" {
					low, high := map[string]any{"value": l}, map[string]any{"value": h}
					if o.Units != "" {
						low["unit"], high["unit"] = o.Units, o.Units
					}
					rr["low"], rr["high"] = low, high
				}
			}
			ob["referenceRange"] = []map[string]any{rr}
		}
		if len(o.Flags) > 0 {
			var interp []map[string]any
			for _, f := range o.Flags {
				interp = append(interp, map[string]any{"coding": []fhirCoding{{System: fhirInterpretation, Code: f}}, "text": haven.FlagWords(f)})
			}
			ob["interpretation"] = interp
		}
		if len(o.Notes) > 0 {
			var notes []map[string]any
			for _, n := range o.Notes {
				notes = append(notes, map[string]any{"text": n})
			}
			ob["note"] = notes
		}
		obs = append(obs, b.add("", ob))
		sr.Values = append(sr.Values, summaryValue{Name: o.Name, Value: strings.TrimSpace(o.Value + " " + o.Units), Range: o.Range, Meaning: o.Meaning(), Notes: o.Notes})
	}
	rep := map[string]any{"resourceType": "DiagnosticReport", "id": fhirID(r.ID), "status": status,
		"category": []map[string]any{{"coding": []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/v2-0074", Code: "LAB", Display: "Laboratory"}}}},
		"code":     map[string]any{"text": c.Test.Name},
		"subject":  pref, "issued": fhirTime(r.Released)}
	if ValidLOINC(c.Test.LOINC) {
		rep["code"] = map[string]any{"coding": []fhirCoding{{System: fhirLOINC, Code: c.Test.LOINC, Display: c.Test.Name}}, "text": c.Test.Name}
	}
	if effective != "" {
		rep["effectiveDateTime"] = effective
	}
	if u, ok := b.refs["ServiceRequest/"+r.OrderID+"/"+c.Test.LOINC]; ok {
		rep["basedOn"] = []fhirRef{{Reference: u}}
	} else if u, ok := b.refs["ServiceRequest/"+r.OrderID]; ok {
		rep["basedOn"] = []fhirRef{{Reference: u}}
	}
	if hasLab {
		rep["performer"] = []fhirRef{lab}
	}
	if r.ReviewerID != "" {
		who, name := b.person(ctx, r.ReviewerID)
		rep["resultsInterpreter"] = []fhirRef{who}
		sr.Reviewer = name
	}
	if len(obs) > 0 {
		rep["result"] = obs
	}
	conclusion := comment
	for _, n := range c.Notes {
		conclusion = strings.TrimSpace(conclusion + "\nThe lab's note: " + n)
	}
	if conclusion != "" {
		rep["conclusion"] = conclusion
	}
	b.add("DiagnosticReport/"+r.ID, rep)
	b.sum.Results = append(b.sum.Results, sr)
	return nil
}

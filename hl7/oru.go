package hl7

import (
	"strconv"
	"strings"
)

// A ResultMessage is what an ORU^R01 reports: one patient and the orders
// whose results it carries. Z-segments and segments Haven does not use
// (PV1, SPM, …) are skipped.
type ResultMessage struct {
	Header  Header
	Patient ResultPatient
	Orders  []ResultOrder
}

// ResultPatient is PID as a lab sends it back.
type ResultPatient struct {
	IDs []PatientID // PID-3, every repetition
	// The name, read from PID-5's extended person name (XPN) by its
	// components, never by splitting text: the repetition whose name type
	// (XPN.7) is L (legal), or the first. Family is XPN.1 (in v2.4 and
	// later its surname, preceded by its own-surname prefix when one is
	// sent apart: "van" and "Berg"); Middle is XPN.3, the further given
	// names or initials.
	Family, Given, Middle string
	BirthDate             string // PID-7 as sent: YYYYMMDD, maybe with a time
	Sex                   string
}

// Name is the name as people write it: given, middle, family.
func (p ResultPatient) Name() string {
	return strings.Join(strings.Fields(p.Given+" "+p.Middle+" "+p.Family), " ")
}

// readXPN reads PID-5: the legal name's repetition, or the first.
func readXPN(f Field) (family, given, middle string) {
	rep := f.Rep(0)
	for _, r := range f {
		if r.Get(7) == "L" {
			rep = r
			break
		}
	}
	fn := rep.Component(1) // FN: surname & own surname prefix & own surname & …
	family = strings.TrimSpace(fn.Sub(1))
	if prefix := strings.TrimSpace(fn.Sub(2)); prefix != "" && !strings.HasPrefix(strings.ToLower(family), strings.ToLower(prefix)+" ") {
		family = prefix + " " + family
	}
	return family, strings.TrimSpace(rep.Get(2)), strings.TrimSpace(rep.Get(3))
}

// PatientID is one repetition of PID-3.
type PatientID struct {
	ID, Authority, Type string // CX.1, CX.4, CX.5 (MR for a medical record number)
}

// MRN returns the first PID-3 of type MR, or the first of any type when
// none says MR (v2.3 labs often leave the type out).
func (p ResultPatient) MRN() string {
	for _, id := range p.IDs {
		if id.Type == "MR" && id.ID != "" {
			return id.ID
		}
	}
	for _, id := range p.IDs {
		if id.ID != "" {
			return id.ID
		}
	}
	return ""
}

// MRNs returns the record numbers PID-3 may name the patient by, at most
// max of them: those whose assigning authority (CX.4) is authority when
// any is; else those of type MR; else every one (v2.3 labs often leave
// the type out). Repeated values are given once.
func (p ResultPatient) MRNs(authority string, max int) []string {
	pick := func(keep func(PatientID) bool) []string {
		var out []string
		seen := map[string]bool{}
		for _, id := range p.IDs {
			v := strings.TrimSpace(id.ID)
			if v == "" || seen[v] || !keep(id) || len(out) == max {
				continue
			}
			seen[v] = true
			out = append(out, v)
		}
		return out
	}
	if authority != "" {
		if out := pick(func(id PatientID) bool { return id.Authority == authority }); len(out) > 0 {
			return out
		}
	}
	if out := pick(func(id PatientID) bool { return id.Type == "MR" }); len(out) > 0 {
		return out
	}
	return pick(func(PatientID) bool { return true })
}

// BirthDay is PID-7's date part, YYYYMMDD, or "" when it is not one.
func (p ResultPatient) BirthDay() string {
	if len(p.BirthDate) < 8 {
		return ""
	}
	d := p.BirthDate[:8]
	for _, c := range d {
		if c < '0' || c > '9' {
			return ""
		}
	}
	return d
}

// A ResultOrder is an OBR with its ORC, observations and notes.
type ResultOrder struct {
	PlacerOrder  string // ORC-2 or OBR-2: Haven's order number
	FillerOrder  string // ORC-3 or OBR-3: the lab's
	TestCode     string // OBR-4.1
	TestName     string // OBR-4.2
	ObservedAt   string // OBR-7
	ReportedAt   string // OBR-22
	Status       string // OBR-25: P preliminary, F final, C corrected, X cancelled
	Observations []Observation
	Notes        []string // NTE-3 after the OBR
}

// An Observation is one OBX.
type Observation struct {
	ValueType  string // OBX-2: NM, ST, TX, CE, CWE, SN, ED, …
	Code       string // OBX-3.1 (LOINC, or the lab's own)
	Name       string // OBX-3.2
	CodeSystem string // OBX-3.3
	SubID      string // OBX-4
	Value      string // OBX-5 as text (repetitions joined by line breaks)
	Numeric    string // OBX-5 when it is a plain number (NM, or SN without a comparator)
	Units      string // OBX-6.1
	Range      string // OBX-7
	Flags      []string
	Status     string // OBX-11
	ObservedAt string // OBX-14
	Notes      []string
}

// The value types Haven stores. Others are refused with AE rather than
// stored in a shape nobody checked.
var valueTypes = map[string]bool{"NM": true, "ST": true, "TX": true, "FT": true, "CE": true, "CWE": true, "SN": true, "ED": true}

// ReadORU reads an ORU^R01: one PID, then OBRs each followed by their
// OBXs and NTEs (an ORC may stand before an OBR). The segment order is
// checked; an OBX before any OBR, or a value type Haven does not store,
// is an *Error.
func ReadORU(m *Message) (*ResultMessage, error) {
	h := m.Header()
	if h.MessageType != "ORU" {
		return nil, &Error{Code: CodeUnsupportedType, Segment: "MSH", Sequence: 1, Field: 9, Reason: "only ORU messages are taken here"}
	}
	if h.TriggerEvent != "R01" {
		return nil, &Error{Code: CodeUnsupportedEvent, Segment: "MSH", Sequence: 1, Field: 9, Reason: "only the R01 event is taken here"}
	}
	r := &ResultMessage{Header: h}
	var pid bool
	var orc *Segment
	var obs *Observation
	for i, s := range m.Segments {
		seq := i + 1
		bad := func(code, field int, reason string) error {
			return &Error{Code: code, Segment: s.Name, Sequence: seq, Field: field, Reason: reason}
		}
		switch s.Name {
		case "MSH", "SFT", "PD1", "NK1", "PV1", "PV2", "SPM", "TQ1", "TQ2", "CTD", "CTI", "FT1", "DSC":
		case "PID":
			if pid {
				return nil, bad(CodeSegmentSequence, 0, "a second patient: send one patient per message")
			}
			pid = true
			for _, rep := range s.Field(3) {
				r.Patient.IDs = append(r.Patient.IDs, PatientID{ID: rep.Get(1), Authority: rep.Get(4), Type: rep.Get(5)})
			}
			r.Patient.Family, r.Patient.Given, r.Patient.Middle = readXPN(s.Field(5))
			r.Patient.BirthDate = s.Value(7)
			r.Patient.Sex = s.Value(8)
		case "ORC":
			if !pid {
				return nil, bad(CodeSegmentSequence, 0, "an order before the patient")
			}
			o := s
			orc = &o
		case "OBR":
			if !pid {
				return nil, bad(CodeSegmentSequence, 0, "an order before the patient")
			}
			o := ResultOrder{
				PlacerOrder: s.Get(2, 1),
				FillerOrder: s.Get(3, 1),
				TestCode:    s.Get(4, 1),
				TestName:    s.Get(4, 2),
				ObservedAt:  s.Value(7),
				ReportedAt:  s.Value(22),
				Status:      s.Value(25),
			}
			if orc != nil {
				if o.PlacerOrder == "" {
					o.PlacerOrder = orc.Get(2, 1)
				}
				if o.FillerOrder == "" {
					o.FillerOrder = orc.Get(3, 1)
				}
				orc = nil
			}
			if o.TestCode == "" && o.TestName == "" {
				return nil, bad(CodeRequiredMissing, 4, "the test is not named")
			}
			r.Orders = append(r.Orders, o)
			obs = nil
		case "OBX":
			if len(r.Orders) == 0 {
				return nil, bad(CodeSegmentSequence, 0, "an observation before any order")
			}
			o, err := readOBX(s)
			if err != nil {
				e := err.(*Error)
				e.Segment, e.Sequence = s.Name, seq
				return nil, e
			}
			ord := &r.Orders[len(r.Orders)-1]
			ord.Observations = append(ord.Observations, o)
			obs = &ord.Observations[len(ord.Observations)-1]
		case "NTE":
			note := noteText(s)
			switch {
			case obs != nil:
				obs.Notes = append(obs.Notes, note)
			case len(r.Orders) > 0:
				r.Orders[len(r.Orders)-1].Notes = append(r.Orders[len(r.Orders)-1].Notes, note)
			}
			// A note on the patient alone says nothing Haven stores.
		default:
			if strings.HasPrefix(s.Name, "Z") {
				continue // a lab's own segment: allowed, not read
			}
			return nil, bad(CodeSegmentSequence, 0, "a segment ORU^R01 does not have")
		}
	}
	if !pid {
		return nil, &Error{Code: CodeRequiredMissing, Segment: "PID", Reason: "the message names no patient"}
	}
	if len(r.Orders) == 0 {
		return nil, &Error{Code: CodeRequiredMissing, Segment: "OBR", Reason: "the message has no order"}
	}
	return r, nil
}

func noteText(s Segment) string {
	var lines []string
	for _, rep := range s.Field(3) {
		lines = append(lines, rep.Get(1))
	}
	return strings.Join(lines, "\n")
}

func readOBX(s Segment) (Observation, error) {
	o := Observation{
		ValueType:  s.Value(2),
		Code:       s.Get(3, 1),
		Name:       s.Get(3, 2),
		CodeSystem: s.Get(3, 3),
		SubID:      s.Value(4),
		Units:      s.Get(6, 1),
		Range:      s.Value(7),
		Status:     s.Value(11),
		ObservedAt: s.Value(14),
	}
	if o.Code == "" && o.Name == "" {
		return o, &Error{Code: CodeRequiredMissing, Field: 3, Reason: "the observation is not named"}
	}
	for _, rep := range s.Field(8) {
		if f := rep.Get(1); f != "" {
			o.Flags = append(o.Flags, f)
		}
	}
	if o.ValueType == "" && s.Field(5).Empty() {
		return o, nil // an observation with no value yet (status I or X)
	}
	if !valueTypes[o.ValueType] {
		return o, &Error{Code: CodeDataType, Field: 2, Reason: "the value type is not one Haven stores (NM, ST, TX, FT, CE, CWE, SN, ED)"}
	}
	var vals []string
	for _, rep := range s.Field(5) {
		switch o.ValueType {
		case "NM":
			v := strings.TrimSpace(rep.Get(1))
			if v == "" {
				continue
			}
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return o, &Error{Code: CodeDataType, Field: 5, Reason: "a numeric value is not a number"}
			}
			vals = append(vals, v)
			if o.Numeric == "" {
				o.Numeric = v
			}
		case "CE", "CWE":
			// code^text^system: the text is what a person reads.
			if t := rep.Get(2); t != "" {
				vals = append(vals, t)
			} else {
				vals = append(vals, rep.Get(1))
			}
		case "SN":
			// comparator^num1^separator^num2: >^100, ^1^:^128, ^2.5.
			cmp, n1, sep, n2 := rep.Get(1), rep.Get(2), rep.Get(3), rep.Get(4)
			for _, n := range []string{n1, n2} {
				if n == "" {
					continue
				}
				if _, err := strconv.ParseFloat(n, 64); err != nil {
					return o, &Error{Code: CodeDataType, Field: 5, Reason: "a structured numeric value is not a number"}
				}
			}
			vals = append(vals, cmp+n1+sep+n2)
			if cmp == "" && sep == "" && n1 != "" && o.Numeric == "" {
				o.Numeric = n1
			}
		case "ED":
			// source^type^subtype^encoding^data: kept as sent, the data
			// still in its encoding; its size is bounded by the message's.
			vals = append(vals, strings.Join([]string{rep.Get(2), rep.Get(3), rep.Get(4), rep.Get(5)}, "^"))
		default:
			vals = append(vals, rep.Get(1))
		}
	}
	o.Value = strings.Join(vals, "\n")
	return o, nil
}

// Critical reports whether a flag (OBX-8) marks a critical value: HH or
// LL (panic high or low), AA (critically abnormal).
func Critical(flag string) bool {
	switch flag {
	case "HH", "LL", "AA":
		return true
	}
	return false
}

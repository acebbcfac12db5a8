package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	m "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Systems a recorded vital sign must be coded in.
const (
	LOINC = "http://loinc.org"
	UCUM  = "http://unitsofmeasure.org"
	// ObservationCategory is the system of an Observation's category
	// (vital-signs, laboratory).
	ObservationCategory = "http://terminology.hl7.org/CodeSystem/observation-category"
)

// ErrInvalidResource is the error of a resource a client sent that the
// server does not take (ParseCommunication's and ParseObservation's).
var ErrInvalidResource = errors.New("invalid resource")

func invalidResource(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidResource, fmt.Sprintf(format, a...))
}

// VitalSign is a vital sign a patient may record: its LOINC code's name,
// the UCUM units it is taken in, and the range a real measurement lies in
// (a value outside it is a typing or device error, refused rather than
// shown to a clinician).
type VitalSign struct {
	Display  string
	Units    []string
	Min, Max float64
}

// VitalSigns are the LOINC codes a patient's app or device may record,
// those of the FHIR vital signs profile and a home glucose reading.
var VitalSigns = map[string]VitalSign{
	"8867-4":  {"Heart rate", []string{"/min"}, 10, 350},
	"9279-1":  {"Respiratory rate", []string{"/min"}, 1, 120},
	"8480-6":  {"Systolic blood pressure", []string{"mm[Hg]"}, 30, 320},
	"8462-4":  {"Diastolic blood pressure", []string{"mm[Hg]"}, 10, 250},
	"8310-5":  {"Body temperature", []string{"Cel", "[degF]"}, 25, 115},
	"29463-7": {"Body weight", []string{"kg", "g", "[lb_av]"}, 0.2, 700000},
	"8302-2":  {"Body height", []string{"cm", "m", "[in_i]"}, 0.2, 300},
	"59408-5": {"Oxygen saturation in arterial blood by pulse oximetry", []string{"%"}, 30, 100},
	"39156-5": {"Body mass index", []string{"kg/m2"}, 5, 150},
	"2339-0":  {"Glucose [Mass/volume] in Blood", []string{"mg/dL"}, 5, 2000},
}

// NewObservation is what an Observation a patient's app creates says.
type NewObservation struct {
	// Patient is the id its subject names.
	Patient   string
	Status    string // final or preliminary
	LOINC     string
	Display   string // the code's name, as VitalSigns gives it
	Value     float64
	Unit      string // the UCUM code
	Effective time.Time
}

type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

// observationIn is the part of an Observation the server takes from a
// client; any other element is refused, not ignored (see
// communicationIn).
type observationIn struct {
	ResourceType string `json:"resourceType"`
	Status       string `json:"status"`
	Category     []struct {
		Coding []coding `json:"coding"`
		Text   string   `json:"text,omitempty"`
	} `json:"category,omitempty"`
	Code struct {
		Coding []coding `json:"coding"`
		Text   string   `json:"text,omitempty"`
	} `json:"code"`
	Subject *struct {
		Reference string `json:"reference"`
		Display   string `json:"display,omitempty"`
	} `json:"subject"`
	EffectiveDateTime string `json:"effectiveDateTime"`
	ValueQuantity     *struct {
		Value  *float64 `json:"value"`
		Unit   string   `json:"unit,omitempty"`
		System string   `json:"system"`
		Code   string   `json:"code"`
	} `json:"valueQuantity"`
}

// ParseObservation reads an Observation to create: JSON the model library
// accepts as an Observation, of status final or preliminary, coded with
// one of VitalSigns' LOINC codes, its valueQuantity in one of that sign's
// UCUM units and within its range, an effectiveDateTime with a time zone,
// the subject Patient/[id], and a category, when given, of vital-signs.
// The error is safe to show: it never echoes the body.
func ParseObservation(body []byte) (NewObservation, error) {
	var out NewObservation
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var o observationIn
	if err := dec.Decode(&o); err != nil {
		return out, invalidResource("the body must be an Observation with status, category, code, subject, effectiveDateTime and valueQuantity, and nothing else")
	}
	if _, err := dec.Token(); err != io.EOF {
		return out, invalidResource("the body has trailing data")
	}
	if o.ResourceType != "Observation" {
		return out, invalidResource("the body must be an Observation")
	}
	if _, err := m.UnmarshalObservation(body); err != nil {
		return out, invalidResource("the Observation is malformed")
	}
	if o.Status != "final" && o.Status != "preliminary" {
		return out, invalidResource("an Observation recorded here has status final or preliminary")
	}
	for _, c := range o.Category {
		if !slices.ContainsFunc(c.Coding, func(x coding) bool { return x.System == ObservationCategory && x.Code == "vital-signs" }) {
			return out, invalidResource("an Observation recorded here is of category vital-signs")
		}
	}
	var sign VitalSign
	for _, c := range o.Code.Coding {
		if c.System != LOINC {
			continue
		}
		v, ok := VitalSigns[c.Code]
		if !ok {
			return out, invalidResource("code %q is not a vital sign recorded here", c.Code)
		}
		if out.LOINC != "" && out.LOINC != c.Code {
			return out, invalidResource("code has more than one LOINC code")
		}
		out.LOINC, sign = c.Code, v
	}
	if out.LOINC == "" {
		return out, invalidResource("code must have a coding with system %s", LOINC)
	}
	out.Display = sign.Display
	q := o.ValueQuantity
	if q == nil || q.Value == nil {
		return out, invalidResource("an Observation recorded here has a valueQuantity with a value")
	}
	if q.System != UCUM || !slices.Contains(sign.Units, q.Code) {
		return out, invalidResource("valueQuantity must have system %s and code one of %s", UCUM, strings.Join(sign.Units, ", "))
	}
	if v := *q.Value; math.IsNaN(v) || math.IsInf(v, 0) || v < sign.Min || v > sign.Max {
		return out, invalidResource("the value is outside what a measurement of %s can be", strings.ToLower(sign.Display))
	}
	out.Value, out.Unit = *q.Value, q.Code
	t, err := time.Parse(time.RFC3339, o.EffectiveDateTime)
	if err != nil {
		return out, invalidResource("effectiveDateTime must be a date and time with its time zone")
	}
	out.Effective = t
	if o.Subject == nil {
		return out, invalidResource("subject must be Patient/[id]")
	}
	id, ok := strings.CutPrefix(o.Subject.Reference, "Patient/")
	if !ok || id == "" || strings.ContainsAny(id, "/?#") {
		return out, invalidResource("subject must be Patient/[id]")
	}
	out.Patient, out.Status = id, o.Status
	return out, nil
}

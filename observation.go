package haven

import "time"

// PatientObservation is a vital sign a patient recorded herself (from a
// device or an app, through the FHIR API): part of her record, read with
// her results. Content is sealed; the row says only whose it is, who
// recorded it and through which app.
type PatientObservation struct {
	ID, PracticeID, PatientID string
	Content                   Sealed // ObservationContent, as JSON
	RecordedBy                string // the patient
	Source                    string // the app's client id ("" when none)
	Recorded                  time.Time
}

// ObservationContent is a patient-recorded observation opened: a LOINC
// code, a quantity in a UCUM unit, and when it was measured.
type ObservationContent struct {
	Status    string    `json:"status"`
	LOINC     string    `json:"loinc"`
	Display   string    `json:"display"`
	Value     float64   `json:"value"`
	Unit      string    `json:"unit"` // the UCUM code
	Effective time.Time `json:"effective"`
}

package haven

import "time"

// LabTest is one entry of a practice's lab catalogue: a LOINC code and
// the name clinicians order it by. A catalogue is the practice's list,
// not anyone's record: it is stored in the clear.
type LabTest struct {
	PracticeID, LOINC, Name string
}

// LabOrderStatus is where a lab order is on its way to the lab and back.
type LabOrderStatus string

const (
	LabQueued   LabOrderStatus = "queued"   // waiting in the outbox
	LabSent     LabOrderStatus = "sent"     // the lab acknowledged it (AA)
	LabRejected LabOrderStatus = "rejected" // the lab refused it as wrong (AE): resending it will not help
	LabResulted LabOrderStatus = "resulted" // a result for it has arrived
)

// LabOrder is a clinician's order of tests from one lab, as storage holds
// it. What is ordered is sealed under the patient's key (Content, a
// LabOrderContent as JSON). Number is the placer order number the lab
// echoes in its results (ORC-2, OBR-2): random, so it says nothing about
// the patient or the practice. AckCode and AckError are the lab's
// acknowledgment (MSA-1, ERR-3's table 0357 code): codes, never text a
// lab wrote.
type LabOrder struct {
	ID, PracticeID, PatientID, OrdererID string
	LabID                                string // a registered lab vendor
	Number                               string
	Content                              Sealed
	Status                               LabOrderStatus
	StatusReason                         string // why it waits or was refused, a code
	AckCode                              string
	AckError                             int
	Created, Updated                     time.Time
}

// LabOrderContent is what an order asks for: PHI, sealed.
type LabOrderContent struct {
	Tests []LabTestRef `json:"tests"`
	Note  string       `json:"note,omitempty"`
}

// LabTestRef names one ordered test.
type LabTestRef struct {
	LOINC string `json:"loinc"`
	Name  string `json:"name"`
}

// LabOrderView is a lab order opened for a reader policy allowed.
type LabOrderView struct {
	ID           string         `json:"id"`
	PatientID    string         `json:"patient_id"`
	PatientName  string         `json:"patient_name,omitempty"`
	OrdererID    string         `json:"orderer_id"`
	Orderer      string         `json:"orderer"`
	LabID        string         `json:"lab_id"`
	Lab          string         `json:"lab"`
	Number       string         `json:"number"`
	Status       LabOrderStatus `json:"status"`
	StatusReason string         `json:"status_reason,omitempty"`
	AckCode      string         `json:"ack_code,omitempty"`
	Created      time.Time      `json:"created"`
	LabOrderContent
}

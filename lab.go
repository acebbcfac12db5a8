package haven

import (
	"strings"
	"time"
)

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
	// LabCancelling: the clinician cancelled it after it may have reached
	// the lab; the cancellation (ORC-1 CA) waits in the outbox for the
	// lab's acknowledgment.
	LabCancelling LabOrderStatus = "cancelling"
	// LabCancelled: cancelled, and the lab acknowledged it (or it never
	// left Haven). A result the lab sends for it anyway is kept, flagged.
	LabCancelled LabOrderStatus = "cancelled"
)

// Cancelled reports whether the order was cancelled, acknowledged yet or not.
func (s LabOrderStatus) Cancelled() bool { return s == LabCancelling || s == LabCancelled }

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

// LabResultStatus is where a result is between the lab and the patient.
type LabResultStatus string

const (
	ResultToReview LabResultStatus = "review"   // waiting for the ordering clinician
	ResultReleased LabResultStatus = "released" // reviewed and released to the patient
)

// LabResult is one tested order (an OBR and its observations) as storage
// holds it, matched to its patient and order. What it says is sealed
// under the patient's key (Content, a LabResultContent as JSON), and so
// is the reviewer's comment. Critical is set when an observation is
// flagged HH, LL or AA, so the reviewer's queue can put it first without
// opening anything.
type LabResult struct {
	ID, PracticeID, PatientID, OrderID, LabID string
	ReviewerID                                string // the ordering clinician
	Content, Comment                          Sealed
	Critical                                  bool
	Status                                    LabResultStatus
	Received, Reviewed, Released              time.Time
}

// LabResultContent is what a lab reported for one test: PHI, sealed.
type LabResultContent struct {
	Test         LabTestRef       `json:"test"`
	ResultStatus string           `json:"result_status,omitempty"` // OBR-25: P preliminary, F final, C corrected
	ObservedAt   string           `json:"observed_at,omitempty"`   // OBR-7, as the lab sent it
	Observations []LabObservation `json:"observations"`
	Notes        []string         `json:"notes,omitempty"`
	// OrderCancelled is set when the result arrived for an order the
	// clinician had cancelled: it is kept, but flagged.
	OrderCancelled bool `json:"order_cancelled,omitempty"`
}

// LabObservation is one reported value with its reference range and
// abnormal flags (HL7 table 0078: L, H, LL, HH, N, A, AA, …).
type LabObservation struct {
	Code      string   `json:"code"`
	Name      string   `json:"name"`
	ValueType string   `json:"value_type"`
	Value     string   `json:"value"`
	Numeric   string   `json:"numeric,omitempty"` // the value when it is a plain number, for trends
	Units     string   `json:"units,omitempty"`
	Range     string   `json:"range,omitempty"`
	Flags     []string `json:"flags,omitempty"`
	Notes     []string `json:"notes,omitempty"`
}

// FlagWords says an abnormal flag in plain words, for a patient.
func FlagWords(flag string) string {
	switch flag {
	case "N", "":
		return "Within the normal range"
	case "H":
		return "Above the normal range"
	case "L":
		return "Below the normal range"
	case "HH":
		return "Far above the normal range (critical)"
	case "LL":
		return "Far below the normal range (critical)"
	case "A":
		return "Outside the normal result"
	case "AA":
		return "Far outside the normal result (critical)"
	case ">":
		return "Above what the test can measure"
	case "<":
		return "Below what the test can measure"
	}
	return "Flagged by the lab (" + flag + ")"
}

// LabResultView is a result opened for a reader policy allowed.
type LabResultView struct {
	ID          string          `json:"id"`
	PatientID   string          `json:"patient_id"`
	PatientName string          `json:"patient_name,omitempty"`
	OrderID     string          `json:"order_id"`
	Lab         string          `json:"lab"`
	ReviewerID  string          `json:"reviewer_id"`
	Reviewer    string          `json:"reviewer"`
	Status      LabResultStatus `json:"status"`
	Critical    bool            `json:"critical"`
	Received    time.Time       `json:"received"`
	Released    *time.Time      `json:"released,omitempty"`
	Comment     string          `json:"comment,omitempty"`
	LabResultContent
	// Trends are earlier released values of this result's numeric tests,
	// oldest first, keyed by test code.
	Trends map[string][]TrendPoint `json:"trends,omitempty"`
}

// TrendPoint is one earlier value of a numeric test.
type TrendPoint struct {
	At    time.Time `json:"at"`
	Value string    `json:"value"`
	Flags []string  `json:"flags,omitempty"`
}

// LabUnmatched is a result message that matched no patient and order, or
// more than one, waiting for staff to match it by hand. It belongs to no
// patient yet, so it is sealed under the practice's key.
type LabUnmatched struct {
	ID, PracticeID, LabID string
	Message               Sealed // the message as received (ER7)
	Reason                string // no_patient, identity_mismatch, no_order, conflict
	Received              time.Time
}

// LabUnmatchedView is an unmatched message opened for staff: what the
// lab said about whom, and which tests, so a person can find the patient.
type LabUnmatchedView struct {
	ID        string    `json:"id"`
	Lab       string    `json:"lab"`
	Reason    string    `json:"reason"`
	Received  time.Time `json:"received"`
	Name      string    `json:"name"`
	BirthDate string    `json:"birth_date"`
	MRN       string    `json:"mrn"`
	Orders    []string  `json:"orders"` // placer order numbers as sent
	Tests     []string  `json:"tests"`
}

// Meaning says the observation's flags in plain words ("" when the lab
// flagged nothing).
func (o LabObservation) Meaning() string {
	var out []string
	for _, f := range o.Flags {
		out = append(out, FlagWords(f))
	}
	return strings.Join(out, "; ")
}

// Critical reports whether the lab flagged the value critical.
func (o LabObservation) Critical() bool {
	for _, f := range o.Flags {
		if f == "HH" || f == "LL" || f == "AA" {
			return true
		}
	}
	return false
}

// LabInterface is how a lab is recognised when it sends results: the
// SHA-256 of its client certificate (MLLP over mutual TLS) and the hash
// of its integration token (HTTPS). The certificate's subject and end
// date and the token's making date are kept so the admin can see what is
// registered; the token itself is shown once and never kept.
type LabInterface struct {
	LabID       string
	PracticeID  string
	CertSHA256  string // "" when no certificate is registered
	CertSubject string
	CertExpires time.Time
	TokenHash   string // "" when the lab has no token
	TokenMade   time.Time
	Updated     time.Time
}

package haven

import "time"

// AccessDays is how long a practice has to answer a request for access to
// a record (HIPAA 164.524(b)(2)): 30 days from its receipt.
const AccessDays = 30

// AccessRequest is a patient's written request for a copy of her record,
// as the front desk records it: when it was received (the 30-day clock
// starts there), and, sealed, whom the copy goes to when it is not the
// patient herself (another provider: then sending it is a disclosure).
type AccessRequest struct {
	ID, PracticeID, PatientID string
	Detail                    Sealed // JSON: recipient, how it was received
	Received, Due             time.Time
	RecordedBy                string
	Fulfilled                 *time.Time
	FulfilledBy               string
	CreatedAt                 time.Time
}

// AccessRequestView is a request as the front desk and the compliance
// officer see it in the practice's list: whose, when, the days left.
type AccessRequestView struct {
	ID          string     `json:"id"`
	PatientID   string     `json:"patient_id"`
	PatientName string     `json:"patient_name,omitempty"`
	Received    time.Time  `json:"received"`
	Due         time.Time  `json:"due"`
	DaysLeft    int        `json:"days_left"`
	Fulfilled   *time.Time `json:"fulfilled,omitempty"`
	// Recipient is whom the copy goes to; "" is the patient herself.
	// Shown only to the front desk, who record and fulfil the request.
	Recipient string `json:"recipient,omitempty"`
	ToOther   bool   `json:"to_another_provider"`
}

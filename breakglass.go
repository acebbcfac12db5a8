package haven

import "time"

// BreakGlassGrant is a clinician's time-boxed emergency access to one
// patient as storage holds it: the stated reason and the compliance
// officer's review are sealed under the patient's data key. Policy reads
// its user and times; an active grant opens reads (and note writing, to
// document the emergency) until Expires, never beyond policy's cap.
type BreakGlassGrant struct {
	ID, PracticeID, PatientID, UserID string
	Reason                            Sealed
	Start, Expires                    time.Time
	ReviewedAt                        *time.Time // nil until reviewed
	ReviewedBy                        string
	Review                            Sealed
}

// BreakGlassGrantView is a grant opened for the clinician who asked for it
// or the officer who reviews it: the reason in the clear, the clinician's
// name, and how often the grant was used.
type BreakGlassGrantView struct {
	ID         string     `json:"id"`
	PatientID  string     `json:"patient_id"`
	UserID     string     `json:"user_id"`
	UserName   string     `json:"user_name"`
	Reason     string     `json:"reason"`
	Start      time.Time  `json:"start"`
	Expires    time.Time  `json:"expires"`
	ReviewedAt *time.Time `json:"reviewed_at,omitempty"`
	Uses       int        `json:"uses"`
}

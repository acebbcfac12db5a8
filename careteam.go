package haven

import "time"

// CareTeamMember is one workforce member on a patient's care team, as
// storage holds it: the relationship policy reads to open the patient's
// record to them.
type CareTeamMember struct {
	PracticeID, PatientID, UserID string
	AddedBy                       string // the administrator who added them
	AddedAt                       time.Time
}

// Member is a person of a practice by name and role, as lists and pickers
// show them: a care team, the workforce, a patient found by name. The name
// is opened by the service for a reader policy allowed.
type Member struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
	Role   Role   `json:"role"`
}

package haven

import "time"

// VisitMessage is one waiting-room message of a visit as storage holds it:
// its body is sealed under the patient's data key, bound to its practice,
// patient and message id.
type VisitMessage struct {
	ID, PracticeID, VisitID, PatientID, SenderID string
	Body                                         Sealed
	CreatedUS                                    int64 // microseconds since the epoch, UTC
}

// VisitMessageView is a waiting-room message opened for a reader policy
// allowed: its body in the clear, and whether the patient or a workforce
// member (named) sent it.
type VisitMessageView struct {
	ID          string    `json:"id"`
	VisitID     string    `json:"visit_id"`
	SenderID    string    `json:"sender_id"`
	FromPatient bool      `json:"from_patient"`
	SenderName  string    `json:"sender_name,omitempty"` // a workforce sender's name, as the practice's roster shows it
	Body        string    `json:"body"`
	SentAt      time.Time `json:"sent_at"`
}

package haven

import "time"

// Patient is a patient's chart as storage holds it: every field that says
// something about the person is sealed, and the MRN is found by its blind
// index (keyed HMAC), never by its value. Storage fills and persists it;
// only the service opens it.
type Patient struct {
	ID           string // the patient's user id
	PracticeID   string
	MRNIndex     []byte
	MRN          Sealed
	Demographics Sealed
	Contact      Sealed
	Restrictions Sealed // the patient's Restrictions as JSON; nil when they set none
	Version      int    // raised by every change, for compare-and-swap updates
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

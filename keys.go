package haven

import "time"

// WrappedKey is one row of the key table: a key encrypted under its parent,
// never the key itself, so a database dump reveals no key material. The
// keyring makes and unwraps them; storage (which never imports the
// keyring) persists them through the keyring's Store interface, so the row
// type lives here where both can name it.
type WrappedKey struct {
	// PracticeID is the tenant the key belongs to (the keyring's
	// PlatformPracticeID for the platform's own records).
	PracticeID string
	// ID is a random identifier, unique across the table. A data key's
	// WrappedBy names its practice key by this ID.
	ID string
	// Kind is the keyring's KindPractice, KindIndex or KindData.
	Kind string
	// PatientID is the patient a data key belongs to; "" for practice keys,
	// index keys and a practice's own data key.
	PatientID string
	// Version counts from 1 within (PracticeID, Kind, PatientID). Sealed
	// values name the version of the key that sealed them.
	Version int
	// WrappedBy is the ID of the parent: a root's ID for practice and
	// index keys, a practice key's ID for data keys, "" once destroyed.
	WrappedBy string
	// Wrapped is the key encrypted under WrappedBy; nil once destroyed.
	Wrapped []byte
	// State is the keyring's StateActive, StateRetired or StateDestroyed.
	State string
	// CreatedAt is when the key was made (UTC).
	CreatedAt time.Time
}

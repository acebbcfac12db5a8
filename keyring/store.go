package keyring

import (
	"context"

	"haven"
)

// Kinds of wrapped key. They are plain strings so a SQL column holds them
// as they are.
const (
	// KindPractice is a practice key (KEK): one active version per practice,
	// wrapped by the root. It wraps the practice's data keys and nothing else.
	KindPractice = "practice"
	// KindIndex is a practice's blind-index key, wrapped by the root. It is
	// never used to encrypt, so a leaked index cannot help decrypt a field.
	KindIndex = "index"
	// KindData is a data key (DEK): one per patient, plus one per practice
	// (PatientID "") for practice-level records such as a workforce user's
	// email. It is wrapped by a practice key and seals fields and streams.
	KindData = "data"
)

// States of a wrapped key.
const (
	// StateActive keys wrap and unwrap, seal and open.
	StateActive = "active"
	// StateRetired keys still unwrap what they wrapped but wrap nothing new;
	// a practice key is retired when rotation has moved its data keys on.
	StateRetired = "retired"
	// StateDestroyed keys are tombstones: the wrapped bytes are gone, so what
	// they protected can never be read again (crypto-shredding). The row
	// stays so a destroyed patient key is never silently re-created.
	StateDestroyed = "destroyed"
)

// Store persists wrapped keys. A SQL table with a unique constraint on
// (practice_id, kind, patient_id, version) and a primary key on id
// implements it with one statement per method.
//
// Every step of rotation and shredding is one UpdateKey that moves a single
// row from a state it has read to a new one (compare-and-swap), so several
// nodes may rotate, shred and create keys at once and an interrupted run can
// simply be started again.
//
// Errors: a *haven.Error with code haven.ECONFLICT or haven.ENOTFOUND where
// the method says so; anything else is treated as the store being
// unavailable.
type Store interface {
	// CreateKey inserts k unless a key with the same ID or the same
	// (PracticeID, Kind, PatientID, Version) exists, in which case it
	// returns haven.ECONFLICT and changes nothing. Two requests racing to
	// create one patient's data key therefore end with one key: the loser
	// reads the winner's.
	CreateKey(ctx context.Context, k haven.WrappedKey) error

	// GetKey returns the key of (practiceID, kind, patientID, version), or
	// when version is 0 the one with the highest version. It returns
	// haven.ENOTFOUND if there is none.
	GetKey(ctx context.Context, practiceID, kind, patientID string, version int) (haven.WrappedKey, error)

	// ListKeys returns keys in ascending ID order whose ID is greater than
	// after, at most limit of them (limit > 0). An empty practiceID, kind or
	// wrappedBy matches any value.
	ListKeys(ctx context.Context, practiceID, kind, wrappedBy, after string, limit int) ([]haven.WrappedKey, error)

	// UpdateKey sets WrappedBy, Wrapped and State of the key with ID prev.ID
	// to next's, only if its stored WrappedBy and State still equal prev's.
	// It returns haven.ECONFLICT if they do not (another node moved the key
	// first) and haven.ENOTFOUND if there is no such key. Other fields never
	// change. A destroyed key's old wrapped bytes must be overwritten, not
	// merely hidden. A successful UpdateKey raises the key-state version
	// (see KeyState) in the same transaction.
	UpdateKey(ctx context.Context, prev, next haven.WrappedKey) error

	// KeyState returns the key-state version and the ID of the root new
	// practice and index keys must be wrapped by ("" until one is set).
	// The version never goes down, and is raised by every UpdateKey and
	// SetRoot in the transaction that makes the change, so a node that
	// reads it before using a cached key sees every shred, rotation step
	// and root change committed before its read. It is read before every
	// use of a data key: keep it one indexed single-row read.
	KeyState(ctx context.Context) (version int64, rootID string, err error)

	// SetRoot records next as the current root if the current root is still
	// prev (compare-and-swap), raising the version; otherwise it returns
	// haven.ECONFLICT and changes nothing. Of two rotations that start at
	// once, only one records its root.
	SetRoot(ctx context.Context, prev, next string) error
}

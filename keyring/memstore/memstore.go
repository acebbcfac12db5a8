// Package memstore is an in-memory key table for tests and for trying the
// keyring without a database. It holds only wrapped keys, never key
// material, and it deliberately does not import package keyring: it
// satisfies keyring.Store on haven.WrappedKey rows, exactly as a SQL
// adapter must.
package memstore

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"

	"haven"
)

// Store is a mutex-guarded map that keeps the same uniqueness rules as the
// SQL table: unique id, unique (practice, kind, patient, version).
type Store struct {
	mu      sync.Mutex
	keys    map[string]*haven.WrappedKey // by ID
	version int64                        // the key-state version
	root    string                       // the current root's ID
}

// New returns an empty store.
func New() *Store { return &Store{keys: map[string]*haven.WrappedKey{}} }

func clone(k haven.WrappedKey) haven.WrappedKey {
	k.Wrapped = bytes.Clone(k.Wrapped)
	return k
}

// CreateKey inserts k, or returns haven.ECONFLICT if its ID or its
// (practice, kind, patient, version) is taken.
func (s *Store) CreateKey(ctx context.Context, k haven.WrappedKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if k.ID == "" || k.Version < 1 {
		return haven.Errorf(haven.EINVALID, "key id and a version of at least 1 are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.keys {
		if x.ID == k.ID || (x.PracticeID == k.PracticeID && x.Kind == k.Kind && x.PatientID == k.PatientID && x.Version == k.Version) {
			return haven.Errorf(haven.ECONFLICT, "key %s version %d exists", k.Kind, k.Version)
		}
	}
	c := clone(k)
	s.keys[k.ID] = &c
	return nil
}

// GetKey returns the key of (practiceID, kind, patientID, version); version
// 0 means the highest.
func (s *Store) GetKey(ctx context.Context, practiceID, kind, patientID string, version int) (haven.WrappedKey, error) {
	if err := ctx.Err(); err != nil {
		return haven.WrappedKey{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *haven.WrappedKey
	for _, x := range s.keys {
		if x.PracticeID != practiceID || x.Kind != kind || x.PatientID != patientID {
			continue
		}
		if version == 0 && (best == nil || x.Version > best.Version) || version != 0 && x.Version == version {
			best = x
		}
	}
	if best == nil {
		return haven.WrappedKey{}, haven.Errorf(haven.ENOTFOUND, "no %s key version %d", kind, version)
	}
	return clone(*best), nil
}

// ListKeys returns matching keys in ID order after the cursor.
func (s *Store) ListKeys(ctx context.Context, practiceID, kind, wrappedBy, after string, limit int) ([]haven.WrappedKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, haven.Errorf(haven.EINVALID, "list limit must be positive")
	}
	s.mu.Lock()
	var out []haven.WrappedKey
	for _, x := range s.keys {
		if (practiceID == "" || x.PracticeID == practiceID) && (kind == "" || x.Kind == kind) &&
			(wrappedBy == "" || x.WrappedBy == wrappedBy) && x.ID > after {
			out = append(out, clone(*x))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b haven.WrappedKey) int { return strings.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// UpdateKey moves a key from prev's WrappedBy and State to next's.
func (s *Store) UpdateKey(ctx context.Context, prev, next haven.WrappedKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.keys[prev.ID]
	if !ok {
		return haven.Errorf(haven.ENOTFOUND, "no key %s", prev.ID)
	}
	if x.WrappedBy != prev.WrappedBy || x.State != prev.State {
		return haven.Errorf(haven.ECONFLICT, "key %s changed meanwhile", prev.ID)
	}
	clear(x.Wrapped) // a destroyed key's bytes are overwritten, not just dropped
	x.WrappedBy, x.Wrapped, x.State = next.WrappedBy, bytes.Clone(next.Wrapped), next.State
	s.version++
	return nil
}

// KeyState returns the key-state version and the current root's ID.
func (s *Store) KeyState(ctx context.Context) (int64, string, error) {
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, s.root, nil
}

// SetRoot moves the current root from prev to next.
func (s *Store) SetRoot(ctx context.Context, prev, next string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.root != prev {
		return haven.Errorf(haven.ECONFLICT, "the current root changed meanwhile")
	}
	s.root = next
	s.version++
	return nil
}

// Len returns how many keys are stored, destroyed ones included.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

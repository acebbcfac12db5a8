package session

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"haven"
)

// MemoryStore is a Store in memory, for tests.
type MemoryStore struct {
	mu       sync.Mutex
	sessions map[string]*Session // by ID
	byHash   map[string]string   // token hash → ID
}

func (m *MemoryStore) init() {
	if m.sessions == nil {
		m.sessions = map[string]*Session{}
		m.byHash = map[string]string{}
	}
}

// CreateSession implements Store.
func (m *MemoryStore) CreateSession(_ context.Context, s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if _, dup := m.sessions[s.ID]; dup {
		return haven.Errorf(haven.ECONFLICT, "session %s exists", s.ID)
	}
	if _, dup := m.byHash[string(s.TokenHash)]; dup {
		return haven.Errorf(haven.ECONFLICT, "session token exists")
	}
	s.TokenHash = slices.Clone(s.TokenHash)
	m.sessions[s.ID] = &s
	m.byHash[string(s.TokenHash)] = s.ID
	return nil
}

// SessionByTokenHash implements Store.
func (m *MemoryStore) SessionByTokenHash(_ context.Context, hash []byte) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	id, ok := m.byHash[string(hash)]
	if !ok {
		return Session{}, haven.Errorf(haven.ENOTFOUND, "no such session")
	}
	return *m.sessions[id], nil
}

func (m *MemoryStore) update(id string, fn func(*Session)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	s, ok := m.sessions[id]
	if !ok {
		return haven.Errorf(haven.ENOTFOUND, "no session %s", id)
	}
	fn(s)
	return nil
}

// TouchSession implements Store.
func (m *MemoryStore) TouchSession(_ context.Context, id string, at time.Time) error {
	return m.update(id, func(s *Session) {
		if at.After(s.LastSeen) {
			s.LastSeen = at
		}
	})
}

// RecordAuth implements Store.
func (m *MemoryStore) RecordAuth(_ context.Context, id string, at time.Time, mfa bool) error {
	return m.update(id, func(s *Session) { s.AuthTime, s.MFA = at, mfa })
}

// RevokeSession implements Store.
func (m *MemoryStore) RevokeSession(_ context.Context, userID, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	s, ok := m.sessions[id]
	if !ok || s.UserID != userID {
		return haven.Errorf(haven.ENOTFOUND, "no session %s", id)
	}
	if s.RevokedAt.IsZero() {
		s.RevokedAt = at
	}
	return nil
}

// RevokeUserSessions implements Store.
func (m *MemoryStore) RevokeUserSessions(_ context.Context, userID string, at time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.sessions {
		if s.UserID == userID && s.RevokedAt.IsZero() {
			s.RevokedAt = at
			n++
		}
	}
	return n, nil
}

// UserSessions implements Store.
func (m *MemoryStore) UserSessions(_ context.Context, userID string) ([]Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Session
	for _, s := range m.sessions {
		if s.UserID == userID && s.RevokedAt.IsZero() {
			out = append(out, *s)
		}
	}
	slices.SortFunc(out, func(a, b Session) int { return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

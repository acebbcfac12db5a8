package identity_test

import (
	"context"
	"testing"

	"haven"
	"haven/audit"
	"haven/internal/testkit/stack"
)

// env is a whole service stack on one real database (see stack.New); the
// identity service is built over it by identity().
type env struct {
	*stack.Stack
	t *testing.T
}

// practice is a seeded tenant: its people and patients.
type practice = stack.Practice

// forEachDB runs fn on a fresh stack over SQLite and, when available
// (always in CI), PostgreSQL.
func forEachDB(t *testing.T, fn func(t *testing.T, e *env)) {
	stack.ForEachDB(t, func(t *testing.T, s *stack.Stack) { fn(t, &env{Stack: s, t: t}) })
}

func newEnv(t *testing.T, dsn string) *env { return &env{Stack: stack.New(t, dsn), t: t} }

// lastEvent is the newest event in a practice's audit log.
func (e *env) lastEvent(practiceID string) audit.Event {
	e.t.Helper()
	rows, err := e.DB.SearchAudit(context.Background(), haven.AuditQuery{LogID: practiceID, Limit: 1})
	if err != nil || len(rows) == 0 {
		e.t.Fatalf("no audit event: %v", err)
	}
	return rows[0].Event
}

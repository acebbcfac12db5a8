package service_test

import (
	"context"
	"testing"

	"haven"
	"haven/audit"
	"haven/internal/testkit/stack"
	"haven/service"
	"haven/store/sqlstore"
)

// env is a whole service stack on one real database (see stack.New), under
// the names these tests use.
type env struct {
	t        *testing.T
	s        *stack.Stack
	db       *sqlstore.DB
	svc      *service.Service
	log      *audit.Log
	verifier string
	signer   *audit.Signer // the audit key every node of the deployment shares
	dataDir  string
	dsn      string
	clock    *stack.Clock
	videoKey []byte
}

// fastHasher keeps tests quick; see stack.FastHasher.
var fastHasher = stack.FastHasher

// forEachDB runs fn on a fresh stack over SQLite and, when available
// (always in CI), PostgreSQL.
func forEachDB(t *testing.T, fn func(t *testing.T, e *env)) {
	stack.ForEachDB(t, func(t *testing.T, s *stack.Stack) { fn(t, envOf(t, s)) })
}

func newEnv(t *testing.T, dsn string) *env { return envOf(t, stack.New(t, dsn)) }

func envOf(t *testing.T, s *stack.Stack) *env {
	return &env{t: t, s: s, db: s.DB, svc: s.Service, log: s.Log, verifier: s.Verifier, signer: s.Signer,
		dataDir: s.DataDir, dsn: s.DSN, clock: s.Clock, videoKey: s.VideoKey}
}

// practice is a seeded tenant: its people and patients.
type practice struct {
	id                        string
	admin, compliance, staff  haven.Actor
	clinician, otherClinician haven.Actor
	patientA, patientB        haven.Actor
	chartA, chartB            *service.Chart
}

// as returns a context carrying actor a, signed in with MFA just now.
func (e *env) as(a haven.Actor) context.Context { return e.s.As(a) }

// seed creates a practice with one of each role, two patients with charts,
// and clinician on patient A's care team (see Stack.Seed).
func (e *env) seed(name, marker string) *practice {
	p := e.s.Seed(name, marker)
	return &practice{id: p.ID, admin: p.Admin, compliance: p.Compliance, staff: p.Staff, clinician: p.Clinician,
		otherClinician: p.OtherClinician, patientA: p.PatientA, patientB: p.PatientB, chartA: p.ChartA, chartB: p.ChartB}
}

// assertNotInTheClear: see Stack.AssertNotInTheClear.
func (e *env) assertNotInTheClear(t *testing.T, mustHold string, markers ...string) {
	t.Helper()
	e.s.AssertNotInTheClear(t, mustHold, markers...)
}

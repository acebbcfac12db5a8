package service

import (
	"context"

	"haven"
	"haven/policy"
)

// ChartReadUnaudited is a chart read through the gate's steps without its
// audit append (load, decide, open): BenchmarkChartRead's same-run
// baseline, here because it needs the gate's unexported parts.
func ChartReadUnaudited(ctx context.Context, s *Service, patientID string) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	pf, err := s.db.PatientFacts(ctx, a.PracticeID, patientID, relationsFor(a))
	if err != nil {
		return err
	}
	row := pf.Patient
	if row == nil {
		return errNotFound
	}
	res := chartResource(policy.KindChart, row)
	f, _, err := s.patientFacts(ctx, a, res, pf)
	if err != nil {
		return err
	}
	if err := policy.Decide(a, policy.ChartRead, res, f).Err(); err != nil {
		return err
	}
	_, err = s.openChart(ctx, row)
	return err
}

// SetMaxScopeEvents lowers the bound on the audit events an incident's
// affected-patients list reads, so a test reaches it; the returned func
// restores it.
func SetMaxScopeEvents(n int) (restore func()) {
	old := maxScopeEvents
	maxScopeEvents = n
	return func() { maxScopeEvents = old }
}

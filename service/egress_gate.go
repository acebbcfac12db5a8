package service

import (
	"context"
	"sync"
	"time"

	"haven"
)

// EgressGate is CheckEgress for an adapter that reaches one outside system
// on every operation (the object store for each blob, the KMS for each
// key it wraps or unwraps): asked before each operation, it answers a
// decision already allowed from memory while nothing it rests on can have
// changed, and asks the registry otherwise.
//
// What it rests on: the vendor's row, which any node or the command line
// may change, and the clock, against the agreement's end. So an allowed
// decision is kept with the registry's version (VendorState, raised in the
// same transaction as every change to a vendor) and the end of the
// agreement; each operation reads the version, one single-row read, and
// asks the registry again when it moved or the agreement ended. A change
// committed anywhere is in force for the next operation on every node.
// Refusals are never kept: each one goes through CheckEgress, which
// audits it and alerts the registry's reviewers.
type EgressGate struct {
	s          *Service
	practiceID string
	vendorID   string
	phi        haven.PHILevel

	mu      sync.Mutex
	allowed bool
	version int64
	until   time.Time // the agreement's end; zero when it has none
}

// EgressGate returns the gate for sending what may carry phi to the
// vendor vendorID on behalf of practiceID ("" for the platform's own
// systems).
func (s *Service) EgressGate(practiceID, vendorID string, phi haven.PHILevel) *EgressGate {
	return &EgressGate{s: s, practiceID: practiceID, vendorID: vendorID, phi: phi}
}

// Allow returns nil when the vendor may receive this operation now, and
// otherwise the refusal (EFORBIDDEN, audited) or EUNAVAILABLE when the
// registry cannot be read: in both cases the adapter sends nothing.
func (g *EgressGate) Allow(ctx context.Context) error {
	version, err := g.s.db.VendorState(ctx)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the vendor registry")
	}
	now := g.s.now()
	g.mu.Lock()
	fresh := g.allowed && g.version == version && (g.until.IsZero() || now.Before(g.until))
	g.mu.Unlock()
	if fresh {
		return nil
	}
	v, err := g.s.CheckEgress(ctx, g.practiceID, g.vendorID, g.phi)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.allowed = false
		return err
	}
	g.allowed, g.version, g.until = true, version, time.Time{}
	if !v.BAAExpires.IsZero() {
		g.until = v.BAAEnd()
	}
	return nil
}

// Package audittest is the behaviour suite for audit.Store implementations
// and for the audit log running on them. A database adapter proves itself by
// calling TestStore (persistence rules, then the Log's group commit, proofs
// and checkpoints on top of it) and TestTamperEvidence (an insider's edits,
// deletions, insertions, reorderings, rollbacks and forgeries, each of which
// the verifier must name). BenchmarkAppend and BenchmarkVerify measure the
// same adapter against a same-run baseline.
//
// It holds test code only and must never be imported by production code.
package audittest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/audit"
)

// SampleEvent returns a valid, deterministic event number i of logID, with
// every field set, as the services would write it.
func SampleEvent(logID string, i int) audit.Event {
	roles := []haven.Role{haven.RoleClinician, haven.RoleStaff, haven.RolePatient, haven.RoleComplianceOfficer}
	actions := []string{"chart.read", "note.write", "auth.login", "visit.admit", "breakglass.grant"}
	return audit.Event{
		Time:         time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * 1001 * time.Microsecond),
		LogID:        logID,
		ActorID:      fmt.Sprintf("u%04d", i%97),
		ActorRole:    string(roles[i%len(roles)]),
		SessionID:    fmt.Sprintf("s%06d", i%1013),
		Action:       actions[i%len(actions)],
		ResourceKind: "note",
		ResourceID:   fmt.Sprintf("n%08d", i),
		PatientID:    fmt.Sprintf("pt%05d", i%331),
		Purpose:      audit.PurposeTreatment,
		Decision:     haven.DecisionAllow,
		Reason:       "care_team",
		ClientAddr:   fmt.Sprintf("192.0.2.%d", i%250+1),
		RequestID:    fmt.Sprintf("req-%d", i),
	}
}

// hookStore wraps a Store to inject faults and count commits, whatever
// database is underneath.
type hookStore struct {
	audit.Store
	mu      sync.Mutex
	commits int
	// before runs before the real append; a non-nil error is returned
	// instead of appending.
	before func() error
	// after runs after a successful real append; a non-nil error is
	// returned although the rows were stored (a commit whose
	// acknowledgement was lost).
	after func() error
}

func (h *hookStore) AppendLeaves(ctx context.Context, logID string, first uint64, b audit.Batch) error {
	h.mu.Lock()
	before, after := h.before, h.after
	h.mu.Unlock()
	if before != nil {
		if err := before(); err != nil {
			return err
		}
	}
	if err := h.Store.AppendLeaves(ctx, logID, first, b); err != nil {
		return err
	}
	h.mu.Lock()
	h.commits++
	h.mu.Unlock()
	if after != nil {
		return after()
	}
	return nil
}

func (h *hookStore) setBefore(f func() error) {
	h.mu.Lock()
	h.before = f
	h.mu.Unlock()
}

func (h *hookStore) setAfter(f func() error) {
	h.mu.Lock()
	h.after = f
	h.mu.Unlock()
}

func (h *hookStore) commitCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.commits
}

// gate blocks the commits that pass through it until opened; entered
// receives once per commit that reached the gate.
type gate struct {
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 1024), open: make(chan struct{})}
}

func (g *gate) wait() error {
	g.entered <- struct{}{}
	<-g.open
	return nil
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// waitFor polls cond until it holds. It bounds how long a broken
// implementation can hang a test; it asserts nothing about speed.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// newSigner returns a fresh checkpoint signer named name.
func newSigner(t testing.TB, name string) *audit.Signer {
	t.Helper()
	priv, _, err := audit.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// referenceRoot computes the RFC 6962 Merkle tree hash (section 2.1) of
// leaves by the definition, independently of the audit package's trees.
func referenceRoot(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		h := sha256.Sum256(nil)
		return h[:]
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(referenceRoot(leaves[:k]))
	h.Write(referenceRoot(leaves[k:]))
	return h.Sum(nil)
}

// referenceLeaf is SHA-256(0x00 || canonical bytes), by the definition.
func referenceLeaf(e audit.Event) []byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(e.Canonical())
	return h.Sum(nil)
}

// appendN appends n sample events to logID one call each and fails the test
// unless they get sequence numbers start..start+n-1.
func appendN(t testing.TB, l *audit.Log, logID string, start, n int) []audit.Event {
	t.Helper()
	ctx := context.Background()
	out := make([]audit.Event, 0, n)
	for i := start; i < start+n; i++ {
		e := SampleEvent(logID, i)
		seqs, err := l.Append(ctx, e)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if seqs[0] != uint64(i) {
			t.Fatalf("append %d got seq %d", i, seqs[0])
		}
		e.Seq = seqs[0]
		out = append(out, e)
	}
	return out
}

// sameEvent compares events as stored: times by instant.
func sameEvent(a, b audit.Event) bool {
	if !a.Time.Equal(b.Time) {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	return a == b
}

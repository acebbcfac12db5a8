package service_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/blob"
	"haven/blob/dir"
	"haven/internal/testkit"
	"haven/internal/testkit/stack"
	"haven/keyring"
	"haven/service"
)

// plainRoot is a KMS stand-in that counts the operations that reach it.
type plainRoot struct{ ops int }

func (r *plainRoot) ID() string { return "kms-test" }
func (r *plainRoot) Wrap(_ context.Context, p, _ []byte) ([]byte, error) {
	r.ops++
	return append([]byte(nil), p...), nil
}
func (r *plainRoot) Unwrap(_ context.Context, w, _ []byte) ([]byte, error) {
	r.ops++
	return append([]byte(nil), w...), nil
}

// TestOutsideSystemsAreGatedPerOperation: the object store and the KMS the
// server is configured with ask the vendor registry before every
// operation, not only at start. Retired on another node (as the command
// line does), the object store gets nothing on this node's very next
// operation, and the refusal is audited in the platform's log and
// alerted; the KMS whose agreement ends is refused from the day after,
// with no registry change at all, and used again once another node
// records a new agreement.
func TestOutsideSystemsAreGatedPerOperation(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		other := e.s.Node().Service
		vs, err := e.svc.RecognizeVendors(ctx, []service.ConfiguredVendor{
			{Kind: haven.VendorObjectStorage, Endpoint: "https://s3.gate.example", PHI: haven.PHIFull},
			{Kind: haven.VendorKMS, Endpoint: "https://vault.gate.example", PHI: haven.PHINone},
		})
		if err != nil {
			t.Fatal(err)
		}
		s3, kms := vs[0], vs[1]
		today := e.clock.Now().Truncate(24 * time.Hour)
		for _, v := range []*haven.Vendor{s3, kms} {
			ends := today.AddDate(1, 0, 0)
			if v == kms {
				ends = today // its agreement's last day is today
			}
			if _, err := e.svc.OperatorUpdateVendor(ctx, v.ID, func(v *haven.Vendor) {
				v.BAASigned, v.BAAExpires, v.BAADocument = today.AddDate(-1, 0, 0), ends, "contracts/"+v.Kind.Label()+".pdf"
			}); err != nil {
				t.Fatal(err)
			}
		}
		blobs := t.TempDir()
		if err := os.Chmod(blobs, 0o700); err != nil {
			t.Fatal(err)
		}
		inner, err := dir.Open(blobs)
		if err != nil {
			t.Fatal(err)
		}
		store := blob.Gated(inner, e.svc.EgressGate("", s3.ID, haven.PHIFull).Allow)
		if _, ok := store.(blob.Lister); !ok {
			t.Error("the gated directory store is no longer a Lister: the orphan sweep would skip it")
		}
		root := &plainRoot{}
		gated := keyring.GatedRoot(root, e.svc.EgressGate("", kms.ID, haven.PHINone).Allow)

		for i := 0; i < 3; i++ {
			if _, err := store.Put(ctx, "k1", bytes.NewReader([]byte("sealed"))); err != nil {
				t.Fatalf("put %d with a current agreement: %v", i, err)
			}
			if _, err := gated.Wrap(ctx, []byte("key"), nil); err != nil {
				t.Fatalf("wrap %d with a current agreement: %v", i, err)
			}
		}

		// Retired elsewhere: refused here at once, nothing reaches it.
		if err := other.OperatorRetireVendor(ctx, s3.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Put(ctx, "k2", bytes.NewReader([]byte("sealed"))); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("put after another node retired the object store: %v", err)
		}
		if _, err := store.Get(ctx, "k1"); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("get after another node retired the object store: %v", err)
		}
		if _, err := inner.Stat(ctx, "k2"); err == nil {
			t.Fatal("a refused put reached the object store")
		}
		var n int
		e.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1 AND action = $2 AND decision = 'deny' AND resource_id = $3`,
			audit.PlatformLogID, service.ActVendorEgress, s3.ID).Scan(&n)
		if n != 2 {
			t.Errorf("%d refusals of the object store in the platform's log, want 2", n)
		}
		alerts, err := e.db.Alerts(ctx, "", false)
		raised := false
		for _, a := range alerts {
			raised = raised || a.Rule == service.RuleEgressRefused
		}
		if err != nil || !raised {
			t.Errorf("no alert for the refused object store: %v", err)
		}

		// The KMS's agreement ends with today: tomorrow it is refused,
		// though nothing in the registry changed.
		before := root.ops
		e.clock.Advance(25 * time.Hour)
		if _, err := gated.Unwrap(ctx, []byte("key"), nil); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("unwrap after the KMS's agreement ended: %v", err)
		}
		if root.ops != before {
			t.Fatal("a refused unwrap reached the KMS")
		}
		// Another node records the renewed agreement: used again.
		if _, err := other.OperatorUpdateVendor(ctx, kms.ID, func(v *haven.Vendor) {
			v.BAAExpires = today.AddDate(2, 0, 0)
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := gated.Unwrap(ctx, []byte("key"), nil); err != nil {
			t.Fatalf("unwrap after another node renewed the agreement: %v", err)
		}
	})
}

// BenchmarkEgressGate is the cost of asking the registry before an
// operation: the gate (a version read, then memory) against CheckEgress
// (the vendor's row) each time.
func BenchmarkEgressGate(b *testing.B) {
	svc := stack.New(b, testkit.SQLite(b)).Service
	ctx := context.Background()
	vs, err := svc.RecognizeVendors(ctx, []service.ConfiguredVendor{{Kind: haven.VendorKMS, Endpoint: "https://vault.bench.example", PHI: haven.PHINone}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("gate", func(b *testing.B) {
		g := svc.EgressGate("", vs[0].ID, haven.PHINone)
		for b.Loop() {
			if err := g.Allow(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			if _, err := svc.CheckEgress(ctx, "", vs[0].ID, haven.PHINone); err != nil {
				b.Fatal(err)
			}
		}
	})
}

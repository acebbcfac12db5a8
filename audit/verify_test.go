package audit_test

import (
	"context"
	"testing"

	"haven/audit"
	"haven/audit/audittest"
	"haven/audit/memlog"
)

// verifyLog builds a log of n events with checkpoints at the given sizes,
// lets attack change the store, and returns the report.
func verifyLog(t *testing.T, n int, checkpoints []int, attack func(st *memlog.Store)) *audit.Report {
	t.Helper()
	ctx := context.Background()
	priv, pub, _ := audit.GenerateKey("haven.test")
	s, _ := audit.NewSigner(priv)
	st := memlog.New()
	l := audit.NewLog(st, audit.Options{Signer: s})
	defer l.Close()
	for i := range n {
		if _, err := l.Append(ctx, audittest.SampleEvent("p1", i)); err != nil {
			t.Fatal(err)
		}
		for _, c := range checkpoints {
			if c == i+1 {
				if _, err := l.Checkpoint(ctx, "p1"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	attack(st)
	rep, err := audit.Verify(ctx, st, "p1", pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func move(t *testing.T, st *memlog.Store, from, to uint64) {
	t.Helper()
	es, _ := st.Entries(context.Background(), "p1", from, from+1)
	if len(es) != 1 {
		t.Fatalf("no row %d", from)
	}
	es[0].Seq = to
	if err := st.UpdateEntry(context.Background(), "p1", from, es[0]); err != nil {
		t.Fatal(err)
	}
}

func kinds(rep *audit.Report) map[audit.ProblemKind][]uint64 {
	out := map[audit.ProblemKind][]uint64{}
	for _, p := range rep.Problems {
		out[p.Kind] = append(out[p.Kind], p.Seq)
	}
	return out
}

// Two renumbered deletions leave the tail shifted by two; each deletion is
// named once, at its own place.
func TestTwoRenumberedDeletionsAreNamedSeparately(t *testing.T) {
	rep := verifyLog(t, 50, nil, func(st *memlog.Store) {
		ctx := context.Background()
		st.DeleteEntry(ctx, "p1", 10)
		for s := uint64(11); s < 50; s++ {
			move(t, st, s, s-1)
		}
		st.DeleteEntry(ctx, "p1", 29) // originally 30
		for s := uint64(30); s < 49; s++ {
			move(t, st, s, s-1)
		}
	})
	got := kinds(rep)
	if len(rep.Problems) != 2 || len(got[audit.Deleted]) != 2 || got[audit.Deleted][0] != 10 || got[audit.Deleted][1] != 29 {
		t.Fatalf("problems %v", rep.Problems)
	}
}

// An edit inside a renumbered tail does not break the reading of the rest.
func TestEditInsideARenumberedTailIsNamed(t *testing.T) {
	rep := verifyLog(t, 40, nil, func(st *memlog.Store) {
		ctx := context.Background()
		st.DeleteEntry(ctx, "p1", 5)
		for s := uint64(6); s < 40; s++ {
			move(t, st, s, s-1)
		}
		es, _ := st.Entries(ctx, "p1", 20, 21)
		es[0].ActorID = "u0000"
		st.UpdateEntry(ctx, "p1", 20, es[0])
	})
	got := kinds(rep)
	if len(rep.Problems) != 2 || got[audit.Deleted][0] != 5 || got[audit.Edited][0] != 20 {
		t.Fatalf("problems %v", rep.Problems)
	}
	if p, _ := rep.First(); p.Seq != 5 {
		t.Fatalf("first %v", p)
	}
}

func TestEarliestOfSeveralEditsIsFirst(t *testing.T) {
	rep := verifyLog(t, 30, []int{10, 30}, func(st *memlog.Store) {
		ctx := context.Background()
		for _, s := range []uint64{25, 14, 15} {
			es, _ := st.Entries(ctx, "p1", s, s+1)
			es[0].Action = "auth.logout"
			st.UpdateEntry(ctx, "p1", s, es[0])
		}
	})
	p, ok := rep.First()
	if !ok || p.Kind != audit.Edited || p.Seq != 14 {
		t.Fatalf("first %v of %v", p, rep.Problems)
	}
	if rep.Vouched != 10 {
		t.Fatalf("vouched %d, want 10", rep.Vouched)
	}
}

// Two validly signed checkpoints of one size with different roots are a
// fork: the key signed two histories. Whichever the stored rows match, the
// other is reported.
func TestForkedCheckpointsAreRolledBack(t *testing.T) {
	ctx := context.Background()
	priv, pub, _ := audit.GenerateKey("haven.test")
	s, _ := audit.NewSigner(priv)
	a, b := memlog.New(), memlog.New()
	for i, st := range []*memlog.Store{a, b} {
		l := audit.NewLog(st, audit.Options{Signer: s})
		for j := range 5 {
			l.Append(ctx, audittest.SampleEvent("p1", j+i*100))
		}
		l.Close()
		if _, err := l.Checkpoint(ctx, "p1"); err != nil {
			t.Fatal(err)
		}
	}
	cps, _ := b.Checkpoints(ctx, "p1")
	rep, err := audit.Verify(ctx, a, "p1", pub, [][]byte{cps[0].Note})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := rep.First()
	if !ok || p.Kind != audit.RolledBack || p.Seq != 0 || p.End != 5 {
		t.Fatalf("fork: %v", rep.Problems)
	}
}

// The verifier pages through the store: a log several pages long verifies,
// and a deletion deep in it is named.
func TestVerifierStreamsLongLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 5000-entry log")
	}
	rep := verifyLog(t, 5000, []int{4096, 5000}, func(st *memlog.Store) {
		st.DeleteEntry(context.Background(), "p1", 4500)
	})
	if p, ok := rep.First(); !ok || p.Kind != audit.Deleted || p.Seq != 4500 {
		t.Fatalf("first %v", rep.Problems)
	}
	if rep.Vouched != 4096 || rep.Size != 4999 {
		t.Fatalf("report %+v", rep)
	}
}

func TestEmptyLogVerifies(t *testing.T) {
	rep := verifyLog(t, 0, nil, func(*memlog.Store) {})
	if !rep.OK() || rep.Size != 0 || len(rep.Root) != 32 {
		t.Fatalf("report %+v", rep)
	}
}

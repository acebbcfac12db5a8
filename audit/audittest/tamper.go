package audittest

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/audit"
)

// Insider is what someone with write access to the database can do to the
// audit rows behind Haven's back: plain SQL on the tables, nothing more. A
// database adapter implements it in its tests (one statement each) so the
// tamper suite attacks the real tables.
type Insider interface {
	// UpdateEntry overwrites every column of the row at seq with e,
	// including its sequence number (e.Seq may differ: the row moves, as
	// "UPDATE ... SET seq = ?" does). The target position must be free.
	UpdateEntry(ctx context.Context, logID string, seq uint64, e audit.Entry) error
	// DeleteEntry removes the row at seq.
	DeleteEntry(ctx context.Context, logID string, seq uint64) error
	// InsertEntry adds a row at e.Seq, which must be free.
	InsertEntry(ctx context.Context, logID string, e audit.Entry) error
	// DeleteCheckpoint removes the stored checkpoint at size, if any.
	DeleteCheckpoint(ctx context.Context, logID string, size uint64) error
}

// tamperFixture is a log of 40 events with checkpoints signed at sizes 10,
// 25 and 40, each stored and published to a directory witness, and a second
// log beside it.
type tamperFixture struct {
	st     audit.Store
	in     Insider
	signer *audit.Signer
	w      audit.DirWitness
	l      *audit.Log
}

const fixtureLog = "p1"

func newTamperFixture(t *testing.T, newStore func(t *testing.T) (audit.Store, Insider)) *tamperFixture {
	t.Helper()
	st, in := newStore(t)
	f := &tamperFixture{st: st, in: in, signer: newSigner(t, "haven.test"), w: audit.DirWitness{Dir: t.TempDir()}}
	f.l = audit.NewLog(st, audit.Options{Signer: f.signer, Witnesses: []audit.Witness{f.w}})
	t.Cleanup(func() { f.l.Close() })
	ctx := context.Background()
	for _, upto := range []int{10, 25, 40} {
		n, _ := f.l.Size(ctx, fixtureLog)
		appendN(t, f.l, fixtureLog, int(n), upto-int(n))
		if _, err := f.l.Checkpoint(ctx, fixtureLog); err != nil {
			t.Fatal(err)
		}
	}
	appendN(t, f.l, "p2", 0, 10)
	if _, err := f.l.Checkpoint(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *tamperFixture) entry(t *testing.T, logID string, seq uint64) audit.Entry {
	t.Helper()
	es, err := f.st.Entries(context.Background(), logID, seq, seq+1)
	if err != nil || len(es) != 1 {
		t.Fatalf("read row %d: %v", seq, err)
	}
	return es[0]
}

// move renumbers the row at from to to, keeping every other column.
func (f *tamperFixture) move(t *testing.T, from, to uint64) {
	t.Helper()
	e := f.entry(t, fixtureLog, from)
	e.Seq = to
	if err := f.in.UpdateEntry(context.Background(), fixtureLog, from, e); err != nil {
		t.Fatalf("move %d to %d: %v", from, to, err)
	}
}

func (f *tamperFixture) verify(t *testing.T, withWitness bool) *audit.Report {
	t.Helper()
	var witnessed [][]byte
	if withWitness {
		var err error
		if witnessed, err = f.w.Checkpoints(fixtureLog); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := audit.Verify(context.Background(), f.st, fixtureLog, f.signer.VerifierKey(), witnessed)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// expectFirst fails unless the report's first problem is kind at seq,
// named exactly.
func expectFirst(t *testing.T, rep *audit.Report, kind audit.ProblemKind, seq uint64) audit.Problem {
	t.Helper()
	p, ok := rep.First()
	if !ok {
		t.Fatalf("tampering went unnoticed: %+v", rep)
	}
	if p.Kind != kind || p.Seq != seq || !p.Exact() {
		t.Fatalf("first problem %v; want %s at entry %d\nall: %v", p, kind, seq, rep.Problems)
	}
	return p
}

// expectRange fails unless the first problem is kind and its range holds
// the entry that was actually changed.
func expectRange(t *testing.T, rep *audit.Report, kind audit.ProblemKind, from, end, changed uint64) {
	t.Helper()
	p, ok := rep.First()
	if !ok {
		t.Fatalf("tampering went unnoticed: %+v", rep)
	}
	if p.Kind != kind || p.Seq != from || p.End != end || changed < p.Seq || changed >= p.End {
		t.Fatalf("first problem %v; want %s in [%d, %d) holding entry %d\nall: %v", p, kind, from, end, changed, rep.Problems)
	}
}

// TestTamperEvidence attacks a log the way an insider with write access to
// the database would, and checks that the verifier notices and names the
// first bad entry. newStore returns a fresh store and the raw access to its
// tables.
func TestTamperEvidence(t *testing.T, newStore func(t *testing.T) (audit.Store, Insider)) {
	ctx := context.Background()

	t.Run("UntamperedLogVerifies", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		rep := f.verify(t, true)
		if !rep.OK() || rep.Size != 40 || rep.Vouched != 40 {
			t.Fatalf("report %+v", rep)
		}
	})

	edits := map[string]func(e *audit.Entry){
		"ActorHidden":      func(e *audit.Entry) { e.ActorID = "u0001" },
		"DenialMadeAllow":  func(e *audit.Entry) { e.Decision = audit.DecisionAllow; e.Reason = "" },
		"PatientChanged":   func(e *audit.Entry) { e.PatientID = "pt99999" },
		"TimeMovedByOneUs": func(e *audit.Entry) { e.Time = e.Time.Add(time.Microsecond) },
		"PurposeChanged":   func(e *audit.Entry) { e.Purpose = audit.PurposeBreakGlass },
	}
	for name, edit := range edits {
		t.Run("EditedField"+name+"IsNamed", func(t *testing.T) {
			f := newTamperFixture(t, newStore)
			e := f.entry(t, fixtureLog, 23)
			edit(&e)
			if err := f.in.UpdateEntry(ctx, fixtureLog, 23, e); err != nil {
				t.Fatal(err)
			}
			expectFirst(t, f.verify(t, false), audit.Edited, 23)
		})
	}

	t.Run("EditWithRecomputedLeafHashIsCaughtBySignedRoots", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		e := f.entry(t, fixtureLog, 23)
		e.ActorID = "u0001"
		e.LeafHash = e.Event.LeafHash()
		if err := f.in.UpdateEntry(ctx, fixtureLog, 23, e); err != nil {
			t.Fatal(err)
		}
		// No row gives it away; the roots signed at 25 and 40 do, and the
		// one signed at 10 clears everything before.
		expectRange(t, f.verify(t, false), audit.RolledBack, 10, 25, 23)
	})

	t.Run("DeletedEntryIsNamed", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		if err := f.in.DeleteEntry(ctx, fixtureLog, 23); err != nil {
			t.Fatal(err)
		}
		expectFirst(t, f.verify(t, false), audit.Deleted, 23)
	})

	t.Run("DeletedEntryWithTheRestRenumberedIsNamed", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		if err := f.in.DeleteEntry(ctx, fixtureLog, 23); err != nil {
			t.Fatal(err)
		}
		for s := uint64(24); s < 40; s++ {
			f.move(t, s, s-1)
		}
		expectFirst(t, f.verify(t, false), audit.Deleted, 23)
	})

	for _, validLeaf := range []bool{true, false} {
		name := "InsertedEntryWithItsOwnLeafHashIsNamed"
		if !validLeaf {
			name = "InsertedEntryWithAMadeUpLeafHashIsNamed"
		}
		t.Run(name, func(t *testing.T) {
			f := newTamperFixture(t, newStore)
			for s := uint64(39); s >= 23; s-- {
				f.move(t, s, s+1)
			}
			forged := SampleEvent(fixtureLog, 1000)
			forged.Seq = 23
			forged.Time = f.entry(t, fixtureLog, 22).Time.Add(time.Microsecond)
			leaf := forged.LeafHash()
			if !validLeaf {
				leaf = make([]byte, 32)
				rand.Read(leaf)
			}
			if err := f.in.InsertEntry(ctx, fixtureLog, audit.Entry{Event: forged, LeafHash: leaf}); err != nil {
				t.Fatal(err)
			}
			expectFirst(t, f.verify(t, false), audit.Inserted, 23)
		})
	}

	t.Run("SwappedEntriesAreNamed", func(t *testing.T) {
		for _, c := range []struct{ a, b uint64 }{{10, 30}, {23, 24}} {
			f := newTamperFixture(t, newStore)
			const parked = 1 << 40
			f.move(t, c.a, parked)
			f.move(t, c.b, c.a)
			f.move(t, parked, c.b)
			p := expectFirst(t, f.verify(t, false), audit.Reordered, c.a)
			if !strings.Contains(p.Detail, "moved") {
				t.Fatalf("detail %q", p.Detail)
			}
		}
	})

	t.Run("EntryMovedLaterIsNamedAsReordered", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		const parked = 1 << 40
		f.move(t, 12, parked)
		for s := uint64(13); s <= 20; s++ {
			f.move(t, s, s-1)
		}
		f.move(t, parked, 20)
		expectFirst(t, f.verify(t, false), audit.Reordered, 12)
	})

	t.Run("RowCopiedFromAnotherLogIsNamed", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		other := f.entry(t, "p2", 5)
		if err := f.in.DeleteEntry(ctx, fixtureLog, 5); err != nil {
			t.Fatal(err)
		}
		if err := f.in.InsertEntry(ctx, fixtureLog, other); err != nil {
			t.Fatal(err)
		}
		expectFirst(t, f.verify(t, false), audit.Edited, 5)
	})

	t.Run("TruncationIsCaughtByTheWitness", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		for s := uint64(30); s < 40; s++ {
			if err := f.in.DeleteEntry(ctx, fixtureLog, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.in.DeleteCheckpoint(ctx, fixtureLog, 40); err != nil {
			t.Fatal(err)
		}
		// With the stored checkpoint gone, the database alone looks like
		// a log that simply stopped at 30: this is why witnesses exist.
		if rep := f.verify(t, false); !rep.OK() || rep.Vouched != 25 {
			t.Fatalf("without the witness: %+v", rep)
		}
		expectFirst(t, f.verify(t, true), audit.RolledBack, 30)
	})

	t.Run("RollbackAndReappendIsCaughtByTheWitness", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		// Restore a backup taken at size 25, then keep running: the entries
		// 25..39 are replaced by others, every row and hash well formed.
		for s := uint64(25); s < 40; s++ {
			if err := f.in.DeleteEntry(ctx, fixtureLog, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.in.DeleteCheckpoint(ctx, fixtureLog, 40); err != nil {
			t.Fatal(err)
		}
		restored := audit.NewLog(f.st, audit.Options{Signer: f.signer, Witnesses: []audit.Witness{f.w}})
		defer restored.Close()
		for i := range 20 {
			if _, err := restored.Append(ctx, SampleEvent(fixtureLog, 500+i)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := restored.Checkpoint(ctx, fixtureLog); err != nil {
			t.Fatal(err)
		}
		if rep := f.verify(t, false); !rep.OK() {
			t.Fatalf("the restored database is self-consistent, yet: %v", rep.Problems)
		}
		expectRange(t, f.verify(t, true), audit.RolledBack, 25, 40, 25)
	})

	t.Run("RunningLogRefusesToAppendAfterEntriesVanish", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		for s := uint64(35); s < 40; s++ {
			if err := f.in.DeleteEntry(ctx, fixtureLog, s); err != nil {
				t.Fatal(err)
			}
		}
		// Not a retryable conflict: entries this node saw committed are
		// gone, and it says so instead of appending after the hole.
		if _, err := f.l.Append(ctx, SampleEvent(fixtureLog, 40)); haven.ErrorCode(err) != haven.EINTERNAL {
			t.Fatalf("append after entries vanished: %v, want %s", err, haven.EINTERNAL)
		}
	})

	t.Run("CheckpointForgedWithAnotherKeyIsRejected", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		e := f.entry(t, fixtureLog, 23)
		e.ActorID = "u0001"
		e.LeafHash = e.Event.LeafHash()
		if err := f.in.UpdateEntry(ctx, fixtureLog, 23, e); err != nil {
			t.Fatal(err)
		}
		for _, s := range []uint64{25, 40} {
			if err := f.in.DeleteCheckpoint(ctx, fixtureLog, s); err != nil {
				t.Fatal(err)
			}
		}
		// The forger uses the same key name, so only the key differs.
		forger := audit.NewLog(f.st, audit.Options{Signer: newSigner(t, "haven.test")})
		defer forger.Close()
		if _, err := forger.Checkpoint(ctx, fixtureLog); err != nil {
			t.Fatal(err)
		}
		rep := f.verify(t, false)
		expectRange(t, rep, audit.BadSignature, 10, 40, 23)
		if rep.Vouched != 10 {
			t.Fatalf("vouched %d, want 10", rep.Vouched)
		}
	})

	t.Run("CheckpointWithAnAlteredRootIsRejected", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		cps, err := f.st.Checkpoints(ctx, fixtureLog)
		if err != nil {
			t.Fatal(err)
		}
		var cp audit.Checkpoint
		for _, c := range cps {
			if c.Size == 25 {
				cp = c
			}
		}
		lines := bytes.SplitN(cp.Note, []byte("\n"), 4)
		lines[2] = []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
		cp.Note = bytes.Join(lines, []byte("\n"))
		if err := f.in.DeleteCheckpoint(ctx, fixtureLog, 25); err != nil {
			t.Fatal(err)
		}
		if err := f.st.PutCheckpoint(ctx, fixtureLog, cp); err != nil {
			t.Fatal(err)
		}
		rep := f.verify(t, false)
		p, ok := rep.First()
		if !ok || p.Kind != audit.BadSignature {
			t.Fatalf("altered checkpoint: %v", rep.Problems)
		}
	})

	t.Run("CheckpointOfAnotherLogIsRejected", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		cps, err := f.st.Checkpoints(ctx, "p2")
		if err != nil || len(cps) != 1 || cps[0].Size != 10 {
			t.Fatalf("p2 checkpoints: %v %v", cps, err)
		}
		if err := f.in.DeleteCheckpoint(ctx, fixtureLog, 10); err != nil {
			t.Fatal(err)
		}
		if err := f.st.PutCheckpoint(ctx, fixtureLog, cps[0]); err != nil {
			t.Fatal(err)
		}
		rep := f.verify(t, false)
		p, ok := rep.First()
		if !ok || p.Kind != audit.BadSignature || !strings.Contains(p.Detail, "another log") {
			t.Fatalf("another log's checkpoint: %v", rep.Problems)
		}
	})

	t.Run("WrongVerifierKeyTrustsNoCheckpoint", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		rep, err := audit.Verify(ctx, f.st, fixtureLog, newSigner(t, "haven.test").VerifierKey(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || rep.Vouched != 0 {
			t.Fatalf("checkpoints verified under the wrong key: %+v", rep)
		}
		if _, err := audit.Verify(ctx, f.st, fixtureLog, "", nil); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("verify without a key: %v", err)
		}
	})
}

package audittest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/audit"

	"golang.org/x/mod/sumdb/note"
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
	// DeleteWitnessed removes every record of what witnesses acknowledged
	// for the log.
	DeleteWitnessed(ctx context.Context, logID string) error
	// RewindHead makes whatever record the store keeps of where the log
	// ends (a head row) agree with the rows as they now are, as restoring
	// a whole backup of the database would. A store that keeps none does
	// nothing.
	RewindHead(ctx context.Context, logID string) error
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
		"DenialMadeAllow":  func(e *audit.Entry) { e.Decision = haven.DecisionAllow; e.Reason = "" },
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

	t.Run("EditWithRecomputedLeafHashIsNamed", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		e := f.entry(t, fixtureLog, 23)
		e.ActorID = "u0001"
		e.LeafHash = e.Event.LeafHash()
		if err := f.in.UpdateEntry(ctx, fixtureLog, 23, e); err != nil {
			t.Fatal(err)
		}
		// No row gives it away, and the roots signed at 25 and 40 only say
		// "somewhere in [10, 25)"; the seal signed when entry 23 was
		// appended names it.
		rep := f.verify(t, false)
		expectFirst(t, rep, audit.Unauthenticated, 23)
		if !slices.ContainsFunc(rep.Problems, func(p audit.Problem) bool { return p.Kind == audit.RolledBack && p.Seq == 10 && p.End == 25 }) {
			t.Fatalf("the checkpoint at 25 no longer reports the change: %v", rep.Problems)
		}
	})

	// The case: checkpoints are sparse (one, at the end), so the
	// signed roots alone would say "somewhere in [0, 40)".
	t.Run("EditWithRecomputedLeafHashIsNotARangeFromZero", func(t *testing.T) {
		st, in := newStore(t)
		signer := newSigner(t, "haven.test")
		l := audit.NewLog(st, audit.Options{Signer: signer})
		defer l.Close()
		appendN(t, l, fixtureLog, 0, 40)
		if _, err := l.Checkpoint(ctx, fixtureLog); err != nil {
			t.Fatal(err)
		}
		es, _ := st.Entries(ctx, fixtureLog, 31, 32)
		e := es[0]
		e.Decision, e.Reason = haven.DecisionAllow, "care_team"
		e.PatientID = "pt00001"
		e.LeafHash = e.Event.LeafHash()
		if err := in.UpdateEntry(ctx, fixtureLog, 31, e); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(ctx, st, fixtureLog, signer.VerifierKey(), nil)
		if err != nil {
			t.Fatal(err)
		}
		expectFirst(t, rep, audit.Unauthenticated, 31)
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
		if err := f.in.DeleteWitnessed(ctx, fixtureLog); err != nil {
			t.Fatal(err)
		}
		// With the stored checkpoint and the record of what the witness
		// acknowledged gone, the database alone looks like a log that
		// simply stopped at 30: this is why witnesses exist.
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
		if err := f.in.DeleteWitnessed(ctx, fixtureLog); err != nil {
			t.Fatal(err)
		}
		if err := f.in.RewindHead(ctx, fixtureLog); err != nil {
			t.Fatal(err)
		}
		restored := audit.NewLog(f.st, audit.Options{Signer: f.signer, Witnesses: []audit.Witness{f.w}})
		defer restored.Close()
		for i := range 20 {
			if _, err := restored.Append(ctx, SampleEvent(fixtureLog, 500+i)); err != nil {
				t.Fatal(err)
			}
		}
		// The witness will not take the rewritten history.
		var we *audit.WitnessError
		if _, err := restored.Checkpoint(ctx, fixtureLog); !errors.As(err, &we) || we.Reason != audit.WitnessFork {
			t.Fatalf("the witness took a rewritten history: %v", err)
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
		// The forger signs the tampered tree with a key of the same name
		// and origin, so only the key differs.
		hs, err := f.st.LeafHashes(ctx, fixtureLog, 0, 40)
		if err != nil {
			t.Fatal(err)
		}
		fpriv, _, _ := note.GenerateKey(rand.Reader, "haven.test/"+fixtureLog)
		fs, _ := note.NewSigner(fpriv)
		body := fmt.Sprintf("haven.test/%s\n40\n%s\n", fixtureLog, base64.StdEncoding.EncodeToString(referenceRoot(hs)))
		forged, err := note.Sign(&note.Note{Text: body}, fs)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.st.PutCheckpoint(ctx, fixtureLog, audit.Checkpoint{Size: 40, Note: forged}); err != nil {
			t.Fatal(err)
		}
		rep := f.verify(t, false)
		expectFirst(t, rep, audit.Unauthenticated, 23)
		if !slices.ContainsFunc(rep.Problems, func(p audit.Problem) bool { return p.Kind == audit.BadSignature && p.Seq == 10 && p.End == 40 }) {
			t.Fatalf("the forged checkpoint is not reported: %v", rep.Problems)
		}
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

	// THREATS.md's "insider framing a colleague": a copy of a real
	// chart.read with another actor, a new time and a correct leaf hash,
	// appended at the end.
	forge := func(t *testing.T, f *tamperFixture, seq uint64, seal []byte) {
		t.Helper()
		e := f.entry(t, fixtureLog, 38)
		e.Seq, e.ActorID, e.Time = seq, "u0042", e.Time.Add(time.Second)
		e.LeafHash, e.Seal = e.Event.LeafHash(), seal
		if err := f.in.InsertEntry(ctx, fixtureLog, e); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("ForgedEntryAppendedAtTheEndIsNamed", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		forge(t, f, 40, nil)
		p := expectFirst(t, f.verify(t, true), audit.Unauthenticated, 40)
		if !strings.Contains(p.Detail, "no signature") {
			t.Fatalf("detail %q", p.Detail)
		}
	})

	t.Run("ForgedEntryWithACopiedSealIsNamed", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		forge(t, f, 40, f.entry(t, fixtureLog, 39).Seal)
		expectFirst(t, f.verify(t, true), audit.Unauthenticated, 40)
	})

	t.Run("RunningLogRefusesToAdoptAForgedEntry", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		forge(t, f, 40, nil)
		// The node's next append finds the row, and fails closed instead
		// of extending it, checkpointing it or proving it.
		if _, err := f.l.Append(ctx, SampleEvent(fixtureLog, 41)); haven.ErrorCode(err) != haven.EINTERNAL {
			t.Fatalf("append after a forged row: %v, want %s", err, haven.EINTERNAL)
		}
		if _, err := f.l.Checkpoint(ctx, fixtureLog); haven.ErrorCode(err) != haven.EINTERNAL {
			t.Fatalf("checkpoint over a forged row: %v, want %s", err, haven.EINTERNAL)
		}
		if err := f.l.Ready(ctx); err == nil {
			t.Fatal("a node refusing its log reports ready")
		}
		if cps, _ := f.st.Checkpoints(ctx, fixtureLog); cps[len(cps)-1].Size != 40 {
			t.Fatalf("a checkpoint was signed at %d over the forged row", cps[len(cps)-1].Size)
		}
		// Another node, starting now, refuses it too.
		other := audit.NewLog(f.st, audit.Options{Signer: f.signer, Witnesses: []audit.Witness{f.w}})
		defer other.Close()
		if _, err := other.Check(ctx, fixtureLog); err == nil || !strings.Contains(err.Error(), "without the key") {
			t.Fatalf("a starting node adopted a forged row: %v", err)
		}
		if _, err := other.InclusionProof(ctx, fixtureLog, 40, 41); err == nil {
			t.Fatal("a node proved a forged row")
		}
		// Once the row is gone, the running node recovers.
		if err := f.in.DeleteEntry(ctx, fixtureLog, 40); err != nil {
			t.Fatal(err)
		}
		if err := f.l.Ready(ctx); err != nil {
			t.Fatalf("ready after the forged row was removed: %v", err)
		}
		if seqs, err := f.l.Append(ctx, SampleEvent(fixtureLog, 41)); err != nil || seqs[0] != 40 {
			t.Fatalf("append after recovery: %v %v", seqs, err)
		}
	})

	// A node sharing the database with this one catches up on the rows
	// it sealed: the seals are what it checks.
	t.Run("NodeCatchingUpAdoptsSealedRows", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		other := audit.NewLog(f.st, audit.Options{Signer: f.signer})
		defer other.Close()
		if seqs, err := other.Append(ctx, SampleEvent(fixtureLog, 40)); err != nil || seqs[0] != 40 {
			t.Fatalf("append on a second node: %v %v", seqs, err)
		}
		if seqs, err := f.l.Append(ctx, SampleEvent(fixtureLog, 41)); err != nil || seqs[0] != 41 {
			t.Fatalf("first node catching up: %v %v", seqs, err)
		}
		if rep := f.verify(t, true); !rep.OK() || rep.Authenticated != 42 {
			t.Fatalf("report %+v", rep)
		}
	})

	// Issue cases: a row copied over another, or copied to a new position,
	// is blamed where it sits, not at the entry it was copied from.
	t.Run("RowOverwrittenWithACopyOfAnEarlierRowIsNamedWhereItSits", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		e := f.entry(t, fixtureLog, 3)
		e.Seq = 31
		if err := f.in.DeleteEntry(ctx, fixtureLog, 31); err != nil {
			t.Fatal(err)
		}
		if err := f.in.InsertEntry(ctx, fixtureLog, e); err != nil {
			t.Fatal(err)
		}
		p := expectFirst(t, f.verify(t, true), audit.Edited, 31)
		if !strings.Contains(p.Detail, "copy of entry 3") {
			t.Fatalf("detail %q", p.Detail)
		}
	})

	for _, size := range []int{50, 60} {
		name := "RowCopiedToTheEndIsNamedWhereItSits"
		if size == 60 {
			name = "RowCopiedOverALaterRowIsNamedWhereItSits"
		}
		t.Run(name, func(t *testing.T) {
			st, in := newStore(t)
			signer := newSigner(t, "haven.test")
			l := audit.NewLog(st, audit.Options{Signer: signer})
			defer l.Close()
			appendN(t, l, fixtureLog, 0, size)
			if _, err := l.Checkpoint(ctx, fixtureLog); err != nil {
				t.Fatal(err)
			}
			es, _ := st.Entries(ctx, fixtureLog, 30, 31)
			e := es[0]
			e.Seq = 50
			if size > 50 {
				if err := in.DeleteEntry(ctx, fixtureLog, 50); err != nil {
					t.Fatal(err)
				}
			}
			if err := in.InsertEntry(ctx, fixtureLog, e); err != nil {
				t.Fatal(err)
			}
			rep, err := audit.Verify(ctx, st, fixtureLog, signer.VerifierKey(), nil)
			if err != nil {
				t.Fatal(err)
			}
			kind := audit.Inserted
			if size > 50 {
				kind = audit.Edited
			}
			p := expectFirst(t, rep, kind, 50)
			if !strings.Contains(p.Detail, "copy of entry 30") {
				t.Fatalf("detail %q", p.Detail)
			}
			for _, q := range rep.Problems {
				if q.Seq == 30 || strings.Contains(q.Detail, "20 entries") {
					t.Fatalf("entry 30 blamed: %v", rep.Problems)
				}
			}
		})
	}

	// THREATS.md: "a restart after a rollback refused".
	t.Run("RestartAfterARollbackIsRefused", func(t *testing.T) {
		for _, c := range []struct {
			name        string
			checkpoints bool // also delete the stored checkpoints and acknowledgements
		}{{"CaughtByTheStoredCheckpoint", false}, {"CaughtByTheWitness", true}} {
			t.Run(c.name, func(t *testing.T) {
				f := newTamperFixture(t, newStore)
				f.l.Close()
				for s := uint64(30); s < 40; s++ {
					if err := f.in.DeleteEntry(ctx, fixtureLog, s); err != nil {
						t.Fatal(err)
					}
				}
				if c.checkpoints {
					f.in.DeleteCheckpoint(ctx, fixtureLog, 40)
					f.in.DeleteWitnessed(ctx, fixtureLog)
				}
				restarted := audit.NewLog(f.st, audit.Options{Signer: f.signer, Witnesses: []audit.Witness{f.w}})
				defer restarted.Close()
				_, err := restarted.Check(ctx, fixtureLog)
				if err == nil || !strings.Contains(err.Error(), "rolled back") {
					t.Fatalf("restart on a rolled-back log: %v", err)
				}
				if n, _ := f.st.Size(ctx, fixtureLog); n != 30 {
					t.Fatalf("the refused node wrote: size %d", n)
				}
			})
		}
	})

	t.Run("StartWithAReplacedSigningKeyIsRefused", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		f.l.Close()
		// Both the private key and the verifier key beside it replaced.
		evil := newSigner(t, "haven.test")
		l := audit.NewLog(f.st, audit.Options{Signer: evil, Witnesses: []audit.Witness{f.w}})
		defer l.Close()
		if _, err := l.Check(ctx, fixtureLog); err == nil {
			t.Fatal("a replaced signing key was accepted")
		}
		// Only the private key replaced: the trusted verifier key does not
		// name it.
		trust, _ := audit.NewTrust(f.signer.VerifierKey())
		l2 := audit.NewLog(f.st, audit.Options{Signer: evil, Trust: trust})
		defer l2.Close()
		if _, err := l2.Check(ctx, fixtureLog); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("a signing key the verifier key does not name: %v", err)
		}
		if n, _ := f.st.Size(ctx, fixtureLog); n != 40 {
			t.Fatalf("a refused key wrote: size %d", n)
		}
	})

	t.Run("WitnessThatWentMissingIsNoticed", func(t *testing.T) {
		f := newTamperFixture(t, newStore)
		f.l.Close()
		// rm -rf of the witness's copy of the log; the database still
		// records what it acknowledged.
		if err := os.RemoveAll(filepath.Join(f.w.Dir, fixtureLog)); err != nil {
			t.Fatal(err)
		}
		restarted := audit.NewLog(f.st, audit.Options{Signer: f.signer, Witnesses: []audit.Witness{f.w}})
		defer restarted.Close()
		var we *audit.WitnessError
		if _, err := restarted.Check(ctx, fixtureLog); !errors.As(err, &we) || we.Reason != audit.WitnessBackwards {
			t.Fatalf("start with the witness's checkpoints gone: %v", err)
		}
		rep, err := audit.VerifyWith(ctx, f.st, fixtureLog, audit.VerifyOptions{Trust: mustTrust(t, f.signer), Witnesses: []audit.Witness{f.w}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || len(rep.Witnesses) != 1 || !errors.As(rep.Witnesses[0].Err, &we) || we.Reason != audit.WitnessBackwards {
			t.Fatalf("verify with the witness's checkpoints gone: %+v", rep.Witnesses)
		}
	})
}

func mustTrust(t *testing.T, s *audit.Signer) *audit.Trust {
	t.Helper()
	tr, err := audit.NewTrust(s.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

package audittest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/audit"
)

// TestStore runs the behaviour suite against fresh stores made by newStore:
// first the persistence rules every audit.Store keeps, then the audit log's
// group commit, failure handling, recovery, proofs and checkpoints running
// on that store.
func TestStore(t *testing.T, newStore func(t *testing.T) audit.Store) {
	t.Run("Store", func(t *testing.T) { testStoreRules(t, newStore) })
	t.Run("Log", func(t *testing.T) { testLog(t, newStore) })
}

// leaves returns the leaf hashes of events numbered from first.
func leavesFor(events []audit.Event, first uint64) ([]audit.Event, [][]byte) {
	out := make([]audit.Event, len(events))
	hs := make([][]byte, len(events))
	for i, e := range events {
		e.Seq = first + uint64(i)
		e.Time = e.Time.UTC().Truncate(time.Microsecond)
		out[i] = e
		hs[i] = e.LeafHash()
	}
	return out, hs
}

func samples(logID string, from, n int) []audit.Event {
	out := make([]audit.Event, n)
	for i := range out {
		out[i] = SampleEvent(logID, from+i)
	}
	return out
}

func testStoreRules(t *testing.T, newStore func(t *testing.T) audit.Store) {
	ctx := context.Background()

	t.Run("AppendedRowsComeBackExactly", func(t *testing.T) {
		st := newStore(t)
		evs := samples("p1", 0, 5)
		// Awkward but valid values: longest ids, empty optional fields, an
		// IPv6 address with a port, a time with microseconds.
		evs[2].ResourceID = "A.b_c:d-" + string(bytes.Repeat([]byte("z"), 120))
		evs[2].PatientID = ""
		evs[2].ActorRole = ""
		evs[2].ClientAddr = "[2001:db8::1]:8443"
		evs[2].Time = time.Date(2031, 12, 31, 23, 59, 59, 999999000, time.UTC)
		evs, hs := leavesFor(evs, 0)
		if err := st.AppendLeaves(ctx, "p1", 0, audit.Batch{Events: evs, LeafHashes: hs}); err != nil {
			t.Fatal(err)
		}
		got, err := st.Entries(ctx, "p1", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(evs) {
			t.Fatalf("got %d entries, want %d", len(got), len(evs))
		}
		for i, e := range got {
			if !sameEvent(e.Event, evs[i]) {
				t.Errorf("entry %d:\n got %+v\nwant %+v", i, e.Event, evs[i])
			}
			if !bytes.Equal(e.LeafHash, hs[i]) {
				t.Errorf("entry %d: leaf hash changed", i)
			}
			if !bytes.Equal(e.Event.LeafHash(), hs[i]) {
				t.Errorf("entry %d: the returned fields no longer hash to the leaf (a value did not round-trip)", i)
			}
		}
		lh, err := st.LeafHashes(ctx, "p1", 1, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(lh) != 3 || !bytes.Equal(lh[0], hs[1]) || !bytes.Equal(lh[2], hs[3]) {
			t.Fatalf("LeafHashes(1, 4) = %d hashes, not entries 1..3", len(lh))
		}
		if n, err := st.Size(ctx, "p1"); err != nil || n != 5 {
			t.Fatalf("Size = %d, %v; want 5", n, err)
		}
	})

	t.Run("EmptyLogHasSizeZero", func(t *testing.T) {
		st := newStore(t)
		if n, err := st.Size(ctx, "nobody"); err != nil || n != 0 {
			t.Fatalf("Size = %d, %v", n, err)
		}
		if es, err := st.Entries(ctx, "nobody", 0, 10); err != nil || len(es) != 0 {
			t.Fatalf("Entries = %d, %v", len(es), err)
		}
		if cps, err := st.Checkpoints(ctx, "nobody"); err != nil || len(cps) != 0 {
			t.Fatalf("Checkpoints = %d, %v", len(cps), err)
		}
	})

	t.Run("RangesAreHalfOpenAndClipped", func(t *testing.T) {
		st := newStore(t)
		evs, hs := leavesFor(samples("p1", 0, 10), 0)
		if err := st.AppendLeaves(ctx, "p1", 0, audit.Batch{Events: evs, LeafHashes: hs}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ from, to, want uint64 }{{0, 10, 10}, {3, 7, 4}, {8, 20, 2}, {10, 20, 0}, {5, 5, 0}} {
			es, err := st.Entries(ctx, "p1", c.from, c.to)
			if err != nil {
				t.Fatal(err)
			}
			if uint64(len(es)) != c.want {
				t.Errorf("Entries(%d, %d) = %d rows, want %d", c.from, c.to, len(es), c.want)
			}
			for i, e := range es {
				if e.Seq != c.from+uint64(i) {
					t.Errorf("Entries(%d, %d)[%d].Seq = %d", c.from, c.to, i, e.Seq)
				}
			}
		}
	})

	t.Run("StaleAppendRebasesOntoWhatWasAppendedMeanwhile", func(t *testing.T) {
		st := newStore(t)
		evs, hs := leavesFor(samples("p1", 0, 3), 0)
		seal := []byte("seal of 3")
		if err := st.AppendLeaves(ctx, "p1", 0, audit.Batch{Events: evs, LeafHashes: hs, Seal: seal}); err != nil {
			t.Fatal(err)
		}
		// A node that has seen one row: declining leaves everything as it was.
		mine := samples("p1", 10, 2)
		stale, staleHs := leavesFor(mine, 1)
		declined := audit.Batch{Events: stale, LeafHashes: staleHs, Rebase: func([][]byte, []byte) (audit.Batch, error) {
			return audit.Batch{}, haven.Errorf(haven.ECONFLICT, "declined")
		}}
		if err := st.AppendLeaves(ctx, "p1", 1, declined); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("declined rebase: %v, want %s", err, haven.ECONFLICT)
		}
		if n, _ := st.Size(ctx, "p1"); n != 3 {
			t.Fatalf("size %d after a declined rebase, want 3", n)
		}
		// Accepting: the store hands over rows 1 and 2 and the seal on row 2,
		// and stores the renumbered batch at 3.
		var gotSince [][]byte
		var gotSeal []byte
		b := audit.Batch{Events: stale, LeafHashes: staleHs, Rebase: func(since [][]byte, sinceSeal []byte) (audit.Batch, error) {
			gotSince, gotSeal = since, sinceSeal
			evs, hs := leavesFor(mine, 3)
			return audit.Batch{Events: evs, LeafHashes: hs, Seal: []byte("seal of 5")}, nil
		}}
		err := st.AppendLeaves(ctx, "p1", 1, b)
		if haven.ErrorCode(err) == haven.ECONFLICT && gotSince == nil {
			return // this store refuses instead of rebasing, which the contract allows
		}
		if err != nil {
			t.Fatalf("rebased append: %v", err)
		}
		if len(gotSince) != 2 || !bytes.Equal(gotSince[0], hs[1]) || !bytes.Equal(gotSince[1], hs[2]) || !bytes.Equal(gotSeal, seal) {
			t.Fatalf("rebase was offered %d leaves and seal %q, want rows 1 and 2 and %q", len(gotSince), gotSeal, seal)
		}
		es, _ := st.Entries(ctx, "p1", 0, 10)
		if len(es) != 5 || es[3].RequestID != mine[0].RequestID || es[4].RequestID != mine[1].RequestID || es[4].Seq != 4 || string(es[4].Seal) != "seal of 5" {
			t.Fatalf("after the rebased append: %d entries, want the two new ones at 3 and 4 sealed", len(es))
		}
		// A rebase that returns a misnumbered batch stores nothing.
		bad := audit.Batch{Events: stale, LeafHashes: staleHs, Rebase: func([][]byte, []byte) (audit.Batch, error) {
			evs, hs := leavesFor(samples("p1", 20, 1), 9)
			return audit.Batch{Events: evs, LeafHashes: hs}, nil
		}}
		if err := st.AppendLeaves(ctx, "p1", 1, bad); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("misnumbered rebase: %v, want %s", err, haven.EINVALID)
		}
		if n, _ := st.Size(ctx, "p1"); n != 5 {
			t.Fatalf("size %d after a misnumbered rebase, want 5", n)
		}
	})

	t.Run("AppendAtStalePositionIsConflictAndStoresNothing", func(t *testing.T) {
		st := newStore(t)
		evs, hs := leavesFor(samples("p1", 0, 3), 0)
		if err := st.AppendLeaves(ctx, "p1", 0, audit.Batch{Events: evs, LeafHashes: hs}); err != nil {
			t.Fatal(err)
		}
		for _, first := range []uint64{0, 2, 4} {
			evs, hs := leavesFor(samples("p1", 10, 2), first)
			err := st.AppendLeaves(ctx, "p1", first, audit.Batch{Events: evs, LeafHashes: hs})
			if haven.ErrorCode(err) != haven.ECONFLICT {
				t.Errorf("append at %d of a log of size 3 = %v, want %s", first, err, haven.ECONFLICT)
			}
		}
		if n, _ := st.Size(ctx, "p1"); n != 3 {
			t.Fatalf("size %d after refused appends, want 3", n)
		}
		es, _ := st.Entries(ctx, "p1", 0, 10)
		for i, e := range es {
			if !sameEvent(e.Event, evs[i]) {
				t.Fatalf("a refused append changed entry %d", i)
			}
		}
	})

	t.Run("MisnumberedBatchIsRefusedWhole", func(t *testing.T) {
		st := newStore(t)
		evs, hs := leavesFor(samples("p1", 0, 3), 0)
		evs[2].Seq = 7
		if err := st.AppendLeaves(ctx, "p1", 0, audit.Batch{Events: evs, LeafHashes: hs}); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("misnumbered batch: %v, want %s", err, haven.EINVALID)
		}
		evs, hs = leavesFor(samples("p1", 0, 3), 0)
		if err := st.AppendLeaves(ctx, "p1", 0, audit.Batch{Events: evs, LeafHashes: hs[:2]}); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("missing leaf hash: %v, want %s", err, haven.EINVALID)
		}
		if n, _ := st.Size(ctx, "p1"); n != 0 {
			t.Fatalf("refused batch left size %d", n)
		}
	})

	t.Run("ConcurrentAppendsAtOnePositionHaveOneWinner", func(t *testing.T) {
		st := newStore(t)
		const racers = 8
		var wg sync.WaitGroup
		errs := make([]error, racers)
		for r := range racers {
			wg.Go(func() {
				evs, hs := leavesFor(samples("p1", r*10, 2), 0)
				errs[r] = st.AppendLeaves(ctx, "p1", 0, audit.Batch{Events: evs, LeafHashes: hs})
			})
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch haven.ErrorCode(err) {
			case "":
				wins++
			case haven.ECONFLICT:
			default:
				t.Errorf("racing append: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d racing appends at position 0 succeeded, want exactly 1", wins)
		}
		if n, _ := st.Size(ctx, "p1"); n != 2 {
			t.Fatalf("size %d, want 2", n)
		}
	})

	t.Run("LogsAreIndependent", func(t *testing.T) {
		st := newStore(t)
		for _, id := range []string{"pb", "pa", audit.PlatformLogID} {
			evs, hs := leavesFor(samples(id, 0, 2), 0)
			if err := st.AppendLeaves(ctx, id, 0, audit.Batch{Events: evs, LeafHashes: hs}); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		}
		if err := st.PutCheckpoint(ctx, "pc", audit.Checkpoint{Size: 0, Note: []byte("n\n")}); err != nil {
			t.Fatal(err)
		}
		ids, err := st.Logs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"pa", "pb", "pc", audit.PlatformLogID}
		if len(ids) != len(want) {
			t.Fatalf("Logs = %v, want %v", ids, want)
		}
		for i := range want {
			if ids[i] != want[i] {
				t.Fatalf("Logs = %v, want %v", ids, want)
			}
		}
		es, _ := st.Entries(ctx, "pa", 0, 10)
		for _, e := range es {
			if e.LogID != "pa" {
				t.Fatalf("log pa returned a row of log %s", e.LogID)
			}
		}
	})

	t.Run("CheckpointsAreOrderedAndNeverReplaced", func(t *testing.T) {
		st := newStore(t)
		note := func(size uint64) []byte { return fmt.Appendf(nil, "checkpoint %d\n", size) }
		for _, size := range []uint64{20, 5, 1000} {
			if err := st.PutCheckpoint(ctx, "p1", audit.Checkpoint{Size: size, Note: note(size)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.PutCheckpoint(ctx, "p1", audit.Checkpoint{Size: 20, Note: note(20)}); err != nil {
			t.Fatalf("storing the same checkpoint again: %v", err)
		}
		if err := st.PutCheckpoint(ctx, "p1", audit.Checkpoint{Size: 20, Note: []byte("other\n")}); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("a different note at a stored size: %v, want %s", err, haven.ECONFLICT)
		}
		cps, err := st.Checkpoints(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		if len(cps) != 3 || cps[0].Size != 5 || cps[1].Size != 20 || cps[2].Size != 1000 {
			t.Fatalf("Checkpoints not in size order: %v", cps)
		}
		if !bytes.Equal(cps[1].Note, note(20)) {
			t.Fatalf("checkpoint at 20 was replaced")
		}
	})

	t.Run("SealIsStoredWithTheBatchsLastRowOnly", func(t *testing.T) {
		st := newStore(t)
		evs, hs := leavesFor(samples("p1", 0, 3), 0)
		seal := []byte("\u2014 haven.test/p1 c2VhbA==\n")
		if err := st.AppendLeaves(ctx, "p1", 0, audit.Batch{Events: evs, LeafHashes: hs, Seal: seal}); err != nil {
			t.Fatal(err)
		}
		evs, hs = leavesFor(samples("p1", 3, 1), 3)
		if err := st.AppendLeaves(ctx, "p1", 3, audit.Batch{Events: evs, LeafHashes: hs}); err != nil {
			t.Fatal(err)
		}
		es, _ := st.Entries(ctx, "p1", 0, 10)
		for i, e := range es {
			if want := i == 2; (len(e.Seal) > 0) != want || want && !bytes.Equal(e.Seal, seal) {
				t.Fatalf("row %d seal %q", i, e.Seal)
			}
		}
		for seq, want := range map[uint64][]byte{2: seal, 1: nil, 3: nil, 99: nil} {
			if got, err := st.Seal(ctx, "p1", seq); err != nil || !bytes.Equal(got, want) || (want == nil) != (got == nil) {
				t.Fatalf("Seal(%d) = %q, %v", seq, got, err)
			}
		}
	})

	t.Run("WitnessedKeepsEachWitnesssLargestAcknowledgement", func(t *testing.T) {
		st := newStore(t)
		for _, a := range []struct {
			w    string
			size uint64
		}{{"wb", 5}, {"wa", 3}, {"wb", 9}, {"wb", 7}, {"wb", 9}} {
			if err := st.PutWitnessed(ctx, "p1", a.w, audit.Checkpoint{Size: a.size, Note: fmt.Appendf(nil, "%s %d\n", a.w, a.size)}); err != nil {
				t.Fatal(err)
			}
		}
		ws, err := st.Witnessed(ctx, "p1")
		if err != nil || len(ws) != 2 || ws[0].Witness != "wa" || ws[0].Size != 3 || ws[1].Witness != "wb" || ws[1].Size != 9 || string(ws[1].Note) != "wb 9\n" {
			t.Fatalf("Witnessed = %+v, %v", ws, err)
		}
		if ws, _ := st.Witnessed(ctx, "p2"); len(ws) != 0 {
			t.Fatalf("another log's acknowledgements: %+v", ws)
		}
		if ids, _ := st.Logs(ctx); len(ids) != 1 || ids[0] != "p1" {
			t.Fatalf("Logs = %v; a log known only to a witness is a log", ids)
		}
	})

	t.Run("OneHandoverPerKey", func(t *testing.T) {
		st := newStore(t)
		if err := st.PutHandover(ctx, "k1", []byte("a\n")); err != nil {
			t.Fatal(err)
		}
		if err := st.PutHandover(ctx, "k1", []byte("a\n")); err != nil {
			t.Fatalf("the same hand-over again: %v", err)
		}
		if err := st.PutHandover(ctx, "k1", []byte("b\n")); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("a second hand-over from one key: %v, want %s", err, haven.ECONFLICT)
		}
		st.PutHandover(ctx, "k2", []byte("c\n"))
		if hs, err := st.Handovers(ctx); err != nil || len(hs) != 2 {
			t.Fatalf("Handovers = %d, %v", len(hs), err)
		}
	})

	t.Run("WriteProbeSucceedsOnAWritableStore", func(t *testing.T) {
		st := newStore(t)
		p, ok := st.(audit.WriteProber)
		if !ok {
			t.Skip("the store has no write probe")
		}
		if err := p.ProbeAppend(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := st.Size(ctx, "p1"); n != 0 {
			t.Fatal("the probe wrote a row")
		}
	})
}

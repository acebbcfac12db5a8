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
		if err := st.AppendLeaves(ctx, "p1", 0, evs, hs); err != nil {
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
		if err := st.AppendLeaves(ctx, "p1", 0, evs, hs); err != nil {
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

	t.Run("AppendAtStalePositionIsConflictAndStoresNothing", func(t *testing.T) {
		st := newStore(t)
		evs, hs := leavesFor(samples("p1", 0, 3), 0)
		if err := st.AppendLeaves(ctx, "p1", 0, evs, hs); err != nil {
			t.Fatal(err)
		}
		for _, first := range []uint64{0, 2, 4} {
			evs, hs := leavesFor(samples("p1", 10, 2), first)
			err := st.AppendLeaves(ctx, "p1", first, evs, hs)
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
		if err := st.AppendLeaves(ctx, "p1", 0, evs, hs); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("misnumbered batch: %v, want %s", err, haven.EINVALID)
		}
		evs, hs = leavesFor(samples("p1", 0, 3), 0)
		if err := st.AppendLeaves(ctx, "p1", 0, evs, hs[:2]); haven.ErrorCode(err) != haven.EINVALID {
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
				errs[r] = st.AppendLeaves(ctx, "p1", 0, evs, hs)
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
			if err := st.AppendLeaves(ctx, id, 0, evs, hs); err != nil {
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
}

package sqlstore_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"haven"
	"haven/audit"
	"haven/audit/audittest"
	"haven/internal/testkit"
	"haven/store/sqlstore"
)

// The head row (audit_heads) is what lets an append skip looking for the
// log's end. These tests hold it to the rows: an insider who edits one and
// not the other is refused at the next append, with nothing stored, and the
// head moves with every append on both engines.

// seedLog appends n events to logID through a real Log and returns it.
func seedLog(t *testing.T, db *sqlstore.DB, logID string, n int) *audit.Log {
	t.Helper()
	ctx := context.Background()
	l := audit.NewLog(db, audit.Options{Signer: testSigner(t)})
	t.Cleanup(func() { l.Close() })
	for i := range n {
		if _, err := l.Append(ctx, audittest.SampleEvent(logID, i)); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func testSigner(t testing.TB) *audit.Signer {
	t.Helper()
	priv, _, err := audit.GenerateKey("haven.test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func headOf(t *testing.T, db *sqlstore.DB, logID string) (size int64, lastLeaf []byte) {
	t.Helper()
	if err := db.SQL().QueryRow(`SELECT size, last_leaf FROM audit_heads WHERE log_id = $1`, logID).Scan(&size, &lastLeaf); err != nil {
		t.Fatal(err)
	}
	return size, lastLeaf
}

func rowCount(t *testing.T, db *sqlstore.DB, logID string) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1`, logID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAuditHeadMovesWithEveryAppend(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		seedLog(t, db, "p1", 7)
		seedLog(t, db, "p2", 3)
		for logID, want := range map[string]int64{"p1": 7, "p2": 3} {
			size, last := headOf(t, db, logID)
			es, err := db.Entries(ctx, logID, uint64(want-1), uint64(want))
			if err != nil || len(es) != 1 {
				t.Fatalf("%s: last entry: %v %v", logID, es, err)
			}
			if size != want || string(last) != string(es[0].LeafHash) {
				t.Errorf("%s: head (%d, %x), want (%d, %x)", logID, size, last, want, es[0].LeafHash)
			}
			if got, err := db.Size(ctx, logID); err != nil || got != uint64(want) {
				t.Errorf("%s: Size = %d, %v; want %d", logID, got, err, want)
			}
		}
		if got, err := db.Size(ctx, "p3"); err != nil || got != 0 {
			t.Errorf("Size of a log never written = %d, %v", got, err)
		}
	})
}

// TestAuditHeadAndRowsDisagreeingIsRefused edits the head or the rows at
// the log's end with plain SQL, as an insider would, and appends at the
// position the head or the rows claim: every one is refused as evidence
// (EINTERNAL, not a conflict to retry), nothing is stored, and Size counts
// the rows as they are.
func TestAuditHeadAndRowsDisagreeingIsRefused(t *testing.T) {
	const n = 12
	cases := []struct {
		name     string
		tamper   string // SQL with $1 the log id
		rowsLeft int    // rows after the tampering
		wantSize uint64 // what Size says afterwards
	}{
		{"LastRowsRemoved", `DELETE FROM audit_events WHERE log_id = $1 AND seq >= 9`, 9, 9},
		{"HeadMovedBack", `UPDATE audit_heads SET size = 8 WHERE log_id = $1`, n, n},
		{"HeadMovedForward", `UPDATE audit_heads SET size = 20 WHERE log_id = $1`, n, n},
		{"HeadRemoved", `DELETE FROM audit_heads WHERE log_id = $1`, n, n},
		{"RowAppendedPastTheHead", `INSERT INTO audit_events (log_id, seq, time_us, actor_id, actor_role, session_id, action, resource_kind,
			resource_id, patient_id, purpose, decision, reason, client_addr, request_id, leaf_hash)
			SELECT log_id, seq + 1, time_us, actor_id, actor_role, session_id, action, resource_kind, resource_id, patient_id,
			purpose, decision, reason, client_addr, request_id, leaf_hash FROM audit_events WHERE log_id = $1 AND seq = 11`, n + 1, n + 1},
		{"LastRowReplaced", `UPDATE audit_events SET leaf_hash = (SELECT leaf_hash FROM audit_events WHERE log_id = $1 AND seq = 3)
			WHERE log_id = $1 AND seq = 11`, n, n},
		{"HeadLeafEdited", `UPDATE audit_heads SET last_leaf = (SELECT leaf_hash FROM audit_events WHERE log_id = $1 AND seq = 3)
			WHERE log_id = $1`, n, n},
	}
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					ctx := context.Background()
					db := mustOpen(t, dsn)
					// Each case gets a log of its own in the shared database.
					logID := "p" + haven.NewID()[:8]
					running := seedLog(t, db, logID, n)
					if _, err := db.SQL().ExecContext(ctx, c.tamper, logID); err != nil {
						t.Fatal(err)
					}
					if got, err := db.Size(ctx, logID); err != nil || got != c.wantSize {
						t.Errorf("Size = %d, %v; want %d", got, err, c.wantSize)
					}
					// The store itself, at the position the running node
					// holds and at the one the head claims.
					for _, at := range []uint64{n, 8, 9, 20} {
						ev := audittest.SampleEvent(logID, 1000)
						ev.Seq = at
						err := db.AppendLeaves(ctx, logID, at, audit.Batch{Events: []audit.Event{ev}, LeafHashes: [][]byte{ev.LeafHash()}})
						if haven.ErrorCode(err) != haven.EINTERNAL {
							t.Errorf("append at %d: %v, want %s", at, err, haven.EINTERNAL)
						}
					}
					// The node that was running, and one starting now.
					if _, err := running.Append(ctx, audittest.SampleEvent(logID, 1001)); haven.ErrorCode(err) != haven.EINTERNAL {
						t.Errorf("running node's append: %v, want %s", err, haven.EINTERNAL)
					}
					fresh := audit.NewLog(db, audit.Options{Signer: testSigner(t)})
					defer fresh.Close()
					if _, err := fresh.Append(ctx, audittest.SampleEvent(logID, 1002)); err == nil {
						t.Error("a node starting on the tampered log appended to it")
					}
					if got := rowCount(t, db, logID); got != c.rowsLeft {
						t.Errorf("%d rows after refused appends, want %d: something was stored", got, c.rowsLeft)
					}
				})
			}
		})
	}
}

// TestTwoNodesAppendingAtOnceFormOneLog runs two nodes, each with its own
// connection pool and its own Log, appending concurrently to one log in one
// database (PostgreSQL when available, as several haven serve processes
// would): the head serializes them into one contiguous log that verifies.
func TestTwoNodesAppendingAtOnceFormOneLog(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			signer := testSigner(t)
			var nodes []*audit.Log
			var dbs []*sqlstore.DB
			for range 2 {
				db := mustOpen(t, dsn)
				dbs = append(dbs, db)
				// Small batches: many commits, so the nodes collide often.
				l := audit.NewLog(db, audit.Options{Signer: signer, MaxBatch: 3})
				nodes = append(nodes, l)
			}
			var mu sync.Mutex
			var seqs []uint64
			var wg sync.WaitGroup
			const workers, each = 16, 15
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						got, err := nodes[w%2].Append(ctx, audittest.SampleEvent("p1", w*100+i))
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						seqs = append(seqs, got...)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			for _, l := range nodes {
				l.Close()
			}
			slices.Sort(seqs)
			for i, s := range seqs {
				if s != uint64(i) {
					t.Fatalf("the nodes' appends have a gap or a repeat at %d: %d", i, s)
				}
			}
			if len(seqs) != workers*each {
				t.Fatalf("%d appends acknowledged, want %d", len(seqs), workers*each)
			}
			if size, _ := headOf(t, dbs[0], "p1"); size != workers*each {
				t.Errorf("head says %d, want %d", size, workers*each)
			}
			rep, err := audit.Verify(ctx, dbs[1], "p1", signer.VerifierKey(), nil)
			if err != nil || !rep.OK() || rep.Size != workers*each {
				t.Fatalf("verify: %v %+v", err, rep)
			}
		})
	}
}

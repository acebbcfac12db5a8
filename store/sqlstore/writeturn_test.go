package sqlstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/internal/testkit"
)

// TestSQLiteWritersTakeTurns: on SQLite a writer outside a transaction
// waits for the transaction that holds the write turn, not for SQLite's
// lock (whose busy handler sleeps in steps): with the turn held, it fails
// with the turn's error once the (shortened) busy timeout passes. A
// transaction gives the turn back however it ends (commit, rollback, its
// context cancelled), and so does a statement outside one: the next
// writer then goes at once, which a turn left held would refuse.
func TestSQLiteWritersTakeTurns(t *testing.T) {
	old := sqliteBusyTimeout
	sqliteBusyTimeout = 200 * time.Millisecond
	t.Cleanup(func() { sqliteBusyTimeout = old })
	ctx := context.Background()
	d, err := Open(ctx, testkit.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	db := d.SQL()
	write := func(what string) error {
		t.Helper()
		_, err := db.ExecContext(ctx, `INSERT INTO turns (what) VALUES ($1)`, what)
		return err
	}
	mustWrite := func(what string) {
		t.Helper()
		if err := write(what); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE turns (what TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	mustWrite("a statement alone")
	mustWrite("the statement after it")

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO turns (what) VALUES ('in the transaction')`); err != nil {
		t.Fatal(err)
	}
	err = write("beside the transaction")
	if haven.ErrorCode(err) != haven.EUNAVAILABLE || !strings.Contains(err.Error(), "no turn to write") {
		t.Fatalf("a write beside an open transaction: %v; want the turn's refusal", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	mustWrite("after a commit")

	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	mustWrite("after a rollback")

	cctx, cancel := context.WithCancel(ctx)
	tx, err = db.BeginTx(cctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	// database/sql rolls a transaction back when its context ends; the
	// rollback may still be on its way, so wait for the turn as a writer
	// would, within the busy timeout.
	var after error
	for range 20 {
		if after = write("after a cancelled transaction"); after == nil {
			break
		}
	}
	if after != nil {
		t.Fatalf("the turn of a cancelled transaction was never given back: %v", after)
	}
	tx.Rollback()

	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM turns`).Scan(&n); err != nil || n != 6 {
		t.Fatalf("rows = %d, %v; want 6", n, err)
	}
}

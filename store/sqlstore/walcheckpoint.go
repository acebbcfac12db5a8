package sqlstore

import (
	"context"
	"database/sql"
	"time"
)

// SQLite in WAL mode copies the log back into the database file (a
// checkpoint) once the log passes a thousand pages, and by default the
// connection whose commit crossed that line does it, before its COMMIT
// returns: it writes every page the log holds into the file and fsyncs
// it. Under load that commit is the audit log's group commit, so every
// request in the batch, and every request queued behind it, waited for a
// checkpoint every second or so: the tail of the chart read's latency.
//
// So Open turns the automatic checkpoint off (wal_autocheckpoint=0) and a
// goroutine of the DB checkpoints instead, every checkpointEvery. First in
// PASSIVE mode, beside the commits: it copies what no reader still needs,
// never takes the write lock and never makes a writer wait. That alone is
// not enough under load: a commit lands while it copies, or a reader still
// holds an older snapshot, so it never finds the whole log in the database,
// and SQLite starts the log over only when it does. The log then grew by
// every commit for as long as the load lasted (hundreds of megabytes in an
// eight-second benchmark row), every commit appended to the file, and
// every read searched a growing index of the log's frames.
//
// So the checkpointer then takes the write turn (writeturn.go), when no
// commit of this process can land behind it, and checkpoints in RESTART
// mode: it copies the few frames committed since the first pass and waits
// until no reader is still reading the log, so the next commit starts the
// log over from its first frame. It waits with its own short retries, not
// SQLite's busy handler (which sleeps a whole millisecond and more), and
// for restartWait at most: the turn holds every writer, the audit log's
// commits among them. A checkpoint moves pages that are already durable in
// the log from one file to the other: no commit depends on it, and a crash
// in the middle loses nothing (the log is replayed on open). SQLite
// checkpoints and removes the log when the last connection closes.
const (
	checkpointEvery = 200 * time.Millisecond
	restartWait     = 2 * time.Millisecond
	restartRetry    = 50 * time.Microsecond
)

// checkpointWAL checkpoints through db, a connection of its own (not one
// of the pool's, which requests wait for, and not counted in RoundTrips,
// which holds requests to a budget), until stop is closed. turn is the
// pool's write turn.
func (d *DB) checkpointWAL(db *sql.DB, turn writeTurn, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	defer db.Close()
	db.SetMaxOpenConns(1)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		checkpointAndRestart(context.Background(), db, turn) // a failure is retried at the next tick
	}
}

// checkpointAndRestart copies the log into the database beside the
// commits, then, holding turn, copies the rest and waits (briefly) for the
// readers of the log, so the next commit starts it over. It reports
// whether the log will start over.
func checkpointAndRestart(ctx context.Context, db *sql.DB, turn writeTurn) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	// RESTART would otherwise wait for readers in SQLite's busy handler,
	// a millisecond and more at a time, holding every writer.
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
		return false, err
	}
	if _, _, _, err := checkpoint(ctx, conn, "PASSIVE"); err != nil {
		return false, err
	}
	if err := turn.take(ctx); err != nil {
		return false, err
	}
	defer turn.give()
	for deadline := time.Now().Add(restartWait); ; time.Sleep(restartRetry) {
		busy, _, _, err := checkpoint(ctx, conn, "RESTART")
		if err != nil || !busy {
			return err == nil, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
	}
}

// checkpoint checkpoints in mode (PASSIVE or RESTART) through q and
// returns whether it was stopped short (by a reader, or by a writer of
// another process), how many frames the log holds and how many of them
// are now in the database file. It reads its answer as a row, so on the
// pool it would never take the write turn: it does not write the log.
func checkpoint(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, mode string) (busy bool, frames, copied int, err error) {
	var b int
	err = q.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&b, &frames, &copied)
	return b != 0, frames, copied, err
}

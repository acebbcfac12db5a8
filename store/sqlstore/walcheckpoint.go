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
// goroutine of the DB checkpoints instead, every checkpointEvery, in
// PASSIVE mode: it copies what no reader still needs, never takes the
// write lock and never makes a writer wait, and the next writer restarts
// the log from the start once everything in it is copied, as it did
// before. A checkpoint moves pages that are already durable in the log
// from one file to the other: no commit waits for it, and a crash in the
// middle loses nothing (the log is replayed on open). SQLite checkpoints
// and removes the log when the last connection closes, as before.
const checkpointEvery = 200 * time.Millisecond

// checkpointWAL checkpoints through db, a connection of its own (not one
// of the pool's, which requests wait for, and not counted in RoundTrips,
// which holds requests to a budget), until stop is closed.
func (d *DB) checkpointWAL(db *sql.DB, stop <-chan struct{}, done chan<- struct{}) {
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
		checkpoint(context.Background(), db) // a failure is retried at the next tick
	}
}

// checkpoint copies the log into the database as far as readers allow
// and returns how many frames the log holds and how many of them are
// now in the database file. It reads its answer as a row, so on the
// pool it would never take the write turn (writeturn.go): it does not
// write the log.
func checkpoint(ctx context.Context, db *sql.DB) (frames, copied int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var busy int
	err = db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	return frames, copied, err
}

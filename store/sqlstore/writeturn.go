package sqlstore

import (
	"context"
	"time"

	"haven"
)

// SQLite has one writer at a time. A connection that finds the write lock
// taken does not queue for it: SQLite's busy handler sleeps and tries
// again, 1, 2, 5, 10, 15, 20, 25 ms and on, and a writer that wakes just
// after another took the lock sleeps longer still. Under load the audit
// log commits back to back (group commit, one fsync each), so the rate
// limits' flush, a session's activity or a sign-in's writes collided
// with it every few commits, and whichever lost slept whole milliseconds
// while the lock sat free: the tail latency of every request in the
// batch behind it.
//
// writeTurn queues this process's writers instead: a connection takes the
// turn before it begins a transaction (every SQLite transaction here is a
// write transaction: BEGIN IMMEDIATE) or runs a statement outside one, and
// gives it back when the transaction ends or the statement returns, so the
// next writer starts the moment the last one is done. Readers never take
// it; the checkpointer does, to finish its checkpoint with no commit behind
// it (walcheckpoint.go). It orders this process only: SQLite's own lock still guards the file
// against other processes (the CLI, a backup), and the busy handler still
// waits for them. A writer that cannot have the turn within the busy
// timeout fails as SQLite would have, instead of waiting forever (a
// transaction that writes through the pool rather than through itself
// would otherwise wait on its own turn).
type writeTurn chan struct{}

// sqliteBusyTimeout is how long a writer waits for the turn before it
// fails, as long as SQLite's busy_timeout (see Open). A variable for
// tests, which shorten it.
var sqliteBusyTimeout = 10 * time.Second

func newWriteTurn() writeTurn { return make(writeTurn, 1) }

// take waits for the turn, until ctx ends or the busy timeout passes.
func (t writeTurn) take(ctx context.Context) error {
	select {
	case t <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(sqliteBusyTimeout)
	defer timer.Stop()
	select {
	case t <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return haven.Errorf(haven.EUNAVAILABLE, "database is locked: no turn to write within %s", sqliteBusyTimeout)
	}
}

// give hands the turn to the next writer.
func (t writeTurn) give() { <-t }

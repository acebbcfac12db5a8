package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // -postgres
	_ "modernc.org/sqlite"             // -sqlite
)

// The durable floor. Every audited read in Haven waits for its audit
// event's commit to be durable before any PHI leaves, so on a disk whose
// fsync takes milliseconds the read cannot go faster than its connections
// divided by the commit latency, whatever Haven does above the database.
// With -sqlite or -postgres the baseline also serves GET /durable: each
// request appends one small row of random bytes (no PHI) through a
// minimal group commit and answers only once the commit that holds its
// row is durable. Dividing Haven's audited reads by that row, measured in
// the same run, shows how much of the remaining gap is Haven and how much
// is the disk.

// groupCommit appends rows with one commit in flight at a time: requests
// that arrive while a commit runs queue, and the next commit carries all
// of them (one multi-row INSERT, which is one transaction).
type groupCommit struct {
	db          *sql.DB
	placeholder func(n int) string // the nth (1-based) bind parameter
	queue       chan pending
	// rows and commits count what loop did, so the log can show the
	// mean batch.
	rows, commits atomic.Int64
}

type pending struct {
	row  []byte
	done chan error
}

// maxBatch bounds one INSERT's parameters; at 16 connections a batch
// holds at most 16 rows.
const maxBatch = 512

// openSQLite opens path as Haven opens its SQLite database for its audit
// log: WAL, synchronous=FULL (a commit is fsynced before it returns), and
// the WAL checkpointed beside the commits rather than inside one.
func openSQLite(ctx context.Context, path string) (*groupCommit, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "wal_autocheckpoint(0)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	g, err := newGroupCommit(ctx, db, `CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, body BLOB NOT NULL)`,
		func(int) string { return "?" })
	if err != nil {
		return nil, err
	}
	go func() {
		for range time.Tick(200 * time.Millisecond) {
			db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}()
	return g, nil
}

// openPostgres opens the database at dsn with the server's own durability
// settings (synchronous_commit as configured), as Haven does.
func openPostgres(ctx context.Context, dsn string) (*groupCommit, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	return newGroupCommit(ctx, db, `CREATE TABLE IF NOT EXISTS floor (id bigserial PRIMARY KEY, body bytea NOT NULL)`,
		func(n int) string { return fmt.Sprintf("$%d", n) })
}

func newGroupCommit(ctx context.Context, db *sql.DB, create string, placeholder func(int) string) (*groupCommit, error) {
	if _, err := db.ExecContext(ctx, create); err != nil {
		db.Close()
		return nil, err
	}
	g := &groupCommit{db: db, placeholder: placeholder, queue: make(chan pending, 4096)}
	go g.loop(ctx)
	return g, nil
}

// append adds a row of random bytes and returns once it is durable.
func (g *groupCommit) append(ctx context.Context) error {
	p := pending{row: make([]byte, 32), done: make(chan error, 1)}
	rand.Read(p.row)
	select {
	case g.queue <- p:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-p.done
}

func (g *groupCommit) loop(ctx context.Context) {
	for {
		var batch []pending
		select {
		case p := <-g.queue:
			batch = append(batch, p)
		case <-ctx.Done():
			return
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case p := <-g.queue:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		err := g.commit(ctx, batch)
		g.rows.Add(int64(len(batch)))
		g.commits.Add(1)
		for _, p := range batch {
			p.done <- err
		}
	}
}

func (g *groupCommit) commit(ctx context.Context, batch []pending) error {
	values := make([]string, len(batch))
	args := make([]any, len(batch))
	for i, p := range batch {
		values[i] = "(" + g.placeholder(i+1) + ")"
		args[i] = p.row
	}
	_, err := g.db.ExecContext(ctx, `INSERT INTO floor (body) VALUES `+strings.Join(values, ", "), args...)
	return err
}

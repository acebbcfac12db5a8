package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"time"

	"haven"
)

// Haven's hot queries (a session checked, a chart's facts read, an audit
// event appended) are lookups by key, and they must stay lookups however
// stale the engine's statistics are: a clinic's PostgreSQL may run with
// autovacuum off, and nobody runs ANALYZE by hand.
//
// On PostgreSQL, statistics are not even the worst of it. Each connection
// keeps its prepared statements, and after a few executions PostgreSQL
// settles on a generic plan that it keeps until the table is analyzed
// again. A plan made while a table held 74 rows is a sequential scan (it
// is the cheapest way to read one page), and it stays a sequential scan on
// that connection when the table holds a hundred thousand. So every
// connection runs with enable_seqscan off (postgresRuntimeParams): the
// planner then takes an index wherever one applies, whatever it believes
// about the table's size. Tables without a usable index are still scanned,
// as they must be; Haven's hot queries have one for every lookup, and
// TestHotQueriesUseTheirIndexes holds each of them to it, with statistics
// taken from tiny tables and the generic plan forced.
//
// Hot queries are written for that: lookups by a whole key, and facts from
// other tables as correlated scalar subqueries by key rather than joins,
// which a planner may turn into a scan of the joined table.
//
// Statistics are still refreshed where Haven knows it changed the data in
// bulk, after migrations and key rotations (Analyze), and every hour where
// the engine does not keep them itself (KeepsOwnStatistics): on SQLite, as
// SQLite advises for long-lived connections, and on a PostgreSQL with
// autovacuum off (serve does it).

// postgresRuntimeParams are set on every PostgreSQL connection Haven opens.
var postgresRuntimeParams = map[string]string{"enable_seqscan": "off"}

// Analyze refreshes the engine's statistics: ANALYZE on PostgreSQL; on
// SQLite, PRAGMA optimize over every table with a bounded sample, which
// re-analyzes the tables whose size moved enough to matter. Migrate calls it
// after applying migrations; commands that change many rows call it when
// they are done.
func (d *DB) Analyze(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if d.dialect == Postgres {
		if _, err := d.db.ExecContext(ctx, `ANALYZE`); err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "cannot analyze the database")
		}
		return nil
	}
	// The limit bounds the rows read per index, so this stays fast in a
	// large file; 0x10002 asks optimize to look at every table, not only
	// those this connection queried.
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot analyze the database")
	}
	defer conn.Close()
	for _, q := range []string{`PRAGMA analysis_limit = 1000`, `PRAGMA optimize = 0x10002`} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "cannot analyze the database")
		}
	}
	return nil
}

// KeepsOwnStatistics reports whether the engine refreshes its statistics
// by itself: PostgreSQL with autovacuum on. SQLite never does, and a
// PostgreSQL whose autovacuum is off (as on some clinics' servers) only
// does when someone runs ANALYZE; serve then runs Analyze hourly.
func (d *DB) KeepsOwnStatistics(ctx context.Context) (bool, error) {
	if d.dialect != Postgres {
		return false, nil
	}
	var on string
	if err := d.db.QueryRowContext(ctx, `SHOW autovacuum`).Scan(&on); err != nil {
		return false, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the autovacuum setting")
	}
	return on == "on", nil
}

// SQLite has no setting like enable_seqscan, and its statistics, once
// gathered on small tables, make it read a table whole rather than search an
// index it believes no better (a care team of one row). Unique lookups are
// always searched; a hot query that looks up by a key that is not unique
// names its index instead, with a comment marker after the table that
// SQLite's text turns into INDEXED BY (PostgreSQL reads it as the comment
// it is):
//
//	FROM care_team /*index:sqlite_autoindex_care_team_1*/ WHERE patient_id = $1
//
// A marker naming an index that does not exist fails the query on SQLite,
// which TestHotQueriesUseTheirIndexes would show at once.
const indexMarker = "/*index:"

// hotSQL caches each hot query's text per dialect.
var hotSQL sync.Map // dialect + "\x00" + query → string

// sql returns q as d's engine must run it: on SQLite with its index
// markers turned into INDEXED BY clauses.
func (d *DB) sql(q string) string {
	if d.dialect != SQLite || !strings.Contains(q, indexMarker) {
		return q
	}
	key := string(d.dialect) + "\x00" + q
	if s, ok := hotSQL.Load(key); ok {
		return s.(string)
	}
	var b strings.Builder
	rest := q
	for {
		i := strings.Index(rest, indexMarker)
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "*/")
		b.WriteString(rest[:i])
		b.WriteString("INDEXED BY " + rest[i+len(indexMarker):i+j])
		rest = rest[i+j+2:]
	}
	b.WriteString(rest)
	hotSQL.Store(key, b.String())
	return b.String()
}

// SQLite parses a statement's text every time it is run unprepared, and
// the hot statements are long (the facts of a decision are five lookups).
// hot returns q prepared on d's pool: database/sql prepares it once per
// connection, on that connection's first use, and keeps it, so every
// later run skips the parse. PostgreSQL's driver already keeps a prepared
// statement per connection for every query text; there hot returns nil
// and callers run q as it is. BenchmarkChartRead measures the difference.
func (d *DB) hot(ctx context.Context, q string) *sql.Stmt {
	if d.dialect != SQLite {
		return nil
	}
	if st, ok := d.stmts.Load(q); ok {
		return st.(*sql.Stmt)
	}
	st, err := d.db.PrepareContext(ctx, d.sql(q))
	if err != nil {
		return nil // run unprepared; the error, if lasting, shows there
	}
	if prev, loaded := d.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt)
	}
	return st
}

// queryRow runs the hot query q, prepared where that helps (see hot).
func (d *DB) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := d.hot(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.db.QueryRowContext(ctx, d.sql(q), args...)
}

// query runs the hot query q, prepared where that helps (see hot).
func (d *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := d.hot(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return d.db.QueryContext(ctx, d.sql(q), args...)
}

// exec runs the hot statement q outside a transaction, prepared where
// that helps (see hot).
func (d *DB) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := d.hot(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return d.db.ExecContext(ctx, d.sql(q), args...)
}

// txStmt returns the hot statement q for use in tx: on SQLite the one
// prepared on tx's connection (prepared there now if it is not yet), nil
// on PostgreSQL (or if q cannot be prepared: callers then run it as it
// is). Preparing q on the pool from inside tx would wait for a free
// connection while tx holds the write lock; when every connection is in a
// transaction waiting for that lock (eight racing appends on a fresh
// store, or a busy server's first requests), nothing moves until the busy
// timeout fails them all. So the first time, q is prepared on tx's own
// connection for tx alone, and on the pool by a goroutine that holds
// nothing, for the transactions after it.
func (d *DB) txStmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	if d.dialect != SQLite {
		return nil
	}
	if st, ok := d.stmts.Load(q); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt))
	}
	go d.hot(context.WithoutCancel(ctx), q)
	st, err := tx.PrepareContext(ctx, d.sql(q))
	if err != nil {
		return nil
	}
	return st
}

// txExec runs the hot statement q in tx, prepared where that helps (see
// txStmt).
func (d *DB) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := d.txStmt(ctx, tx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, d.sql(q), args...)
}

// hotTx is tx as an execer whose every statement is hot (txExec), for the
// helpers that take an execer and run inside a busy path's transaction.
type hotTx struct {
	d  *DB
	tx *sql.Tx
}

func (h hotTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return h.d.txExec(ctx, h.tx, q, args...)
}

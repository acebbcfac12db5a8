package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"haven"
	"haven/audit"
)

// This file implements audit.Store. Audit rows are inserted and read,
// never updated or deleted.

const auditColumns = `log_id, seq, time_us, actor_id, actor_role, session_id, action, resource_kind, resource_id,
	patient_id, purpose, decision, reason, client_addr, request_id, leaf_hash, seal`

const auditColumnCount = 17

// auditInsertSQL inserts one row (SQLite's append prepares it once).
const auditInsertSQL = `INSERT INTO audit_events (` + auditColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// moveHeadSQL moves a log's head past an append's rows.
const moveHeadSQL = `UPDATE audit_heads SET size = $1, last_leaf = $2 WHERE log_id = $3`

// moveHeadAtSQL moves a log's head past an append's rows only where it
// is at $4 and agrees with the row stored there (appendAtHeadSQL's
// condition, for SQLite, which has no UPDATE in a WITH).
const moveHeadAtSQL = `UPDATE audit_heads SET size = $1, last_leaf = $2 WHERE log_id = $3 AND size = $4
	AND last_leaf = (SELECT e.leaf_hash FROM audit_events e WHERE e.log_id = $3 AND e.seq = $4 - 1)`

// auditInsertBatch bounds rows per INSERT statement (SQLite allows 32766
// parameters; 17 columns each).
const auditInsertBatch = 500

// maxRebase bounds the rows an append adopts while it holds the head (see
// audit.Batch); a node further behind catches up without holding it.
const maxRebase = 4096

// AppendLeaves stores b at first, first+1, … in one transaction, with its
// seal on the last row. The log's head row (audit_heads) says where the log
// ends: it is read first, locked until the commit (FOR UPDATE on
// PostgreSQL; SQLite's write lock is held from BEGIN), checked against the
// rows at the log's end, and moved past the new rows in the same
// transaction. So an append costs a few primary-key lookups whatever the
// log's size, and two nodes appending at once queue on the head. The
// second finds it moved: it gets what was appended meanwhile through
// b.Rebase while the head stays locked (up to maxRebase rows), or
// ECONFLICT.
//
// The usual append (the head where this node expects it) checks and
// moves the head in one statement: on PostgreSQL with the rows too
// (appendAtHead), on SQLite before them, under the write lock BEGIN took
// (moveHeadAtSQL). The steps above are taken when it finds the head
// elsewhere.
//
// A head that disagrees with the rows is refused as EINTERNAL, never
// papered over and never retried: the last row missing or not the one the
// head recorded (rows removed or replaced at the end), or a row already
// past the head (rows appended without it, or the head moved back). Only
// someone writing the tables directly makes them disagree.
func (d *DB) AppendLeaves(ctx context.Context, logID string, first uint64, b audit.Batch) error {
	if err := b.CheckAt(first); err != nil {
		return err
	}
	if d.dialect == Postgres && first > 0 && len(b.Events) <= auditInsertBatch {
		if done, err := d.appendAtHead(ctx, logID, first, b); done || err != nil {
			return err
		}
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if d.dialect == SQLite && first > 0 {
		// The usual append on SQLite: the head is where this node expects
		// it and agrees with the last row, checked and moved in one
		// statement under the write lock BEGIN took, as appendAtHead does
		// on PostgreSQL. A head elsewhere moves nothing, and the steps
		// below find out why.
		res, err := d.txExec(ctx, tx, moveHeadAtSQL, int64(first)+int64(len(b.Events)), b.LeafHashes[len(b.LeafHashes)-1], logID, int64(first))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			return d.insertSQLite(ctx, tx, logID, first, b, false)
		}
	}
	h, err := d.lockHead(ctx, tx, logID)
	if err != nil {
		return err
	}
	if h.size != first {
		// On PostgreSQL the rows at the edge were read under a snapshot
		// taken before this append waited for the head, and the head may
		// have moved meanwhile: read them again before blaming anyone.
		if d.dialect == Postgres {
			if err := h.readEdge(ctx, tx, logID); err != nil {
				return err
			}
		}
		if err := h.damaged(logID); err != nil {
			return err
		}
		if h.size < first || b.Rebase == nil || h.size-first > maxRebase {
			return haven.Errorf(haven.ECONFLICT, "audit log %s has size %d, append expected %d", logID, h.size, first)
		}
		since, err := leafHashes(ctx, tx, logID, first, h.size)
		if err != nil {
			return err
		}
		if uint64(len(since)) != h.size-first {
			return haven.Errorf(haven.EINTERNAL, "audit log %s: %d rows stored in [%d, %d): rows were removed", logID, len(since), first, h.size)
		}
		sinceSeal, err := sealAt(ctx, tx, logID, h.size-1)
		if err != nil {
			return err
		}
		if b, err = b.Rebase(since, sinceSeal); err != nil {
			return err
		}
		if err := b.CheckAt(h.size); err != nil {
			return err
		}
		first = h.size
	} else if err := h.damaged(logID); err != nil {
		return err
	}
	events, leafHashes, seal := b.Events, b.LeafHashes, b.Seal
	last := leafHashes[len(leafHashes)-1]
	if d.dialect == SQLite {
		return d.insertSQLite(ctx, tx, logID, first, b, true)
	}
	// PostgreSQL: multi-row INSERTs, one round trip per auditInsertBatch
	// rows; the last one also moves the head.
	for start := 0; start < len(events); start += auditInsertBatch {
		end := min(start+auditInsertBatch, len(events))
		var sb strings.Builder
		args := make([]any, 0, (end-start)*auditColumnCount+3)
		if end == len(events) {
			sb.WriteString(`WITH head AS (` + moveHeadSQL + `) `)
			args = append(args, int64(first)+int64(len(events)), last, logID)
		}
		sb.WriteString(`INSERT INTO audit_events (` + auditColumns + `) VALUES `)
		for i := start; i < end; i++ {
			if i > start {
				sb.WriteByte(',')
			}
			sb.WriteByte('(')
			for c := 0; c < auditColumnCount; c++ {
				if c > 0 {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, "$%d", len(args)+c+1)
			}
			sb.WriteByte(')')
			args = append(args, auditArgs(logID, &events[i], leafHashes[i], sealOf(i, len(events), seal))...)
		}
		if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
			return beyondHead(err, logID, first)
		}
	}
	return tx.Commit()
}

// insertSQLite writes b's rows at first within tx, moves the head past
// them unless the caller has (moveHead false), and commits. One prepared
// statement, executed per row: rows inside a transaction cost no fsync,
// and a statement parsed once beats a huge multi-row one whose parameters
// SQLite resolves one by one.
func (d *DB) insertSQLite(ctx context.Context, tx *sql.Tx, logID string, first uint64, b audit.Batch, moveHead bool) error {
	stmt := d.txStmt(ctx, tx, auditInsertSQL)
	for i := range b.Events {
		args := auditArgs(logID, &b.Events[i], b.LeafHashes[i], sealOf(i, len(b.Events), b.Seal))
		var err error
		if stmt != nil {
			_, err = stmt.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, d.sql(auditInsertSQL), args...)
		}
		if err != nil {
			return beyondHead(err, logID, first)
		}
	}
	if moveHead {
		if _, err := d.txExec(ctx, tx, moveHeadSQL, int64(first)+int64(len(b.Events)), b.LeafHashes[len(b.LeafHashes)-1], logID); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// beyondHead names a row already stored where an append at first writes
// (a unique violation) for what it is: evidence, not a failure to retry.
func beyondHead(err error, logID string, first uint64) error {
	if isUniqueViolation(err) {
		return haven.Errorf(haven.EINTERNAL, "audit log %s: rows already stored at %d, past its head: rows were appended without it", logID, first)
	}
	return err
}

// auditColumnTypes are auditColumns' types on PostgreSQL, for parameters
// that reach the table through a SELECT rather than VALUES.
var auditColumnTypes = [auditColumnCount]string{"text", "bigint", "bigint", "text", "text", "text", "text", "text", "text",
	"text", "text", "text", "text", "text", "text", "bytea", "bytea"}

// appendAtHeadSQL is appendAtHead's statement for n rows: $1 the new size,
// $2 the new last leaf, $3 the log, $4 where the head must be, then the
// rows' columns.
func appendAtHeadSQL(n int) string {
	var sb strings.Builder
	sb.WriteString(`WITH head AS (UPDATE audit_heads h SET size = $1, last_leaf = $2
		WHERE h.log_id = $3 AND h.size = $4
		AND h.last_leaf = (SELECT e.leaf_hash FROM audit_events e WHERE e.log_id = h.log_id AND e.seq = h.size - 1)
		RETURNING h.size)
	INSERT INTO audit_events (` + auditColumns + `) SELECT * FROM (VALUES `)
	p := 4
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for c := range auditColumnCount {
			if c > 0 {
				sb.WriteByte(',')
			}
			p++
			fmt.Fprintf(&sb, "$%d::%s", p, auditColumnTypes[c])
		}
		sb.WriteByte(')')
	}
	sb.WriteString(`) AS rows WHERE EXISTS (SELECT 1 FROM head)`)
	return sb.String()
}

// appendAtHead is the append in one statement on PostgreSQL, for the usual
// case: the head is where this node expects it (first) and agrees with the
// last row. It moves the head only on those conditions and inserts the
// rows only if it moved, as one statement, atomic without a transaction
// of its own: one round trip instead of four (begin, head, rows, commit),
// which also holds the head for the shortest time. A second node's append
// that moved the head meanwhile makes the condition false when this one
// gets the row (PostgreSQL re-checks it on the row's new version): nothing
// is written and done is false, and AppendLeaves takes its full path,
// which catches up, or names what is wrong with the head. A row already
// stored at first fails the insert, and so the whole statement, as on the
// full path.
func (d *DB) appendAtHead(ctx context.Context, logID string, first uint64, b audit.Batch) (done bool, err error) {
	events, leaves := b.Events, b.LeafHashes
	args := make([]any, 0, len(events)*auditColumnCount+4)
	args = append(args, int64(first)+int64(len(events)), leaves[len(leaves)-1], logID, int64(first))
	for i := range events {
		args = append(args, auditArgs(logID, &events[i], leaves[i], sealOf(i, len(events), b.Seal))...)
	}
	res, err := d.db.ExecContext(ctx, appendAtHeadSQL(len(events)), args...)
	if err != nil {
		return false, beyondHead(err, logID, first)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	switch n {
	case int64(len(events)):
		return true, nil
	case 0:
		return false, nil
	}
	return false, haven.Errorf(haven.EINTERNAL, "audit log %s: %d of %d rows stored at %d", logID, n, len(events), first)
}

// logHead is a log's head row, and the rows at its edge, as an append
// finds them.
type logHead struct {
	size     uint64
	lastLeaf []byte // the leaf hash the head recorded for row size-1
	endLeaf  []byte // the leaf hash stored at row size-1, nil if there is none
	next     bool   // a row is stored at size
}

// edgeColumns reads the rows at the edge of head h, each by its whole
// primary key, which no engine answers with a scan whatever its statistics
// say.
const edgeColumns = `(SELECT e.leaf_hash FROM audit_events e WHERE e.log_id = h.log_id AND e.seq = h.size - 1),
	EXISTS (SELECT 1 FROM audit_events e WHERE e.log_id = h.log_id AND e.seq = h.size)`

const lockHeadSQL = `SELECT h.size, h.last_leaf, ` + edgeColumns + ` FROM audit_heads h WHERE h.log_id = $1`

// lockHead reads logID's head and the rows at its edge within tx and holds
// the head until tx ends, creating it (empty) for a log's first append.
//
// On PostgreSQL the head is read FOR UPDATE: a second node's append waits
// here until the first commits, and then reads the moved head. The edge
// rows come from the same statement, under a snapshot from before that
// wait. They are current whenever the head is where the append expects it:
// a head moved while this append waited ends past that position, since the
// appender reached it only by reading what was committed before.
func (d *DB) lockHead(ctx context.Context, tx *sql.Tx, logID string) (logHead, error) {
	q := lockHeadSQL
	if d.dialect == Postgres {
		q += ` FOR UPDATE OF h`
	}
	for created := false; ; created = true {
		var h logHead
		var size int64
		row := func() *sql.Row {
			if st := d.txStmt(ctx, tx, q); st != nil {
				return st.QueryRowContext(ctx, logID)
			}
			return tx.QueryRowContext(ctx, q, logID)
		}
		err := row().Scan(&size, &h.lastLeaf, &h.endLeaf, &h.next)
		if errors.Is(err, sql.ErrNoRows) && !created {
			// A new log. Two nodes may create it at once: the second's
			// insert waits for the first's commit and does nothing.
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit_heads (log_id, size) VALUES ($1, 0) ON CONFLICT (log_id) DO NOTHING`, logID); err != nil {
				return h, err
			}
			continue
		}
		if err != nil {
			return h, err
		}
		h.size = uint64(size)
		return h, nil
	}
}

// readEdge reads the rows at the edge of h again, under a new snapshot.
func (h *logHead) readEdge(ctx context.Context, tx *sql.Tx, logID string) error {
	h.endLeaf = nil
	return tx.QueryRowContext(ctx, `SELECT `+edgeColumns+` FROM audit_heads h WHERE h.log_id = $1`, logID).Scan(&h.endLeaf, &h.next)
}

// damaged returns EINTERNAL when the head and the rows disagree.
func (h *logHead) damaged(logID string) error {
	switch {
	case h.size > 0 && h.endLeaf == nil:
		return haven.Errorf(haven.EINTERNAL, "audit log %s: its head says %d entries but the last of them is missing: rows were removed", logID, h.size)
	case h.next:
		return haven.Errorf(haven.EINTERNAL, "audit log %s: rows are stored past its head (%d): rows were appended without it, or the head was moved back", logID, h.size)
	case !bytes.Equal(h.lastLeaf, h.endLeaf):
		return haven.Errorf(haven.EINTERNAL, "audit log %s: its last row (%d) is not the one its head recorded: the row was replaced", logID, h.size-1)
	}
	return nil
}

// auditArgs are an event's column values in auditColumns order.
func auditArgs(logID string, e *audit.Event, leafHash, seal []byte) []any {
	var sealArg any // NULL, not an empty value, on rows without one
	if seal != nil {
		sealArg = seal
	}
	return []any{logID, int64(e.Seq), e.Time.UnixMicro(), e.ActorID, e.ActorRole, e.SessionID, e.Action,
		e.ResourceKind, e.ResourceID, e.PatientID, e.Purpose, e.Decision, e.Reason, e.ClientAddr, e.RequestID, leafHash, sealArg}
}

// sealOf is the seal of row i of n: the batch's seal on its last row only.
func sealOf(i, n int, seal []byte) []byte {
	if i == n-1 {
		return seal
	}
	return nil
}

const auditSizeSQL = `SELECT h.size,
	EXISTS (SELECT 1 FROM audit_events e WHERE e.log_id = h.log_id AND e.seq = h.size - 1),
	EXISTS (SELECT 1 FROM audit_events e WHERE e.log_id = h.log_id AND e.seq = h.size)
	FROM audit_heads h WHERE h.log_id = $1`

// auditLastSeqSQL reads a log's highest row from the end of its primary
// key (log_id, seq), whatever the engine's statistics say.
const auditLastSeqSQL = `SELECT seq FROM audit_events WHERE log_id = $1 ORDER BY log_id DESC, seq DESC LIMIT 1`

// Size returns the log's size, one more than its highest sequence number.
// The head says it in one lookup, checked against the rows at its edge:
// a row at size-1 and none at size. Where they disagree (only someone
// writing the table directly makes them), the rows are counted the slow
// way, so the caller (catch-up, the verifier) sees the rows as they are
// and names what was done to them.
func (d *DB) Size(ctx context.Context, logID string) (uint64, error) {
	var size int64
	var last, next bool
	err := d.db.QueryRowContext(ctx, auditSizeSQL, logID).Scan(&size, &last, &next)
	if errors.Is(err, sql.ErrNoRows) {
		size, last = 0, true
		err = d.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM audit_events WHERE log_id = $1 AND seq = 0)`, logID).Scan(&next)
	}
	if err != nil {
		return 0, err
	}
	if (size == 0 || last) && !next {
		return uint64(size), nil
	}
	// Not MAX(seq), which PostgreSQL may answer through another index on
	// log_id by reading the whole log.
	var top int64
	err = d.db.QueryRowContext(ctx, auditLastSeqSQL, logID).Scan(&top)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(top) + 1, err
}

// Entries returns rows from <= seq < to in order.
func (d *DB) Entries(ctx context.Context, logID string, from, to uint64) ([]audit.Entry, error) {
	return d.queryAudit(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE log_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq`,
		logID, int64(from), int64(to))
}

// SearchAudit returns matching rows of q.LogID, newest first: at most
// q.Limit, which is 100 when it is not 1 to 1000.
func (d *DB) SearchAudit(ctx context.Context, q haven.AuditQuery) ([]audit.Entry, error) {
	where := []string{"log_id = $1"}
	args := []any{q.LogID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.PatientID != "" {
		add("patient_id = $%d", q.PatientID)
	}
	if q.ActorID != "" {
		add("actor_id = $%d", q.ActorID)
	}
	if q.Action != "" {
		add("action = $%d", q.Action)
	}
	if q.Decision != "" {
		add("decision = $%d", q.Decision)
	}
	if !q.Since.IsZero() {
		add("time_us >= $%d", q.Since.UnixMicro())
	}
	if !q.Until.IsZero() {
		add("time_us < $%d", q.Until.UnixMicro())
	}
	if q.BeforeSeq > 0 {
		add("seq < $%d", int64(q.BeforeSeq))
	}
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	args = append(args, q.Limit)
	return d.queryAudit(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d`, len(args)), args...)
}

func (d *DB) queryAudit(ctx context.Context, query string, args ...any) ([]audit.Entry, error) {
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var seq, us int64
		if err := rows.Scan(&e.LogID, &seq, &us, &e.ActorID, &e.ActorRole, &e.SessionID, &e.Action, &e.ResourceKind,
			&e.ResourceID, &e.PatientID, &e.Purpose, &e.Decision, &e.Reason, &e.ClientAddr, &e.RequestID, &e.LeafHash, &e.Seal); err != nil {
			return nil, err
		}
		e.Seq = uint64(seq)
		e.Time = time.UnixMicro(us).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// LeafHashes returns stored leaf hashes from <= seq < to in order.
func (d *DB) LeafHashes(ctx context.Context, logID string, from, to uint64) ([][]byte, error) {
	return leafHashes(ctx, d.db, logID, from, to)
}

// querier is what both *sql.DB and *sql.Tx offer for queries.
type querier interface {
	rowQuerier
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func leafHashes(ctx context.Context, q querier, logID string, from, to uint64) ([][]byte, error) {
	rows, err := q.QueryContext(ctx, `SELECT leaf_hash FROM audit_events WHERE log_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq`,
		logID, int64(from), int64(to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// PutCheckpoint stores a signed checkpoint; the same note again is a no-op,
// a different note at a stored size is ECONFLICT.
func (d *DB) PutCheckpoint(ctx context.Context, logID string, cp audit.Checkpoint) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO audit_checkpoints (log_id, size, note) VALUES ($1, $2, $3)`, logID, int64(cp.Size), cp.Note)
	if !isUniqueViolation(err) {
		return err
	}
	var note []byte
	if err := d.db.QueryRowContext(ctx, `SELECT note FROM audit_checkpoints WHERE log_id = $1 AND size = $2`, logID, int64(cp.Size)).Scan(&note); err != nil {
		return err
	}
	if string(note) == string(cp.Note) {
		return nil
	}
	return haven.Errorf(haven.ECONFLICT, "audit log %s already has a different checkpoint at size %d", logID, cp.Size)
}

// Checkpoints returns a log's checkpoints by increasing size.
func (d *DB) Checkpoints(ctx context.Context, logID string) ([]audit.Checkpoint, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT size, note FROM audit_checkpoints WHERE log_id = $1 ORDER BY size`, logID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []audit.Checkpoint
	for rows.Next() {
		var cp audit.Checkpoint
		var size int64
		if err := rows.Scan(&size, &cp.Note); err != nil {
			return nil, err
		}
		cp.Size = uint64(size)
		out = append(out, cp)
	}
	return out, rows.Err()
}

// Seal returns the seal stored with the row at seq, or nil.
func (d *DB) Seal(ctx context.Context, logID string, seq uint64) ([]byte, error) {
	return sealAt(ctx, d.db, logID, seq)
}

func sealAt(ctx context.Context, q rowQuerier, logID string, seq uint64) ([]byte, error) {
	var seal []byte
	err := q.QueryRowContext(ctx, `SELECT seal FROM audit_events WHERE log_id = $1 AND seq = $2`, logID, int64(seq)).Scan(&seal)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if len(seal) == 0 {
		seal = nil
	}
	return seal, err
}

// PutWitnessed records a witness's acknowledgement; the same again is a
// no-op.
func (d *DB) PutWitnessed(ctx context.Context, logID, witness string, cp audit.Checkpoint) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO audit_witnessed (log_id, witness, size, note) VALUES ($1, $2, $3, $4)
		ON CONFLICT (log_id, witness, size) DO NOTHING`, logID, witness, int64(cp.Size), cp.Note)
	return err
}

// Witnessed returns each witness's largest acknowledgement of the log.
func (d *DB) Witnessed(ctx context.Context, logID string) ([]audit.Witnessed, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT w.witness, w.size, w.note FROM audit_witnessed w
		WHERE w.log_id = $1 AND w.size = (SELECT MAX(size) FROM audit_witnessed m WHERE m.log_id = w.log_id AND m.witness = w.witness)
		ORDER BY w.witness`, logID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []audit.Witnessed
	for rows.Next() {
		var w audit.Witnessed
		var size int64
		if err := rows.Scan(&w.Witness, &size, &w.Note); err != nil {
			return nil, err
		}
		w.Size = uint64(size)
		out = append(out, w)
	}
	return out, rows.Err()
}

// PutHandover stores a key hand-over; a different one from the same key is
// ECONFLICT.
func (d *DB) PutHandover(ctx context.Context, fromKey string, note []byte) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO audit_key_handovers (from_key, note) VALUES ($1, $2)`, fromKey, note)
	if !isUniqueViolation(err) {
		return err
	}
	var old []byte
	if err := d.db.QueryRowContext(ctx, `SELECT note FROM audit_key_handovers WHERE from_key = $1`, fromKey).Scan(&old); err != nil {
		return err
	}
	if string(old) == string(note) {
		return nil
	}
	return haven.Errorf(haven.ECONFLICT, "this audit key was already handed over to another key")
}

// Handovers returns every stored key hand-over.
func (d *DB) Handovers(ctx context.Context) ([][]byte, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT note FROM audit_key_handovers ORDER BY from_key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var n []byte
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// ProbeAppend checks, without writing a row, that an audit append could be
// written now: an INSERT of no rows needs the table, the right to insert
// into it and its write lock (SQLite's RESERVED lock, PostgreSQL's ROW
// EXCLUSIVE), so a renamed, revoked or locked table fails here. It is
// rolled back. /readyz runs it on every probe. The heads table is probed
// the same way with an UPDATE of no rows.
func (d *DB) ProbeAppend(ctx context.Context) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err = tx.ExecContext(ctx, `INSERT INTO audit_events (`+auditColumns+`) SELECT `+auditColumns+` FROM audit_events WHERE 1 = 0`); err != nil {
		return err
	}
	// An append also moves its log's head.
	_, err = tx.ExecContext(ctx, `UPDATE audit_heads SET size = size WHERE 1 = 0`)
	return err
}

// Logs returns the ids of logs holding any entry, checkpoint or witness
// acknowledgement. The entries' log ids are found by skipping along the
// primary key, one lookup per log, rather than by reading every row: this
// runs at every start and every checkpoint, in a table of millions of rows
// and a handful of logs.
func (d *DB) Logs(ctx context.Context) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `WITH RECURSIVE e (log_id) AS (
			SELECT MIN(log_id) FROM audit_events
			UNION ALL
			SELECT (SELECT MIN(n.log_id) FROM audit_events n WHERE n.log_id > e.log_id) FROM e WHERE e.log_id IS NOT NULL
		)
		SELECT log_id FROM e WHERE log_id IS NOT NULL
		UNION SELECT log_id FROM audit_heads
		UNION SELECT log_id FROM audit_checkpoints
		UNION SELECT log_id FROM audit_witnessed ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

var _ audit.Store = (*DB)(nil)

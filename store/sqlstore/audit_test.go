package sqlstore_test

import (
	"context"
	"testing"

	"haven/audit"
	"haven/audit/audittest"
	"haven/internal/testkit"
	"haven/store/sqlstore"
)

// The audit log's conformance and tamper-evidence suites, run against the
// real tables on both databases: the insider below edits rows with plain
// SQL, as someone with database access would.

func TestAuditStoreConformance(t *testing.T) {
	for name := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			audittest.TestStore(t, func(t *testing.T) audit.Store { return freshDB(t, name) })
		})
	}
}

func TestAuditTamperEvidenceOnRealTables(t *testing.T) {
	for name := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			audittest.TestTamperEvidence(t, func(t *testing.T) (audit.Store, audittest.Insider) {
				db := freshDB(t, name)
				return db, sqlInsider{db}
			})
		})
	}
}

// freshDB opens a new, migrated database of the named dialect.
func freshDB(t testing.TB, dialect string) *sqlstore.DB {
	if dialect == "postgres" {
		return mustOpen(t, testkit.Postgres(t))
	}
	return mustOpen(t, testkit.SQLite(t))
}

type sqlInsider struct{ db *sqlstore.DB }

func (i sqlInsider) UpdateEntry(ctx context.Context, logID string, seq uint64, e audit.Entry) error {
	_, err := i.db.SQL().ExecContext(ctx, `UPDATE audit_events SET seq = $1, time_us = $2, actor_id = $3, actor_role = $4, session_id = $5,
		action = $6, resource_kind = $7, resource_id = $8, patient_id = $9, purpose = $10, decision = $11, reason = $12, client_addr = $13,
		request_id = $14, leaf_hash = $15, log_id = $16, seal = $17 WHERE log_id = $18 AND seq = $19`,
		int64(e.Seq), e.Time.UnixMicro(), e.ActorID, e.ActorRole, e.SessionID, e.Action, e.ResourceKind, e.ResourceID, e.PatientID,
		e.Purpose, e.Decision, e.Reason, e.ClientAddr, e.RequestID, e.LeafHash, e.LogID, nullBytes(e.Seal), logID, int64(seq))
	return err
}

func (i sqlInsider) DeleteEntry(ctx context.Context, logID string, seq uint64) error {
	_, err := i.db.SQL().ExecContext(ctx, `DELETE FROM audit_events WHERE log_id = $1 AND seq = $2`, logID, int64(seq))
	return err
}

func (i sqlInsider) InsertEntry(ctx context.Context, logID string, e audit.Entry) error {
	_, err := i.db.SQL().ExecContext(ctx, `INSERT INTO audit_events (log_id, seq, time_us, actor_id, actor_role, session_id, action, resource_kind,
		resource_id, patient_id, purpose, decision, reason, client_addr, request_id, leaf_hash, seal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		logID, int64(e.Seq), e.Time.UnixMicro(), e.ActorID, e.ActorRole, e.SessionID, e.Action, e.ResourceKind, e.ResourceID, e.PatientID,
		e.Purpose, e.Decision, e.Reason, e.ClientAddr, e.RequestID, e.LeafHash, nullBytes(e.Seal))
	return err
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// RewindHead sets the head from the log's last row, as a restored backup
// of the whole database has it.
func (i sqlInsider) RewindHead(ctx context.Context, logID string) error {
	_, err := i.db.SQL().ExecContext(ctx, `UPDATE audit_heads SET
		size = (SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_events WHERE log_id = $1),
		last_leaf = (SELECT leaf_hash FROM audit_events WHERE log_id = $1 ORDER BY seq DESC LIMIT 1) WHERE log_id = $1`, logID)
	return err
}

func (i sqlInsider) DeleteWitnessed(ctx context.Context, logID string) error {
	_, err := i.db.SQL().ExecContext(ctx, `DELETE FROM audit_witnessed WHERE log_id = $1`, logID)
	return err
}

func (i sqlInsider) DeleteCheckpoint(ctx context.Context, logID string, size uint64) error {
	_, err := i.db.SQL().ExecContext(ctx, `DELETE FROM audit_checkpoints WHERE log_id = $1 AND size = $2`, logID, int64(size))
	return err
}

// BenchmarkAuditAppendSQLite measures group commit against one commit per
// event on a real SQLite file with synchronous=FULL (make bench).
func BenchmarkAuditAppendSQLite(b *testing.B) {
	audittest.BenchmarkAppend(b, func(b *testing.B) audit.Store { return freshDB(b, "sqlite") })
}

package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"haven/internal/testkit"
)

// TestHeadsMigrationFillsHeadsFromExistingLogs migrates a database to the
// version before audit_heads, stores audit rows the way the old append did,
// and applies the rest: every log with rows gets a head that says its size
// and its last row's leaf hash, so the first append after the upgrade
// continues each log where it ended.
func TestHeadsMigrationFillsHeadsFromExistingLogs(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d, err := Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ms, err := d.migrations()
			if err != nil {
				t.Fatal(err)
			}
			heads := -1
			for i, m := range ms {
				if strings.HasSuffix(m.name, "_audit_heads.sql") {
					heads = i
				}
			}
			if heads < 0 {
				t.Fatal("no audit_heads migration")
			}
			if _, err := d.db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			for _, m := range ms[:heads] {
				if _, err := d.applyOne(ctx, m); err != nil {
					t.Fatalf("%s: %v", m.name, err)
				}
			}
			sizes := map[string]int{"p1": 5, "p2": 1, "_platform": 3}
			for logID, n := range sizes {
				for seq := range n {
					if _, err := d.db.ExecContext(ctx, `INSERT INTO audit_events (log_id, seq, time_us, actor_id, actor_role, session_id,
						action, resource_kind, resource_id, patient_id, purpose, decision, reason, client_addr, request_id, leaf_hash)
						VALUES ($1, $2, 0, 'u', '', '', 'chart.read', '', '', '', '', 'allow', '', '', '', $3)`,
						logID, seq, []byte(fmt.Sprintf("%s-leaf-%d", logID, seq))); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := d.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			var logs int
			if err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_heads`).Scan(&logs); err != nil || logs != len(sizes) {
				t.Fatalf("%d heads, %v; want %d", logs, err, len(sizes))
			}
			for logID, n := range sizes {
				var size int64
				var last []byte
				if err := d.db.QueryRowContext(ctx, `SELECT size, last_leaf FROM audit_heads WHERE log_id = $1`, logID).Scan(&size, &last); err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("%s-leaf-%d", logID, n-1); size != int64(n) || string(last) != want {
					t.Errorf("head of %s is (%d, %q), want (%d, %q)", logID, size, last, n, want)
				}
				if got, err := d.Size(ctx, logID); err != nil || got != uint64(n) {
					t.Errorf("Size(%s) = %d, %v; want %d", logID, got, err, n)
				}
			}
		})
	}
}

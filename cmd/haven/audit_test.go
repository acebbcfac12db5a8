package main_test

import (
	"database/sql"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"haven/audit"
	"haven/internal/testkit"
)

// TestAuditVerifyCatchesTampering seeds the demo through a real server, then
// tampers with the stored audit log as an insider with database access
// would, one way at a time, and runs `haven audit verify` after each: it must
// exit non-zero naming the first bad entry, and pass again once the log is
// restored.
func TestAuditVerifyCatchesTampering(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			args := []string{"--demo"}
			driver, conn := "sqlite", filepath.Join(dataDir, "haven.db")
			if name == "postgres" {
				args = append(args, "--db", dsn)
				driver, conn = "pgx", dsn
			}
			s := startServe(t, dataDir, args...)
			s.cmd.Process.Signal(syscall.SIGTERM) // final checkpoint goes to the witness
			if err := <-s.done; err != nil {
				t.Fatalf("serve: %v", err)
			}
			verify := func() (int, string) {
				dbArgs := []string{"audit", "verify", "--data-dir", dataDir}
				if name == "postgres" {
					dbArgs = append(dbArgs, "--db", dsn)
				}
				code, out, errOut := runHaven(t, nil, dbArgs...)
				return code, out + errOut
			}
			if code, out := verify(); code != 0 || !strings.Contains(out, "OK") {
				t.Fatalf("untouched log does not verify: %d\n%s", code, out)
			}
			db, err := sql.Open(driver, conn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var cur *testing.T = t // the (sub)test a failing statement fails
			exec := func(q string, args ...any) {
				t := cur
				t.Helper()
				if _, err := db.Exec(q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			var logID string
			if err := db.QueryRow(`SELECT log_id FROM audit_events GROUP BY log_id ORDER BY COUNT(*) DESC LIMIT 1`).Scan(&logID); err != nil {
				t.Fatal(err)
			}
			exec(`CREATE TABLE audit_pristine AS SELECT * FROM audit_events`)
			restore := func() {
				exec(`DELETE FROM audit_events`)
				exec(`INSERT INTO audit_events SELECT * FROM audit_pristine`)
			}
			forged := audit.Event{Seq: 3, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), LogID: logID, ActorID: "intruder",
				ActorRole: "clinician", Action: "chart.read", Decision: "allow", Purpose: "treatment"}
			cases := []struct {
				name   string
				tamper func()
				want   string
			}{
				{"edit", func() {
					exec(`UPDATE audit_events SET actor_id = 'someone-else' WHERE log_id = $1 AND seq = 3`, logID)
				}, "first bad entry 3"},
				{"delete", func() {
					exec(`DELETE FROM audit_events WHERE log_id = $1 AND seq = 3`, logID)
				}, "first bad entry 3"},
				{"delete-and-renumber", func() {
					exec(`DELETE FROM audit_events WHERE log_id = $1 AND seq = 3`, logID)
					// Through negatives: PostgreSQL checks the key row by row.
					exec(`UPDATE audit_events SET seq = -seq WHERE log_id = $1 AND seq > 3`, logID)
					exec(`UPDATE audit_events SET seq = -seq - 1 WHERE log_id = $1 AND seq < 0`, logID)
				}, "first bad entry 3"},
				{"insert", func() {
					exec(`UPDATE audit_events SET seq = -seq - 1 WHERE log_id = $1 AND seq >= 3`, logID)
					exec(`UPDATE audit_events SET seq = -seq WHERE log_id = $1 AND seq < 0`, logID)
					exec(`INSERT INTO audit_events (log_id, seq, time_us, actor_id, actor_role, session_id, action, resource_kind, resource_id,
						patient_id, purpose, decision, reason, client_addr, request_id, leaf_hash)
						VALUES ($1, 3, $2, 'intruder', 'clinician', '', 'chart.read', '', '', '', 'treatment', 'allow', '', '', '', $3)`,
						logID, forged.Time.UnixMicro(), forged.LeafHash())
				}, "first bad entry 3"},
				{"reorder", func() {
					exec(`UPDATE audit_events SET seq = 1000 WHERE log_id = $1 AND seq = 2`, logID)
					exec(`UPDATE audit_events SET seq = 2 WHERE log_id = $1 AND seq = 3`, logID)
					exec(`UPDATE audit_events SET seq = 3 WHERE log_id = $1 AND seq = 1000`, logID)
				}, "first bad entry 2"},
				{"truncate-and-reappend", func() {
					// Roll back to 3 entries, then append genuine-looking
					// entries with correct leaf hashes: only the checkpoint
					// published to the witness can tell.
					exec(`DELETE FROM audit_events WHERE log_id = $1 AND seq >= 3`, logID)
					exec(`DELETE FROM audit_checkpoints WHERE log_id = $1`, logID)
					for i := uint64(3); i < 12; i++ {
						ev := forged
						ev.Seq = i
						exec(`INSERT INTO audit_events (log_id, seq, time_us, actor_id, actor_role, session_id, action, resource_kind, resource_id,
							patient_id, purpose, decision, reason, client_addr, request_id, leaf_hash)
							VALUES ($1, $2, $3, 'intruder', 'clinician', '', 'chart.read', '', '', '', 'treatment', 'allow', '', '', '', $4)`,
							logID, int64(i), ev.Time.UnixMicro(), ev.LeafHash())
					}
				}, "rolled_back"},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					cur = t
					defer func() { cur = nil }()
					tc.tamper()
					defer restore()
					code, out := verify()
					if code == 0 {
						t.Fatalf("tampering went unnoticed:\n%s", out)
					}
					if !strings.Contains(out, "TAMPERED") || !strings.Contains(out, tc.want) {
						t.Fatalf("want %q in:\n%s", tc.want, out)
					}
					if regexp.MustCompile(`(?i)maria|lopez|chen`).MatchString(out) {
						t.Fatalf("PHI in verify output:\n%s", out)
					}
				})
			}
			cur = t
			restore()
			if code, out := verify(); code != 0 {
				t.Fatalf("restored log does not verify: %s", out)
			}
		})
	}
}

package main_test

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"haven/audit"
	"haven/audit/audittest"
	"haven/internal/testkit"
)

// auditDB is a data dir and its database, as an insider with database
// access sees it.
type auditDB struct {
	t       *testing.T
	dataDir string
	args    []string // the --db flag, for PostgreSQL
	db      *sql.DB
}

// newAuditDB returns a fresh data dir on the named database, with the demo
// seeded through a real server that has stopped again.
func newAuditDB(t *testing.T, name, dsn string, extra ...string) *auditDB {
	t.Helper()
	a := &auditDB{t: t, dataDir: t.TempDir()}
	driver, conn := "sqlite", filepath.Join(a.dataDir, "haven.db")
	if name == "postgres" {
		a.args = []string{"--db", dsn}
		driver, conn = "pgx", dsn
	}
	a.stop(a.serve(append([]string{"--demo"}, extra...)...))
	db, err := sql.Open(driver, conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a.db = db
	return a
}

func (a *auditDB) serve(extra ...string) *server {
	return startServe(a.t, a.dataDir, append(append([]string{}, a.args...), extra...)...)
}

func (a *auditDB) stop(s *server) {
	a.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-s.done; err != nil {
		a.t.Fatalf("serve: %v\n%s", err, s.out)
	}
}

// refused runs serve and expects it to stop before serving, with exactly
// one line on stderr containing want.
func (a *auditDB) refused(want string, extra ...string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"serve", "--data-dir", a.dataDir, "--addr", "127.0.0.1:0", "--turn-addr", "127.0.0.1:0"}, a.args...)
	cmd := exec.CommandContext(ctx, havenBin, append(args, extra...)...)
	cmd.Env = cleanEnv()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		a.t.Fatalf("serve started instead of refusing:\n%s", stdout.String())
	}
	if err == nil {
		a.t.Fatalf("serve exited 0 instead of refusing:\n%s", stdout.String())
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if !strings.HasPrefix(l, "{") { // the JSON log is for machines
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		a.t.Fatalf("want one line mentioning %q, got:\n%s", want, stderr.String())
	}
}

func (a *auditDB) exec(q string, args ...any) {
	a.t.Helper()
	if _, err := a.db.Exec(q, args...); err != nil {
		a.t.Fatalf("%s: %v", q, err)
	}
}

func (a *auditDB) count(q string, args ...any) int {
	a.t.Helper()
	var n int
	if err := a.db.QueryRow(q, args...).Scan(&n); err != nil {
		a.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// biggestLog returns the id and size of the log with the most entries.
func (a *auditDB) biggestLog() (string, int) {
	a.t.Helper()
	var id string
	var n int
	if err := a.db.QueryRow(`SELECT log_id, COUNT(*) FROM audit_events GROUP BY log_id ORDER BY COUNT(*) DESC LIMIT 1`).Scan(&id, &n); err != nil {
		a.t.Fatal(err)
	}
	return id, n
}

// row reads the stored row at seq.
func (a *auditDB) row(logID string, seq int) audit.Entry {
	a.t.Helper()
	var e audit.Entry
	var s, us int64
	err := a.db.QueryRow(`SELECT seq, time_us, actor_id, actor_role, session_id, action, resource_kind, resource_id, patient_id,
		purpose, decision, reason, client_addr, request_id, leaf_hash, seal FROM audit_events WHERE log_id = $1 AND seq = $2`, logID, seq).Scan(
		&s, &us, &e.ActorID, &e.ActorRole, &e.SessionID, &e.Action, &e.ResourceKind, &e.ResourceID, &e.PatientID,
		&e.Purpose, &e.Decision, &e.Reason, &e.ClientAddr, &e.RequestID, &e.LeafHash, &e.Seal)
	if err != nil {
		a.t.Fatal(err)
	}
	e.LogID, e.Seq, e.Time = logID, uint64(s), time.UnixMicro(us).UTC()
	return e
}

// insert writes e as a row, as an insider would.
func (a *auditDB) insert(e audit.Entry) {
	a.t.Helper()
	var seal any
	if e.Seal != nil {
		seal = e.Seal
	}
	a.exec(`INSERT INTO audit_events (log_id, seq, time_us, actor_id, actor_role, session_id, action, resource_kind, resource_id,
		patient_id, purpose, decision, reason, client_addr, request_id, leaf_hash, seal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		e.LogID, int64(e.Seq), e.Time.UnixMicro(), e.ActorID, e.ActorRole, e.SessionID, e.Action, e.ResourceKind, e.ResourceID,
		e.PatientID, e.Purpose, e.Decision, e.Reason, e.ClientAddr, e.RequestID, e.LeafHash, seal)
}

// forgeAtEnd appends, at seq = max+1, a copy of an earlier event with
// another actor and a new time, and a leaf hash that is correct for it:
// THREATS.md's insider framing a colleague.
func (a *auditDB) forgeAtEnd(logID string, n int) {
	a.t.Helper()
	e := a.row(logID, n-1)
	e.Seq, e.ActorID, e.Time, e.Seal = uint64(n), "someone-else", e.Time.Add(time.Minute), nil
	e.LeafHash = e.Event.LeafHash()
	a.insert(e)
}

func (a *auditDB) verify(extra ...string) (int, string) {
	a.t.Helper()
	args := append(append([]string{"audit", "verify", "--data-dir", a.dataDir}, a.args...), extra...)
	code, out, errOut := runHaven(a.t, nil, args...)
	return code, out + errOut
}

// THREATS.md: "a restart after a rollback refused". The stored checkpoint
// catches rows removed from the end; with the checkpoints and the record
// of the witness removed too, the witness does.
func TestServeRefusesToRestartOnARolledBackLog(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			a := newAuditDB(t, name, dsn)
			logID, n := a.biggestLog()
			a.exec(`CREATE TABLE audit_pristine AS SELECT * FROM audit_events WHERE log_id = $1 AND seq >= $2`, logID, n-3)
			a.exec(`DELETE FROM audit_events WHERE log_id = $1 AND seq >= $2`, logID, n-3)
			a.refused("rolled back")
			a.exec(`CREATE TABLE audit_checkpoints_pristine AS SELECT * FROM audit_checkpoints WHERE log_id = $1`, logID)
			a.exec(`CREATE TABLE audit_witnessed_pristine AS SELECT * FROM audit_witnessed WHERE log_id = $1`, logID)
			a.exec(`DELETE FROM audit_checkpoints WHERE log_id = $1`, logID)
			a.exec(`DELETE FROM audit_witnessed WHERE log_id = $1`, logID)
			a.refused("rolled back")
			if got := a.count(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1`, logID); got != n-3 {
				t.Fatalf("a refused start wrote to the log: %d entries, want %d", got, n-3)
			}
			if code, out := a.verify(); code == 0 || !strings.Contains(out, "rolled_back") {
				t.Fatalf("verify of the rolled-back log: %d\n%s", code, out)
			}
			// Put back, it starts again: the refusal was the rollback's.
			a.exec(`INSERT INTO audit_events SELECT * FROM audit_pristine`)
			a.exec(`INSERT INTO audit_checkpoints SELECT * FROM audit_checkpoints_pristine`)
			a.exec(`INSERT INTO audit_witnessed SELECT * FROM audit_witnessed_pristine`)
			a.stop(a.serve())
			if code, out := a.verify(); code != 0 {
				t.Fatalf("the restored log does not verify:\n%s", out)
			}
		})
	}
}

// Issue 10, item 4: an event appended at seq = max+1 with a correct leaf
// hash. The running server fails closed instead of adopting it, signs no
// checkpoint over it, reports not ready; verify names it; a restart is
// refused.
func TestForgedEntryStopsTheServerAndFailsVerify(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			a := newAuditDB(t, name, dsn)
			s := a.serve()
			c := newAPIClient(t, s.URL)
			c.signInWorkforce("rivera@riverside.example")
			if code, _ := c.call("GET", "/api/v1/patients", nil, nil); code != http.StatusOK {
				t.Fatalf("patient list before the forgery: %d", code)
			}
			var logID string
			if err := a.db.QueryRow(`SELECT log_id FROM audit_events ORDER BY time_us DESC LIMIT 1`).Scan(&logID); err != nil {
				t.Fatal(err)
			}
			n := a.count(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1`, logID)
			a.forgeAtEnd(logID, n)
			if code, _ := c.call("GET", "/api/v1/patients", nil, nil); code != http.StatusServiceUnavailable {
				t.Fatalf("patient list after a forged audit row: %d, want 503", code)
			}
			resp, err := insecureClient.Get(s.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("readyz with a forged audit row: %d", resp.StatusCode)
			}
			s.cmd.Process.Signal(syscall.SIGTERM)
			<-s.done
			if got := a.count(`SELECT COUNT(*) FROM audit_checkpoints WHERE log_id = $1 AND size > $2`, logID, n); got != 0 {
				t.Fatalf("a checkpoint was signed over the forged row")
			}
			if got := a.count(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1`, logID); got != n+1 {
				t.Fatalf("the server appended after the forged row: %d entries", got)
			}
			code, out := a.verify()
			if code == 0 || !strings.Contains(out, "first bad entry "+strconv.Itoa(n)+":") || !strings.Contains(out, "unauthenticated") {
				t.Fatalf("verify must name entry %d:\n%s", n, out)
			}
			a.refused("without the key")
		})
	}
}

// Issue 10, item 5: verify takes the verifier key as input and needs
// nothing secret; it never creates or changes a key.
func TestAuditVerifyNeedsOnlyTheVerifierKey(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			a := newAuditDB(t, name, dsn)
			auditor := filepath.Join(t.TempDir(), "haven-audit.pub")
			pub, err := os.ReadFile(filepath.Join(a.dataDir, "keys", "audit.pub"))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(auditor, pub, 0o644)
			// The auditor has no key but the public one: no root key, no
			// audit signing key, nothing else from keys/.
			if err := os.Rename(filepath.Join(a.dataDir, "keys"), filepath.Join(t.TempDir(), "elsewhere")); err != nil {
				t.Fatal(err)
			}
			if code, out := a.verify("--verifier-key", auditor); code != 0 || !strings.Contains(out, "OK") {
				t.Fatalf("verify with the public key only: %d\n%s", code, out)
			}
			if code, out := a.verify(); code == 0 || !strings.Contains(out, "--verifier-key") {
				t.Fatalf("verify without any verifier key: %d\n%s", code, out)
			}
			if _, err := os.Stat(filepath.Join(a.dataDir, "keys")); err == nil {
				t.Fatal("verify created a key directory")
			}
			_, otherPub, _ := audit.GenerateKey("haven-audit")
			wrong := filepath.Join(t.TempDir(), "wrong.pub")
			os.WriteFile(wrong, []byte(otherPub+"\n"), 0o644)
			if code, out := a.verify("--verifier-key", wrong); code == 0 || !strings.Contains(out, "TAMPERED") {
				t.Fatalf("verify with another key: %d\n%s", code, out)
			}
		})
	}
}

// Issue 10, item 5: a signing key that does not match the checkpoints
// already stored or witnessed is refused with one line.
func TestServeRefusesAReplacedAuditKey(t *testing.T) {
	a := newAuditDB(t, "sqlite", "")
	keys := filepath.Join(a.dataDir, "keys")
	saved := t.TempDir()
	for _, f := range []string{"audit.key", "audit.pub"} {
		b, _ := os.ReadFile(filepath.Join(keys, f))
		os.WriteFile(filepath.Join(saved, f), b, 0o600)
	}
	replace := func(pubToo bool) {
		t.Helper()
		priv, pub, _ := audit.GenerateKey("haven-audit")
		os.Remove(filepath.Join(keys, "audit.key"))
		if err := audit.WriteKeyFile(filepath.Join(keys, "audit.key"), priv); err != nil {
			t.Fatal(err)
		}
		if pubToo {
			os.WriteFile(filepath.Join(keys, "audit.pub"), []byte(pub+"\n"), 0o644)
		}
	}
	replace(false)
	a.refused("--audit-key")
	replace(true)
	a.refused("audit log refused")
	os.Remove(filepath.Join(keys, "audit.key"))
	a.refused("is missing")
	for _, f := range []string{"audit.key", "audit.pub"} {
		b, _ := os.ReadFile(filepath.Join(saved, f))
		os.WriteFile(filepath.Join(keys, f), b, 0o600)
	}
	a.stop(a.serve())
}

// Issue 10, item 5: the explicit, audited rotation, which verification
// follows from the key an auditor already holds.
func TestAuditRotateKeyKeepsTheLogVerifiable(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			a := newAuditDB(t, name, dsn)
			keys := filepath.Join(a.dataDir, "keys")
			auditor := filepath.Join(t.TempDir(), "old.pub")
			b, _ := os.ReadFile(filepath.Join(keys, "audit.pub"))
			os.WriteFile(auditor, b, 0o644)
			code, out, errOut := runHaven(t, nil, append([]string{"audit", "rotate-key", "--data-dir", a.dataDir}, a.args...)...)
			if code != 0 || !strings.Contains(out, "audit key rotated") {
				t.Fatalf("rotate-key: %d\n%s%s", code, out, errOut)
			}
			if got := a.count(`SELECT COUNT(*) FROM audit_events WHERE action = 'audit.rotate_key'`); got != 1 {
				t.Fatalf("%d rotation events in the audit log", got)
			}
			s := a.serve()
			c := newAPIClient(t, s.URL)
			c.signInWorkforce("rivera@riverside.example")
			a.stop(s)
			for _, key := range []string{auditor, filepath.Join(keys, "audit.pub")} {
				if code, out := a.verify("--verifier-key", key); code != 0 {
					t.Fatalf("verify across the rotation with %s: %d\n%s", filepath.Base(key), code, out)
				}
			}
			// The retired key, put back, is refused.
			retired, _ := filepath.Glob(filepath.Join(keys, "audit.key.retired-*"))
			if len(retired) != 1 {
				t.Fatalf("retired keys: %v", retired)
			}
			os.Rename(filepath.Join(keys, "audit.key"), filepath.Join(keys, "audit.key.current"))
			os.Rename(retired[0], filepath.Join(keys, "audit.key"))
			a.refused("retired")
		})
	}
}

// Issue 10, item 10: /readyz answers 503 while the audit log cannot be
// written, and 200 again once it can.
func TestReadyzFollowsTheAuditLog(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			a := newAuditDB(t, name, dsn)
			s := a.serve()
			defer a.stop(s)
			ready := func() int {
				t.Helper()
				resp, err := insecureClient.Get(s.URL + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if code := ready(); code != http.StatusOK {
				t.Fatalf("readyz %d", code)
			}
			a.exec(`ALTER TABLE audit_events RENAME TO audit_events_away`)
			if code := ready(); code != http.StatusServiceUnavailable {
				t.Fatalf("readyz with the audit table renamed: %d", code)
			}
			a.exec(`ALTER TABLE audit_events_away RENAME TO audit_events`)
			if code := ready(); code != http.StatusOK {
				t.Fatalf("readyz once the table is back: %d", code)
			}
			if name == "postgres" {
				tx, err := a.db.Begin()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(`LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE`); err != nil {
					t.Fatal(err)
				}
				code := ready()
				tx.Rollback()
				if code != http.StatusServiceUnavailable {
					t.Fatalf("readyz with the audit table locked: %d", code)
				}
				if code := ready(); code != http.StatusOK {
					t.Fatalf("readyz once the lock is gone: %d", code)
				}
			}
		})
	}
}

// Issue 10, item 6: the directory witness on the data dir's disk is said
// to be no real witness, and a witness that lost what it held stops serve
// and fails verify.
func TestWitnessOnTheSameDiskAndMissingWitnessAreReported(t *testing.T) {
	a := newAuditDB(t, "sqlite", "")
	s := a.serve()
	a.stop(s)
	if !strings.Contains(s.out.String(), "WARNING: the only audit witness is a directory on the same disk") {
		t.Fatalf("no same-disk warning:\n%s", s.out)
	}
	code, out := a.verify()
	if code != 0 || !strings.Contains(out, "WARNING: the only audit witness") {
		t.Fatalf("verify: %d\n%s", code, out)
	}
	if err := os.RemoveAll(filepath.Join(a.dataDir, "witness")); err != nil {
		t.Fatal(err)
	}
	a.refused("went missing or backwards")
	if code, out := a.verify(); code == 0 || !strings.Contains(out, "went missing or backwards") {
		t.Fatalf("verify with the witness gone: %d\n%s", code, out)
	}
}

// Issue 10, item 6: a running server publishes to an independent
// C2SP tlog-witness (litewitness, its own process), and that witness is
// what catches a rollback the database and the local witness were both
// rewritten to hide.
func TestServeWithAnIndependentWitness(t *testing.T) {
	lw := audittest.StartLitewitness(t, nil)
	a := newAuditDB(t, "sqlite", "")
	witnesses := filepath.Join(a.dataDir, "witness") + "," + lw.Entry()
	code, out, errOut := runHaven(t, nil, "audit", "log-keys", "--data-dir", a.dataDir)
	if code != 0 {
		t.Fatalf("log-keys: %d %s", code, errOut)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		lw.AddLog(t, f[0], f[1])
	}
	s := a.serve("--audit-witness", witnesses)
	c := newAPIClient(t, s.URL)
	c.signInWorkforce("rivera@riverside.example")
	a.stop(s)
	if strings.Contains(s.out.String(), "WARNING") {
		t.Fatalf("warnings with an independent witness configured:\n%s", s.out)
	}
	code, out = a.verify("--audit-witness", witnesses)
	if code != 0 {
		t.Fatalf("verify with the witness: %d\n%s", code, out)
	}
	if got := a.count(`SELECT COUNT(*) FROM audit_witnessed WHERE witness LIKE 'witness.test/litewitness+%'`); got == 0 {
		t.Fatal("no cosignature of the independent witness was recorded")
	}
	// Everything about one log on this machine rewritten: its rows,
	// checkpoints, the record of what witnesses acknowledged, and its copy
	// in the local witness directory.
	logID, n := a.biggestLog()
	a.exec(`DELETE FROM audit_events WHERE log_id = $1 AND seq >= $2`, logID, n-2)
	a.exec(`DELETE FROM audit_checkpoints WHERE log_id = $1`, logID)
	a.exec(`DELETE FROM audit_witnessed WHERE log_id = $1`, logID)
	os.RemoveAll(filepath.Join(a.dataDir, "witness", logID))
	a.refused("rolled back", "--audit-witness", witnesses)
	code, out = a.verify("--audit-witness", witnesses)
	if code == 0 || !strings.Contains(out, "rolled_back") || !strings.Contains(out, "litewitness") {
		t.Fatalf("verify of the rolled-back log with the witness: %d\n%s", code, out)
	}
}

// Issue 10, item 8, on a server's own log and through the binary: verify
// names the first entry that differs, where it sits.
func TestAuditVerifyNamesTheEntryThatDiffers(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			a := newAuditDB(t, name, dsn)
			logID, n := a.biggestLog()
			a.exec(`CREATE TABLE audit_pristine AS SELECT * FROM audit_events WHERE log_id = $1`, logID)
			restore := func() {
				a.exec(`DELETE FROM audit_events WHERE log_id = $1`, logID)
				a.exec(`INSERT INTO audit_events SELECT * FROM audit_pristine`)
			}
			cases := []struct {
				name   string
				tamper func()
				want   string
			}{
				{"EditWithRecomputedLeafHash", func() {
					e := a.row(logID, 4)
					e.ActorID = "someone-else"
					a.exec(`UPDATE audit_events SET actor_id = $1, leaf_hash = $2 WHERE log_id = $3 AND seq = 4`, e.ActorID, e.Event.LeafHash(), logID)
				}, "first bad entry 4: unauthenticated at entry 4"},
				{"RowOverwrittenWithACopyOfAnEarlierRow", func() {
					e := a.row(logID, 2)
					e.Seq = 5
					a.exec(`DELETE FROM audit_events WHERE log_id = $1 AND seq = 5`, logID)
					a.insert(e)
				}, "first bad entry 5: edited at entry 5: overwritten with a copy of entry 2"},
				{"RowCopiedToTheEnd", func() {
					e := a.row(logID, 2)
					e.Seq = uint64(n)
					a.insert(e)
				}, "first bad entry " + strconv.Itoa(n) + ": inserted at entry " + strconv.Itoa(n) + ": a copy of entry 2"},
				{"ForgedEntryAtTheEnd", func() { a.forgeAtEnd(logID, n) },
					"first bad entry " + strconv.Itoa(n) + ": unauthenticated at entry " + strconv.Itoa(n)},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					c.tamper()
					defer restore()
					code, out := a.verify()
					if code == 0 || !strings.Contains(out, c.want) {
						t.Fatalf("want %q in:\n%s", c.want, out)
					}
				})
			}
			if code, out := a.verify(); code != 0 {
				t.Fatalf("restored log does not verify:\n%s", out)
			}
		})
	}
}

package identity_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/password"
	"haven/blob/dir"
	"haven/internal/testkit"
	"haven/keyring"
	"haven/service"
	"haven/store/sqlstore"
)

// env is a whole service stack on one real database: keys in a temp dir,
// the audit log signing checkpoints, and a clock the test controls.
type env struct {
	t        *testing.T
	db       *sqlstore.DB
	svc      *service.Service
	log      *audit.Log
	verifier string
	signer   *audit.Signer // the audit key every node of the deployment shares
	dataDir  string
	dsn      string
	clock    *clock
	videoKey []byte
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fastHasher keeps tests quick: argon2id with small memory. Production
// parameters are tested in auth/password.
var fastHasher = password.NewHasher(password.HasherConfig{Params: password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})

// forEachDB runs fn on a fresh stack over SQLite and, when available
// (always in CI), PostgreSQL.
func forEachDB(t *testing.T, fn func(t *testing.T, e *env)) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) { fn(t, newEnv(t, dsn)) })
	}
}

func newEnv(t *testing.T, dsn string) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	if filepath.Dir(dsn) != "." && !sqlstore.IsPostgresURL(dsn) {
		dataDir = filepath.Dir(dsn)
	}
	root, err := keyring.OpenLocalRoot(filepath.Join(dataDir, "root.key"), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	c := &clock{now: time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)}
	keys, err := keyring.Open(ctx, keyring.Config{Store: db, Root: root, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	priv, vkey, err := audit.GenerateKey("test.haven/audit")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.NewLog(db, audit.Options{Signer: signer, Now: c.Now})
	t.Cleanup(func() { log.Close() })
	blobs, err := dir.Open(filepath.Join(dataDir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	videoKey := make([]byte, 32)
	rand.Read(videoKey)
	svc := service.New(service.Config{DB: db, Keys: keys, Audit: log, Blobs: blobs, VideoKey: videoKey, Passwords: fastHasher, Now: c.Now})
	t.Cleanup(svc.Wait) // reports of probes still appending, before the log closes
	return &env{t: t, db: db, svc: svc, log: log, verifier: vkey, signer: signer, dataDir: dataDir, dsn: dsn, clock: c, videoKey: videoKey}
}

// practice is a seeded tenant: its people and patients.
type practice struct {
	id                        string
	admin, compliance, staff  haven.Actor
	clinician, otherClinician haven.Actor
	patientA, patientB        haven.Actor
	chartA, chartB            *service.Chart
}

// as returns a context carrying actor a, signed in with MFA just now.
func (e *env) as(a haven.Actor) context.Context {
	a.MFA = true
	a.AuthTime = e.clock.Now()
	a.SessionID = "session-" + a.UserID
	a.RequestID = "req-test"
	a.ClientAddr = "127.0.0.1"
	return haven.NewContextWithActor(context.Background(), a)
}

// seed creates a practice with one of each role, two patients with charts,
// and clinician on patient A's care team.
func (e *env) seed(name, marker string) *practice {
	e.t.Helper()
	ctx := context.Background()
	pr, err := e.svc.CreatePractice(ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	p := &practice{id: pr.ID}
	mk := func(role haven.Role, email string) haven.Actor {
		u, err := e.svc.CreateUser(ctx, service.NewUser{PracticeID: pr.ID, Role: role, Email: email, Name: "Worker " + email, Password: "correct horse battery staple"})
		if err != nil {
			e.t.Fatal(err)
		}
		return haven.Actor{UserID: u.ID, PracticeID: pr.ID, Role: role}
	}
	p.admin = mk(haven.RolePracticeAdmin, "admin@"+name+".example")
	p.compliance = mk(haven.RoleComplianceOfficer, "co@"+name+".example")
	p.staff = mk(haven.RoleStaff, "desk@"+name+".example")
	p.clinician = mk(haven.RoleClinician, "doc@"+name+".example")
	p.otherClinician = mk(haven.RoleClinician, "doc2@"+name+".example")
	reg := func(suffix string) (*service.Chart, haven.Actor) {
		c, err := e.svc.RegisterPatient(e.as(p.staff), service.NewPatient{
			MRN:          "MRN-" + marker + suffix,
			Demographics: service.Demographics{Name: "Name" + marker + suffix, DateOfBirth: "1980-02-03", Sex: "female"},
			Contact:      service.Contact{Email: "pt" + suffix + "@" + name + ".example", Phone: "555" + marker + suffix, Address: "Street" + marker + suffix},
		})
		if err != nil {
			e.t.Fatal(err)
		}
		return c, haven.Actor{UserID: c.PatientID, PracticeID: pr.ID, Role: haven.RolePatient}
	}
	p.chartA, p.patientA = reg("A")
	p.chartB, p.patientB = reg("B")
	if err := e.svc.AddToCareTeam(e.as(p.admin), p.chartA.PatientID, p.clinician.UserID); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// assertNotInTheClear searches what a thief of the disk or a backup would
// hold — every file under the data dir (database, WAL, blobs) and, on
// PostgreSQL, a data-only dump — for each marker, ignoring case, and fails
// t for each one found. Some copy must contain mustHold (a table name, an
// id), or the search would prove nothing.
func (e *env) assertNotInTheClear(t *testing.T, mustHold string, markers ...string) {
	t.Helper()
	var copies [][]byte
	filepath.Walk(e.dataDir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(path)
			copies = append(copies, b)
		}
		return nil
	})
	if e.db.Dialect() == sqlstore.Postgres {
		out, err := exec.Command("pg_dump", "--data-only", e.dsn).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		copies = append(copies, out)
	}
	searched := false
	for _, b := range copies {
		searched = searched || bytes.Contains(b, []byte(mustHold))
		lower := bytes.ToLower(b)
		for _, m := range markers {
			if bytes.Contains(lower, bytes.ToLower([]byte(m))) {
				t.Errorf("marker %q found in the clear", m)
			}
		}
	}
	if !searched {
		t.Fatalf("no raw copy holds %q: the search would prove nothing", mustHold)
	}
}

// lastEvent is the newest event in a practice's audit log.
func (e *env) lastEvent(practiceID string) audit.Event {
	e.t.Helper()
	rows, err := e.db.SearchAudit(context.Background(), sqlstore.AuditQuery{LogID: practiceID, Limit: 1})
	if err != nil || len(rows) == 0 {
		e.t.Fatalf("no audit event: %v", err)
	}
	return rows[0].Event
}

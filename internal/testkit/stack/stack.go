// Package stack builds a whole Haven service stack for tests, written once:
// a real database migrated, a root key in a temporary directory, the
// keyring, an audit log that signs checkpoints, blobs in a directory, and
// a clock the test moves. Options change what differs between tests (At,
// WallClock, NoBlobs, Passwords, Processor), and Node adds a second process on the
// same database. Every service and web test builds its stack here. It
// stands apart from testkit because it reaches keys: testkit serves
// storage's tests too, which must never reach one.
package stack

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
	"haven/blob"
	"haven/blob/dir"
	"haven/internal/testkit"
	"haven/keyring"
	"haven/service"
	"haven/store/sqlstore"
)

// Stack is a whole service stack on one real database.
type Stack struct {
	tb       testing.TB
	DB       *sqlstore.DB
	Keys     *keyring.Keyring // for tests that check where a value is sealed
	Service  *service.Service
	Log      *audit.Log
	Verifier string        // the audit checkpoints' verifier key
	Signer   *audit.Signer // the audit key every node of the deployment shares
	DataDir  string        // the root key, blobs and (for SQLite) the database
	DSN      string
	Clock    *Clock
	VideoKey []byte
	cfg      config
}

// Clock is a clock the test moves; it starts at a fixed instant. A wall
// clock (WallClock) reads the machine's time instead and cannot be moved.
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	wall bool
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	if c.wall {
		return time.Now().UTC()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d. A wall clock refuses: a test that
// moves time must not run on the machine's.
func (c *Clock) Advance(d time.Duration) {
	if c.wall {
		panic("stack: a wall clock cannot be moved")
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// DefaultStart is where a stack's clock starts unless At says otherwise:
// a Wednesday afternoon, so tests read the same on any day they run.
var DefaultStart = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

// An Option changes how New builds a stack.
type Option func(*config)

type config struct {
	start     time.Time
	wall      bool
	noBlobs   bool
	passwords *password.Hasher
	processor haven.Processor
}

// At starts the stack's clock at t instead of DefaultStart.
func At(t time.Time) Option { return func(c *config) { c.start = t.UTC() } }

// WallClock makes every part read the machine's time, for browser tests
// and benchmarks, where a browser or the scheduler keeps real time.
func WallClock() Option { return func(c *config) { c.wall = true } }

// NoBlobs builds the service without a blob store, as a server without
// file storage runs.
func NoBlobs() Option { return func(c *config) { c.noBlobs = true } }

// Passwords hashes passwords with h instead of FastHasher (a benchmark of
// sign-in measures the production parameters).
func Passwords(h *password.Hasher) Option { return func(c *config) { c.passwords = h } }

// Processor charges card payments through p (the Stripe adapter against
// stripe-mock), registered in the platform's vendor registry as serve
// registers it; without it payments are off.
func Processor(p haven.Processor) Option { return func(c *config) { c.processor = p } }

// FastHasher keeps tests quick: argon2id with small memory. Production
// parameters are tested in auth/password.
var FastHasher = password.NewHasher(password.HasherConfig{Params: password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32, PBKDF2Iterations: 1000}})

// ForEachDB runs fn on a fresh stack over SQLite and, when available
// (always in CI), PostgreSQL.
func ForEachDB(t *testing.T, fn func(t *testing.T, s *Stack)) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) { fn(t, New(t, dsn)) })
	}
}

// New builds a stack on the database at dsn; everything it opens is
// closed when tb ends.
func New(tb testing.TB, dsn string, opts ...Option) *Stack {
	tb.Helper()
	cfg := config{start: DefaultStart, passwords: FastHasher}
	for _, o := range opts {
		o(&cfg)
	}
	dataDir := tb.TempDir()
	if filepath.Dir(dsn) != "." && !sqlstore.IsPostgresURL(dsn) {
		dataDir = filepath.Dir(dsn)
	}
	c := NewClock(cfg.start)
	if cfg.wall {
		c = &Clock{wall: true}
	}
	priv, vkey, err := audit.GenerateKey("test.haven/audit")
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := audit.NewSigner(priv)
	if err != nil {
		tb.Fatal(err)
	}
	videoKey := make([]byte, 32)
	rand.Read(videoKey)
	s := &Stack{tb: tb, Verifier: vkey, Signer: signer, DataDir: dataDir, DSN: dsn, Clock: c, VideoKey: videoKey, cfg: cfg}
	s.open(true)
	if cfg.processor != nil {
		// As haven serve does at start: the card processor is in the
		// platform's vendor registry, receiving no PHI.
		if _, err := s.Service.RecognizeVendors(context.Background(), []service.ConfiguredVendor{
			{Kind: haven.VendorPayment, Endpoint: cfg.processor.Endpoint(), PHI: haven.PHINone}}); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// Node is another Haven process on the stack's database: its own
// connection pool, a keyring over the same root key, an audit log signed
// with the same key (each node adopts only rows sealed by a key it
// trusts), and the same clock and options. Its DB, Keys, Log and Service
// are its own; everything else is shared.
func (s *Stack) Node() *Stack {
	s.tb.Helper()
	n := *s
	n.open(false)
	return &n
}

// open opens the database (migrating it when first), the root key
// (creating it when first), the keyring, the audit log, the blobs and the
// service.
func (s *Stack) open(first bool) {
	tb, ctx := s.tb, context.Background()
	db, err := sqlstore.Open(ctx, s.DSN)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if first {
		if _, err := db.Migrate(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	root, err := keyring.OpenLocalRoot(filepath.Join(s.DataDir, "root.key"), nil, first)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { root.Close() })
	keys, err := keyring.Open(ctx, keyring.Config{Store: db, Root: root, Now: s.Clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	log := audit.NewLog(db, audit.Options{Signer: s.Signer, Now: s.Clock.Now})
	tb.Cleanup(func() { log.Close() })
	var blobs blob.Store
	if !s.cfg.noBlobs {
		d, err := dir.Open(filepath.Join(s.DataDir, "blobs"))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { d.Close() })
		blobs = d
	}
	svc := service.New(service.Config{DB: db, Keys: keys, Audit: log, Blobs: blobs, VideoKey: s.VideoKey, Passwords: s.cfg.passwords, Processor: s.cfg.processor, Now: s.Clock.Now})
	tb.Cleanup(svc.Wait) // reports of probes still appending, before the log closes
	s.DB, s.Keys, s.Log, s.Service = db, keys, log, svc
}

// Practice is a seeded tenant: its people and patients.
type Practice struct {
	ID                        string
	Admin, Compliance, Staff  haven.Actor
	Clinician, OtherClinician haven.Actor
	PatientA, PatientB        haven.Actor
	ChartA, ChartB            *service.Chart
}

// Password is what Seed gives every workforce member.
const Password = "correct horse battery staple"

// As returns a context carrying actor a, signed in with MFA just now.
func (s *Stack) As(a haven.Actor) context.Context {
	a.MFA = true
	a.AuthTime = s.Clock.Now()
	a.SessionID = "session-" + a.UserID
	a.RequestID = "req-test"
	a.ClientAddr = "127.0.0.1"
	return haven.NewContextWithActor(context.Background(), a)
}

// Seed creates a practice with one of each role, two patients with
// charts, and Clinician on patient A's care team. Addresses are
// role@name.example (admin, co, desk, doc, doc2; ptA and ptB for the
// patients); marker makes the charts' MRNs, names and phones unique.
func (s *Stack) Seed(name, marker string) *Practice {
	s.tb.Helper()
	ctx := context.Background()
	pr, err := s.Service.CreatePractice(ctx, name)
	if err != nil {
		s.tb.Fatal(err)
	}
	p := &Practice{ID: pr.ID}
	mk := func(role haven.Role, email string) haven.Actor {
		u, err := s.Service.CreateUser(ctx, service.NewUser{PracticeID: pr.ID, Role: role, Email: email, Name: "Worker " + email, Password: Password})
		if err != nil {
			s.tb.Fatal(err)
		}
		return haven.Actor{UserID: u.ID, PracticeID: pr.ID, Role: role}
	}
	p.Admin = mk(haven.RolePracticeAdmin, "admin@"+name+".example")
	p.Compliance = mk(haven.RoleComplianceOfficer, "co@"+name+".example")
	p.Staff = mk(haven.RoleStaff, "desk@"+name+".example")
	p.Clinician = mk(haven.RoleClinician, "doc@"+name+".example")
	p.OtherClinician = mk(haven.RoleClinician, "doc2@"+name+".example")
	reg := func(suffix string) (*service.Chart, haven.Actor) {
		c, err := s.Service.RegisterPatient(s.As(p.Staff), service.NewPatient{
			MRN:          "MRN-" + marker + suffix,
			Demographics: service.Demographics{Name: "Name" + marker + suffix, DateOfBirth: "1980-02-03", Sex: "female"},
			Contact:      service.Contact{Email: "pt" + suffix + "@" + name + ".example", Phone: "555" + marker + suffix, Address: "Street" + marker + suffix},
		})
		if err != nil {
			s.tb.Fatal(err)
		}
		return c, haven.Actor{UserID: c.PatientID, PracticeID: pr.ID, Role: haven.RolePatient}
	}
	p.ChartA, p.PatientA = reg("A")
	p.ChartB, p.PatientB = reg("B")
	if err := s.Service.AddToCareTeam(s.As(p.Admin), p.ChartA.PatientID, p.Clinician.UserID); err != nil {
		s.tb.Fatal(err)
	}
	return p
}

// AssertNotInTheClear searches what a thief of the disk or a backup would
// hold — every file under the data dir (database, WAL, blobs) and, on
// PostgreSQL, a data-only dump — for each marker, ignoring case, and fails
// t for each one found. Some copy must contain mustHold (a table name, an
// id), or the search would prove nothing.
func (s *Stack) AssertNotInTheClear(t *testing.T, mustHold string, markers ...string) {
	t.Helper()
	var copies [][]byte
	filepath.Walk(s.DataDir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(path)
			copies = append(copies, b)
		}
		return nil
	})
	if s.DB.Dialect() == sqlstore.Postgres {
		out, err := exec.Command("pg_dump", "--data-only", s.DSN).Output()
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

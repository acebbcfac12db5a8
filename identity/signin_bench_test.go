package identity_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"haven"
	"haven/auth/password"
	"haven/auth/session"
	"haven/auth/totp"
	"haven/identity"
	"haven/internal/testkit"
	"haven/internal/testkit/stack"
	"haven/service"
	"haven/store/sqlstore"
)

// benchIdentity is identity over SQLite with production argon2id
// parameters, a practice with a patient (password only) and a clinician
// (password and TOTP), and a clock the benchmark moves.
type benchStack struct {
	id     *identity.Service
	db     *sqlstore.DB
	clock  *stack.Clock
	secret string // the clinician's TOTP secret
}

func benchIdentity(b *testing.B) *benchStack {
	b.Helper()
	ctx := context.Background()
	stk := stack.New(b, testkit.SQLite(b), stack.NoBlobs(), stack.Passwords(password.NewHasher(password.HasherConfig{})))
	db, svc, clk := stk.DB, stk.Service, stk.Clock
	id := identity.New(svc.Gate(), identity.Config{DB: db})
	pr, err := svc.CreatePractice(ctx, "Bench Clinic")
	if err != nil {
		b.Fatal(err)
	}
	_, err = svc.CreateUser(ctx, service.NewUser{PracticeID: pr.ID, Role: haven.RoleClinician, Email: "doc@bench.example", Name: "Doc", Password: pw})
	if err != nil {
		b.Fatal(err)
	}
	desk, err := svc.CreateUser(ctx, service.NewUser{PracticeID: pr.ID, Role: haven.RoleStaff, Email: "desk@bench.example", Name: "Desk", Password: pw})
	if err != nil {
		b.Fatal(err)
	}
	staff := haven.NewContextWithActor(ctx, haven.Actor{UserID: desk.ID, PracticeID: pr.ID, Role: haven.RoleStaff, MFA: true,
		AuthTime: clk.Now(), SessionID: "bench", ClientAddr: "127.0.0.1", RequestID: "bench"})
	c, err := svc.RegisterPatient(staff, service.NewPatient{MRN: "B-1", Demographics: service.Demographics{Name: "Pat", DateOfBirth: "1980-01-01"},
		Contact: service.Contact{Email: "pat@bench.example"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.ProvisionPassword(ctx, c.PatientID, pw); err != nil {
		b.Fatal(err)
	}
	res, err := id.Login(ctx, "doc@bench.example", pw, home)
	if err != nil {
		b.Fatal(err)
	}
	en, err := id.BeginPendingEnrolment(ctx, res.Pending, home, "")
	if err != nil {
		b.Fatal(err)
	}
	code, _ := totp.Code(en.Secret, clk.Now())
	if _, err := id.ConfirmPendingEnrolment(ctx, res.Pending, code, home); err != nil {
		b.Fatal(err)
	}
	return &benchStack{id: id, db: db, clock: clk, secret: en.Secret}
}

// BenchmarkLogin measures sign-ins per second through the identity
// service against the raw argon2id rate at the same parameters, in the
// same run. The service adds the blind-index lookup, the throttle's reads
// and writes, the audit append (durable) and the session insert to the one
// hash; the ratio shows what that costs.
//
//   - baseline: argon2id.IDKey at password.DefaultParams, nothing else
//   - service: a patient's password-only sign-in, to a session
//   - service_totp: a clinician's password and TOTP sign-in, to a session
func BenchmarkLogin(b *testing.B) {
	b.Run("baseline", func(b *testing.B) {
		p := password.DefaultParams
		salt := make([]byte, p.SaltLen)
		for b.Loop() {
			argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
	b.Run("service", func(b *testing.B) {
		st := benchIdentity(b)
		ctx := context.Background()
		for b.Loop() {
			res, err := st.id.Login(ctx, "pat@bench.example", pw, home)
			if err != nil || res.Stage != identity.StageDone {
				b.Fatalf("login: %+v, %v", res, err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
	b.Run("service_totp", func(b *testing.B) {
		st := benchIdentity(b)
		ctx := context.Background()
		for b.Loop() {
			st.clock.Advance(30 * time.Second) // a fresh code each time
			res, err := st.id.Login(ctx, "doc@bench.example", pw, home)
			if err != nil {
				b.Fatal(err)
			}
			code, _ := totp.Code(st.secret, st.clock.Now())
			if _, err := st.id.SecondFactor(ctx, res.Pending, identity.FactorTOTP, code, home); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
}

// BenchmarkResume is the per-request session check every authenticated
// request pays, against its baseline: the bare indexed lookup of the
// session row by token hash, with no checks.
func BenchmarkResume(b *testing.B) {
	st := benchIdentity(b)
	ctx := context.Background()
	res, err := st.id.Login(ctx, "pat@bench.example", pw, home)
	if err != nil {
		b.Fatal(err)
	}
	token := res.Session.Token
	b.Run("baseline", func(b *testing.B) {
		hash, _ := session.HashToken(token)
		for b.Loop() {
			if _, err := st.db.SessionRecordByTokenHash(ctx, hash); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("service", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.id.Resume(ctx, token, home); err != nil {
				b.Fatal(err)
			}
		}
	})
}

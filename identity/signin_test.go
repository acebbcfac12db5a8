package identity_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/outbox"
	"haven/auth/totp"
	"haven/identity"
	"haven/internal/testkit/stack"
	"haven/service"
)

const pw = stack.Password // what Seed gives every workforce member

// ident is an identity service over the env's service, with an in-memory outbox.
type ident struct {
	*identity.Service
	e    *env
	mail *outbox.Memory
}

func (e *env) identity() *ident {
	mail := &outbox.Memory{}
	id := identity.New(e.Service.Gate(), identity.Config{DB: e.DB, Outbox: mail, BaseURL: "https://haven.test"})
	e.t.Cleanup(id.Close)
	return &ident{Service: id, e: e, mail: mail}
}

// browser is one client: an address, a User-Agent and a device cookie.
func browser(addr, device string) identity.Client {
	return identity.Client{Addr: addr, UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
		DeviceCookie: device, RequestID: "req-" + device}
}

var home = browser("198.51.100.7", "device-home")

// enrol signs email in for the first time and enrols an authenticator,
// returning the session, the TOTP secret and the recovery codes.
func (id *ident) enrol(email string, c identity.Client) (*identity.NewSession, string, []string) {
	t := id.e.t
	t.Helper()
	ctx := context.Background()
	res, err := id.Login(ctx, email, pw, c)
	if err != nil || res.Stage != identity.StageEnrol {
		t.Fatalf("first sign-in: %+v, %v; want the enrolment stage", res, err)
	}
	en, err := id.BeginPendingEnrolment(ctx, res.Pending, c, "")
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.Code(en.Secret, id.e.Clock.Now())
	done, err := id.ConfirmPendingEnrolment(ctx, res.Pending, code, c)
	if err != nil || done.Stage != identity.StageDone || len(done.RecoveryCodes) != 10 {
		t.Fatalf("confirm enrolment: %+v, %v", done, err)
	}
	// The confirming code is used up: move to the next step so the next
	// sign-in has a fresh code.
	id.e.Clock.Advance(30 * time.Second)
	return done.Session, en.Secret, done.RecoveryCodes
}

// signIn signs email in with password and a TOTP code for secret.
func (id *ident) signIn(email, secret string, c identity.Client) (*identity.NewSession, error) {
	ctx := context.Background()
	res, err := id.Login(ctx, email, pw, c)
	if err != nil {
		return nil, err
	}
	if res.Stage != identity.StageSecondFactor {
		id.e.t.Fatalf("stage %s, want %s", res.Stage, identity.StageSecondFactor)
	}
	code, _ := totp.Code(secret, id.e.Clock.Now())
	done, err := id.SecondFactor(ctx, res.Pending, identity.FactorTOTP, code, c)
	if err != nil {
		return nil, err
	}
	return done.Session, nil
}

// resume is a request presenting s's token from c.
func (id *ident) resume(s *identity.NewSession, c identity.Client) (*identity.Current, error) {
	return id.Resume(context.Background(), s.Token, c)
}

func ctxOf(cur *identity.Current) context.Context {
	return haven.NewContextWithActor(context.Background(), cur.Actor)
}

func TestWorkforceSignInNeedsPasswordThenAnAuthenticator(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "a1")
		id := e.identity()
		s, secret, _ := id.enrol("doc@riverside.example", home)
		if !s.Actor.MFA || s.Actor.UserID != p.Clinician.UserID || s.Actor.Role != haven.RoleClinician {
			t.Fatalf("session actor %+v", s.Actor)
		}
		cur, err := id.resume(s, home)
		if err != nil || !cur.Actor.MFA || cur.Challenged {
			t.Fatalf("Resume = %+v, %v", cur, err)
		}
		// Later sign-ins ask for the code, and with it reach the chart.
		s2, err := id.signIn("DOC@Riverside.example ", secret, home)
		if err != nil {
			t.Fatal(err)
		}
		cur, _ = id.resume(s2, home)
		if _, err := e.Service.Chart(ctxOf(cur), p.ChartA.PatientID); err != nil {
			t.Fatalf("a signed-in care-team clinician cannot read the chart: %v", err)
		}
		if ev := e.lastEvent(p.ID); ev.SessionID != s2.Actor.SessionID || ev.Decision != "allow" {
			t.Fatalf("chart read audited as %+v", ev)
		}
	})
}

// TestWorkforceWithoutMFACannotReachPHI: a password alone never makes a
// workforce session, the half-finished sign-in's token is not a session,
// and an actor without MFA (as a challenged session presents) is refused
// by policy.
func TestWorkforceWithoutMFACannotReachPHI(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "a2")
		id := e.identity()
		res, err := id.Login(context.Background(), "doc@riverside.example", pw, home)
		if err != nil || res.Stage != identity.StageEnrol || res.Session != nil {
			t.Fatalf("Login = %+v, %v; want enrolment and no session", res, err)
		}
		if _, err := id.Resume(context.Background(), res.Pending, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a pending sign-in's token was accepted as a session: %v", err)
		}
		s, _, _ := id.enrol("doc2@riverside.example", home)
		cur, err := id.resume(s, browser("203.0.113.50", "device-home")) // another network: challenged
		if err != nil || !cur.Challenged || cur.Actor.MFA {
			t.Fatalf("challenged session: %+v, %v", cur, err)
		}
		e.Service.AddToCareTeam(e.As(p.Admin), p.ChartB.PatientID, p.OtherClinician.UserID)
		if _, err := e.Service.Chart(ctxOf(cur), p.ChartB.PatientID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("a workforce actor without MFA read a chart: %v", err)
		}
		if ev := e.lastEvent(p.ID); ev.Reason != "mfa_required" {
			t.Fatalf("denial audited as %+v", ev)
		}
	})
}

// TestUnknownAndKnownEmailsGetTheSameAnswer: an unknown email, a known one
// with a wrong password, and a disabled account are indistinguishable.
func TestUnknownAndKnownEmailsGetTheSameAnswer(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "a5")
		id := e.identity()
		ctx := context.Background()
		if err := id.SetDisabled(e.As(p.Admin), p.Staff.UserID, true); err != nil {
			t.Fatal(err)
		}
		var answers []string
		for i, email := range []string{"nobody@riverside.example", "doc@riverside.example", "desk@riverside.example", "not an email"} {
			res, err := id.Login(ctx, email, "wrong password entirely", browser("198.51.100."+string(rune('1'+i)), "d"))
			if res != nil || err == nil {
				t.Fatalf("%s: a wrong sign-in got %+v", email, res)
			}
			answers = append(answers, haven.ErrorCode(err)+"|"+haven.ErrorMessage(err))
		}
		for _, a := range answers[1:] {
			if a != answers[0] {
				t.Fatalf("answers differ: %q vs %q", answers[0], a)
			}
		}
		// The platform log holds the unknown email's failure without any
		// actor; no event anywhere holds an email address.
		rows, err := e.DB.SearchAudit(ctx, haven.AuditQuery{LogID: "platform", Action: identity.ActLogin, Limit: 10})
		if err != nil || len(rows) == 0 || rows[0].Event.ActorID != "" || rows[0].Event.Reason != "unknown_account" {
			t.Fatalf("platform log: %+v, %v", rows, err)
		}
		for _, log := range []string{"platform", p.ID} {
			all, _ := e.DB.SearchAudit(ctx, haven.AuditQuery{LogID: log, Limit: 1000})
			for _, r := range all {
				if strings.Contains(strings.Join(fields(r.Event), " "), "@") {
					t.Fatalf("an audit event carries an email: %+v", r.Event)
				}
			}
		}
	})
}

func fields(e audit.Event) []string {
	return []string{e.LogID, e.ActorID, e.SessionID, e.Action, e.ResourceKind, e.ResourceID, e.PatientID, e.Reason, e.ClientAddr, e.RequestID}
}

var linkRE = regexp.MustCompile(`https://haven\.test(/[a-z]+/[A-Za-z0-9_-]{43})`)

// mailedLink waits for the n-th email and returns its link's path.
func (id *ident) mailedLink(n int, to string) string {
	id.e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := id.mail.Wait(ctx, n)
	if err != nil {
		id.e.t.Fatalf("no email %d: %v", n, err)
	}
	m := msgs[n-1]
	if m.To != to {
		id.e.t.Fatalf("email to %q, want %q", m.To, to)
	}
	match := linkRE.FindStringSubmatch(m.Text)
	if match == nil {
		id.e.t.Fatalf("no link in %q", m.Text)
	}
	return match[1]
}

// TestPatientWithoutMFASignsInWithPasswordUnlessThePracticeRequiresIt.
func TestPatientWithoutMFASignsInWithPasswordUnlessThePracticeRequiresIt(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "b10")
		id := e.identity()
		ctx := context.Background()
		if err := e.Service.ProvisionPassword(ctx, p.PatientA.UserID, pw); err != nil {
			t.Fatal(err)
		}
		res, err := id.Login(ctx, "ptA@riverside.example", pw, home)
		if err != nil || res.Stage != identity.StageDone || res.Session.Actor.MFA {
			t.Fatalf("patient sign-in: %+v, %v", res, err)
		}
		cur, _ := id.resume(res.Session, home)
		if _, err := e.Service.Chart(ctxOf(cur), p.PatientA.UserID); err != nil {
			t.Fatalf("a patient cannot read their own chart: %v", err)
		}
		// Another node changes the setting; this one decides the very
		// next request on it: nothing cached stands in the way.
		ps := service.DefaultSettings()
		ps.PatientsRequireMFA = true
		if err := e.Node().Service.UpdateSettings(e.As(p.Admin), ps); err != nil {
			t.Fatal(err)
		}
		if _, err := id.resume(res.Session, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a password-only patient session survived the practice requiring MFA: %v", err)
		}
		if res, err := id.Login(ctx, "ptA@riverside.example", pw, home); err != nil || res.Stage != identity.StageEnrol {
			t.Fatalf("patient sign-in under required MFA: %+v, %v", res, err)
		}
	})
}

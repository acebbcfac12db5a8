package identity_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/outbox"
	"haven/auth/totp"
	"haven/identity"
	"haven/store/sqlstore"
)

const pw = "correct horse battery staple" // what env.seed gives every workforce member

// ident is an identity service over the env's service, with an in-memory outbox.
type ident struct {
	*identity.Service
	e    *env
	mail *outbox.Memory
}

func (e *env) identity() *ident {
	mail := &outbox.Memory{}
	id := identity.New(e.svc.Gate(), identity.Config{DB: e.db, Outbox: mail, BaseURL: "https://haven.test"})
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
	code, _ := totp.Code(en.Secret, id.e.clock.Now())
	done, err := id.ConfirmPendingEnrolment(ctx, res.Pending, code, c)
	if err != nil || done.Stage != identity.StageDone || len(done.RecoveryCodes) != 10 {
		t.Fatalf("confirm enrolment: %+v, %v", done, err)
	}
	// The confirming code is used up: move to the next step so the next
	// sign-in has a fresh code.
	id.e.clock.Advance(30 * time.Second)
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
	code, _ := totp.Code(secret, id.e.clock.Now())
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
		p := e.seed("riverside", "a1")
		id := e.identity()
		s, secret, _ := id.enrol("doc@riverside.example", home)
		if !s.Actor.MFA || s.Actor.UserID != p.clinician.UserID || s.Actor.Role != haven.RoleClinician {
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
		if _, err := e.svc.Chart(ctxOf(cur), p.chartA.PatientID); err != nil {
			t.Fatalf("a signed-in care-team clinician cannot read the chart: %v", err)
		}
		if ev := e.lastEvent(p.id); ev.SessionID != s2.Actor.SessionID || ev.Decision != "allow" {
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
		p := e.seed("riverside", "a2")
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
		e.svc.AddToCareTeam(e.as(p.admin), p.chartB.PatientID, p.otherClinician.UserID)
		if _, err := e.svc.Chart(ctxOf(cur), p.chartB.PatientID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("a workforce actor without MFA read a chart: %v", err)
		}
		if ev := e.lastEvent(p.id); ev.Reason != "mfa_required" {
			t.Fatalf("denial audited as %+v", ev)
		}
	})
}

func TestReplayedTOTPCodeIsRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.seed("riverside", "a3")
		id := e.identity()
		_, secret, _ := id.enrol("doc@riverside.example", home)
		ctx := context.Background()
		code, _ := totp.Code(secret, e.clock.Now())
		first, _ := id.Login(ctx, "doc@riverside.example", pw, home)
		if _, err := id.SecondFactor(ctx, first.Pending, identity.FactorTOTP, code, home); err != nil {
			t.Fatal(err)
		}
		// A phisher replays the same code seconds later, with the password.
		e.clock.Advance(10 * time.Second)
		second, _ := id.Login(ctx, "doc@riverside.example", pw, browser("203.0.113.66", "phisher"))
		if _, err := id.SecondFactor(ctx, second.Pending, identity.FactorTOTP, code, browser("203.0.113.66", "phisher")); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("replayed code: %v, want %s", err, haven.EUNAUTHORIZED)
		}

		// Two sign-ins racing with one fresh code: exactly one gets a session.
		e.clock.Advance(30 * time.Second)
		code, _ = totp.Code(secret, e.clock.Now())
		var pend []string
		for range 6 {
			r, err := id.Login(ctx, "doc@riverside.example", pw, home)
			if err != nil {
				t.Fatal(err)
			}
			pend = append(pend, r.Pending)
		}
		var mu sync.Mutex
		wins := 0
		var wg sync.WaitGroup
		for _, p := range pend {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := id.SecondFactor(ctx, p, identity.FactorTOTP, code, home); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("one TOTP code signed in %d times", wins)
		}
	})
}

func TestRecoveryCodeSignsInOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.seed("riverside", "a4")
		id := e.identity()
		_, _, codes := id.enrol("desk@riverside.example", home)
		ctx := context.Background()
		r, _ := id.Login(ctx, "desk@riverside.example", pw, home)
		done, err := id.SecondFactor(ctx, r.Pending, identity.FactorRecovery, strings.ToLower(codes[0]), home)
		if err != nil || done.RecoveryLeft != 9 || !done.Session.Actor.MFA {
			t.Fatalf("recovery sign-in: %+v, %v", done, err)
		}
		r, _ = id.Login(ctx, "desk@riverside.example", pw, home)
		if _, err := id.SecondFactor(ctx, r.Pending, identity.FactorRecovery, codes[0], home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("a used recovery code worked again: %v", err)
		}
	})
}

// TestUnknownAndKnownEmailsGetTheSameAnswer: an unknown email, a known one
// with a wrong password, and a disabled account are indistinguishable.
func TestUnknownAndKnownEmailsGetTheSameAnswer(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "a5")
		id := e.identity()
		ctx := context.Background()
		if err := id.SetDisabled(e.as(p.admin), p.staff.UserID, true); err != nil {
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
		rows, err := e.db.SearchAudit(ctx, sqlstore.AuditQuery{LogID: "platform", Action: identity.ActLogin, Limit: 10})
		if err != nil || len(rows) == 0 || rows[0].Event.ActorID != "" || rows[0].Event.Reason != "unknown_account" {
			t.Fatalf("platform log: %+v, %v", rows, err)
		}
		for _, log := range []string{"platform", p.id} {
			all, _ := e.db.SearchAudit(ctx, sqlstore.AuditQuery{LogID: log, Limit: 1000})
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

// TestThrottleKicksInAndEnds drives the sign-in throttle with the injected
// clock: five failures from one address, then even the right password
// waits; the wait ends by itself; a known device gets past an account's
// backoff that strangers caused.
func TestThrottleKicksInAndEnds(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "a6")
		id := e.identity()
		ctx := context.Background()
		_, secret, _ := id.enrol("doc@riverside.example", home)
		attacker := browser("203.0.113.9", "attacker")
		for i := range 5 {
			if _, err := id.Login(ctx, "doc@riverside.example", "guess-"+string(rune('a'+i)), attacker); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
				t.Fatalf("guess %d: %v", i, err)
			}
		}
		_, err := id.Login(ctx, "doc@riverside.example", pw, attacker)
		wait := identity.RetryAfter(err)
		if haven.ErrorCode(err) != haven.ETOOMANY || wait <= 0 {
			t.Fatalf("sixth attempt: %v (wait %v), want %s", err, wait, haven.ETOOMANY)
		}
		if ev := e.lastEvent(p.id); ev.Action != identity.ActLogin || ev.Reason != "throttled" {
			t.Fatalf("throttled attempt audited as %+v", ev)
		}
		lockout, _ := e.db.SearchAudit(ctx, sqlstore.AuditQuery{LogID: p.id, Action: identity.ActLogin, Limit: 100})
		found := false
		for _, r := range lockout {
			found = found || r.Event.Reason == "backoff_started"
		}
		if !found {
			t.Fatal("the start of the backoff was not audited")
		}
		e.clock.Advance(wait)
		if res, err := id.Login(ctx, "doc@riverside.example", pw, attacker); err != nil || res.Stage != identity.StageSecondFactor {
			t.Fatalf("after the wait: %+v, %v", res, err)
		}

		// Strangers at many addresses push the account into backoff; its
		// owner, on the device that signed in before, is not held back.
		for i := range 30 {
			id.Login(ctx, "doc@riverside.example", "spray", browser("192.0.2."+itoa(10+i), "bot"))
		}
		if _, err := id.Login(ctx, "doc@riverside.example", pw, browser("198.51.100.200", "new-device")); haven.ErrorCode(err) != haven.ETOOMANY {
			t.Fatalf("a new device during the account's backoff: %v", err)
		}
		if _, err := id.signIn("doc@riverside.example", secret, home); err != nil {
			t.Fatalf("the owner's known device was locked out: %v", err)
		}
	})
}

// TestStrangersCannotLockAPatientOutOfHerOwnBrowser: a patient without a
// second factor signed in from her browser once. Strangers then fail her
// password 24 times from 6 addresses (4 each, under every address's own
// allowance), waiting out each backoff the account earns, which leaves
// her account in backoff: a device she never
// used must wait, but her browser signs in at once, and its own failures
// are still counted against it alone.
func TestStrangersCannotLockAPatientOutOfHerOwnBrowser(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "b15")
		id := e.identity()
		ctx := context.Background()
		if err := e.svc.ProvisionPassword(ctx, p.patientA.UserID, pw); err != nil {
			t.Fatal(err)
		}
		const email = "ptA@riverside.example"
		if res, err := id.Login(ctx, email, pw, home); err != nil || res.Stage != identity.StageDone {
			t.Fatalf("first sign-in: %+v, %v", res, err)
		}
		for a := range 6 {
			for g := 0; g < 4; {
				stranger := browser("203.0.113."+itoa(10+a), "bot-"+itoa(a))
				_, err := id.Login(ctx, email, "wrong guess "+itoa(g), stranger)
				switch haven.ErrorCode(err) {
				case haven.EUNAUTHORIZED:
					g++
				case haven.ETOOMANY: // the strangers wait out each backoff
					e.clock.Advance(identity.RetryAfter(err))
				default:
					t.Fatalf("stranger %d guess %d: %v", a, g, err)
				}
			}
		}
		if _, err := id.Login(ctx, email, pw, browser("198.51.100.200", "never-seen")); haven.ErrorCode(err) != haven.ETOOMANY {
			t.Fatalf("an unknown device during the account's backoff: %v, want %s", err, haven.ETOOMANY)
		}
		res, err := id.Login(ctx, email, pw, home)
		if err != nil || res.Stage != identity.StageDone {
			t.Fatalf("the patient's own browser was locked out by strangers: %+v, %v", res, err)
		}

		// Her browser's cookie in a thief's hands buys no guesses: its
		// failures, from any address, are its own to wait out.
		for i := range 5 {
			thief := browser("192.0.2."+itoa(50+i), "device-home")
			if _, err := id.Login(ctx, email, "thief guess", thief); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
				t.Fatalf("thief guess %d: %v", i, err)
			}
		}
		if _, err := id.Login(ctx, email, pw, browser("192.0.2.99", "device-home")); haven.ErrorCode(err) != haven.ETOOMANY {
			t.Fatalf("the known device after 5 failures of its own: %v, want %s", err, haven.ETOOMANY)
		}
	})
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// TestExpiredSessionIsRefused moves the injected clock: idle and absolute
// timeouts are enforced by the server on the next request.
func TestExpiredSessionIsRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.seed("riverside", "a7")
		id := e.identity()
		s, secret, _ := id.enrol("doc@riverside.example", home)
		e.clock.Advance(14 * time.Minute)
		cur, err := id.resume(s, home)
		if err != nil {
			t.Fatalf("after 14 idle minutes: %v", err)
		}
		if want := e.clock.Now().Add(15 * time.Minute); !cur.Expires.Equal(want) || !cur.WarnAt.Before(cur.Expires) {
			t.Fatalf("Expires %v WarnAt %v, want %v and a warning before it", cur.Expires, cur.WarnAt, want)
		}
		e.clock.Advance(15 * time.Minute)
		if _, err := id.resume(s, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("after 15 idle minutes: %v", err)
		}

		// Active all day, a workforce session still ends 12 hours after sign-in.
		s, err = id.signIn("doc@riverside.example", secret, home)
		if err != nil {
			t.Fatal(err)
		}
		start := e.clock.Now()
		for e.clock.Now().Before(start.Add(12*time.Hour - 10*time.Minute)) {
			e.clock.Advance(10 * time.Minute)
			if _, err := id.resume(s, home); err != nil {
				t.Fatalf("active session refused at +%v: %v", e.clock.Now().Sub(start), err)
			}
		}
		e.clock.Advance(start.Add(12 * time.Hour).Sub(e.clock.Now()))
		if _, err := id.resume(s, home); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("at the absolute end: %v", err)
		}
	})
}

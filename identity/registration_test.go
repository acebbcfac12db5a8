package identity_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/identity"
	"haven/policy"
	"haven/service"
)

// registrationLinkRE finds a registration link's practice and token.
var registrationLinkRE = regexp.MustCompile(`https://haven\.test/register/([a-z0-9]+)/([A-Za-z0-9_-]{43})\b`)

// openRegistration turns self-registration on or off for p, as its admin
// (with MFA and a fresh authentication) does.
func (e *env) openRegistration(p *practice, on bool) {
	e.t.Helper()
	ps := service.DefaultSettings()
	ps.SelfRegistration = on
	if err := e.Service.UpdateSettings(e.As(p.Admin), ps); err != nil {
		e.t.Fatal(err)
	}
}

// registrationLink waits for n emails and returns the practice and token
// of the registration link in the latest one to to (emails are sent in
// the background, so their order is not the requests').
func (id *ident) registrationLink(n int, to string) (practiceID, token string) {
	t := id.e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := id.mail.Wait(ctx, n)
	if err != nil {
		t.Fatalf("no email %d: %v", n, err)
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].To != to {
			continue
		}
		match := registrationLinkRE.FindStringSubmatch(msgs[i].Text)
		if match == nil {
			t.Fatalf("no registration link in %q", msgs[i].Text)
		}
		return match[1], match[2]
	}
	t.Fatalf("no email to %q among %d", to, len(msgs))
	return "", ""
}

// practiceUsers counts the accounts of a practice.
func (e *env) practiceUsers(practiceID string) int {
	e.t.Helper()
	us, err := e.DB.ListUsers(context.Background(), practiceID)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(us)
}

var newPatient = identity.SelfRegistration{Name: "Rowan Selfreg", DateOfBirth: "1990-04-05", Password: "a lantern over the quiet harbour"}

// TestPatientRegistersThemselvesAfterVerifyingTheirEmail walks both
// steps: the link, the account and chart (sealed, readable by the patient
// alone among the practice's patients), the audit trail, sign-in with the
// new password, and a second use of the link refused.
func TestPatientRegistersThemselvesAfterVerifyingTheirEmail(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "r1")
		e.openRegistration(p, true)
		id := e.identity()
		ctx := context.Background()
		if name, err := id.RegistrationPractice(ctx, p.ID); err != nil || name != "riverside" {
			t.Fatalf("RegistrationPractice = %q, %v", name, err)
		}
		if err := id.RequestRegistration(ctx, p.ID, " Rowan@Patients.example ", home); err != nil {
			t.Fatal(err)
		}
		practiceID, token := id.registrationLink(1, "rowan@patients.example")
		if practiceID != p.ID {
			t.Fatalf("the link names practice %s, want %s", practiceID, p.ID)
		}
		if m := id.mail.Sent()[0]; strings.Contains(m.Text, "riverside") || strings.Contains(m.Subject, "riverside") {
			t.Fatalf("the email names the clinic: %q", m.Text)
		}
		info, err := id.RegistrationLinkInfo(ctx, p.ID, token, home)
		if err != nil || info.Email != "rowan@patients.example" || info.PracticeName != "riverside" || !info.Expires.Equal(e.Clock.Now().Add(identity.VerifyTTL)) {
			t.Fatalf("RegistrationLinkInfo = %+v, %v", info, err)
		}
		before := e.practiceUsers(p.ID)
		res, err := id.CompleteRegistration(ctx, p.ID, token, newPatient, home)
		if err != nil || res.Stage != identity.StageDone {
			t.Fatalf("CompleteRegistration = %+v, %v", res, err)
		}
		a := res.Session.Actor
		if a.Role != haven.RolePatient || a.PracticeID != p.ID || a.MFA || e.practiceUsers(p.ID) != before+1 {
			t.Fatalf("session actor %+v, users %d → %d", a, before, e.practiceUsers(p.ID))
		}
		cur, err := id.Resume(ctx, res.Session.Token, home)
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.Service.Chart(ctxOf(cur), a.UserID)
		if err != nil || c.Demographics.Name != "Rowan Selfreg" || c.Demographics.DateOfBirth != "1990-04-05" ||
			c.Contact.Email != "rowan@patients.example" || !strings.HasPrefix(c.MRN, "SR-") {
			t.Fatalf("the patient's own chart: %+v, %v", c, err)
		}
		if c, err := e.Service.Chart(ctxOf(cur), p.ChartA.PatientID); haven.ErrorCode(err) != haven.ENOTFOUND || c != nil {
			t.Fatalf("the new patient read another patient's chart: %v", err)
		}
		// The front desk sees the new chart like any other.
		if c, err := e.Service.Chart(e.As(p.Staff), a.UserID); err != nil || c.Demographics.Name != "Rowan Selfreg" {
			t.Fatalf("the front desk's view: %+v, %v", c, err)
		}
		reg := e.events(p.ID, string(policy.PatientRegister))[0]
		if reg.ActorID != a.UserID || reg.PatientID != a.UserID || reg.Reason != "self_registration" || reg.Decision != haven.DecisionAllow {
			t.Fatalf("chart creation audited as %+v", reg)
		}
		acct := e.events(p.ID, identity.ActRegister)[0]
		if acct.ActorID != a.UserID || acct.Decision != haven.DecisionAllow || acct.ClientAddr != home.Addr {
			t.Fatalf("account creation audited as %+v", acct)
		}
		if req := e.events(p.ID, identity.ActRegisterRequest)[0]; req.Decision != haven.DecisionAllow || req.ActorID != "" {
			t.Fatalf("the request audited as %+v", req)
		}
		// The password works at the sign-in page.
		if res, err := id.Login(ctx, "rowan@patients.example", newPatient.Password, home); err != nil || res.Stage != identity.StageDone {
			t.Fatalf("sign-in with the chosen password: %+v, %v", res, err)
		}
		// The link is used up.
		other := newPatient
		other.Name = "Mallory Replay"
		if _, err := id.CompleteRegistration(ctx, p.ID, token, other, browser("203.0.113.5", "x")); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("a registration link worked twice: %v", err)
		}
		if _, err := id.RegistrationLinkInfo(ctx, p.ID, token, home); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("a used link still shows its form: %v", err)
		}
		if n := e.practiceUsers(p.ID); n != before+1 {
			t.Fatalf("%d accounts after the replay, want %d", n, before+1)
		}
	})
}

// TestRegistrationAnswersAlikeForKnownAndUnknownAddresses: the same nil
// answer; a new address gets a link, a known one a note with no link, and
// the known account is untouched.
func TestRegistrationAnswersAlikeForKnownAndUnknownAddresses(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "r2")
		e.openRegistration(p, true)
		id := e.identity()
		ctx := context.Background()
		before := e.practiceUsers(p.ID)
		errKnown := id.RequestRegistration(ctx, p.ID, "ptA@riverside.example", home)
		errNew := id.RequestRegistration(ctx, p.ID, "new.person@patients.example", home)
		if errKnown != nil || errNew != nil {
			t.Fatalf("answers: known %v, new %v", errKnown, errNew)
		}
		id.Close() // every background send is done
		sent := id.mail.Sent()
		if len(sent) != 2 {
			t.Fatalf("%d emails, want 2", len(sent))
		}
		byTo := map[string]string{}
		for _, m := range sent {
			byTo[m.To] = m.Text
		}
		known := byTo["pta@riverside.example"]
		if !strings.Contains(known, "already") || !strings.Contains(known, "https://haven.test/reset") || registrationLinkRE.MatchString(known) {
			t.Fatalf("the known address's email: %q", known)
		}
		if !registrationLinkRE.MatchString(byTo["new.person@patients.example"]) {
			t.Fatalf("the new address's email: %q", byTo["new.person@patients.example"])
		}
		for _, text := range byTo {
			if strings.Contains(text, "Namer2") || strings.Contains(text, "riverside") {
				t.Fatalf("an email names the patient or the clinic: %q", text)
			}
		}
		if e.practiceUsers(p.ID) != before {
			t.Fatal("a request created an account")
		}
		// The log, unlike the answer, says which was which.
		evs := e.events(p.ID, identity.ActRegisterRequest)
		found := false
		for _, ev := range evs {
			found = found || (ev.Decision == haven.DecisionDeny && ev.Reason == "account_exists" && ev.ActorID == p.PatientA.UserID)
		}
		if len(evs) != 2 || !found {
			t.Fatalf("requests audited as %+v", evs)
		}
	})
}

// TestRegistrationClosedSendsAndCreatesNothing: with the setting off (the
// default) the answer is the same, nothing is sent, nothing created; and a
// link sent while it was open stops working when it closes.
func TestRegistrationClosedSendsAndCreatesNothing(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "r3")
		id := e.identity()
		ctx := context.Background()
		if _, err := id.RegistrationPractice(ctx, p.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("a closed registration page: %v", err)
		}
		if _, err := id.RegistrationPractice(ctx, "no-such-practice"); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("an unknown practice's page: %v", err)
		}
		before := e.practiceUsers(p.ID)
		for _, pid := range []string{p.ID, "no-such-practice", "<script>"} {
			if err := id.RequestRegistration(ctx, pid, "new.person@patients.example", home); err != nil {
				t.Fatalf("request at %q: %v", pid, err)
			}
		}
		if ev := e.events(p.ID, identity.ActRegisterRequest)[0]; ev.Decision != haven.DecisionDeny || ev.Reason != "registration_closed" {
			t.Fatalf("a closed request audited as %+v", ev)
		}
		// Open, send a link, close: the link is refused and nothing is made.
		e.openRegistration(p, true)
		if err := id.RequestRegistration(ctx, p.ID, "new.person@patients.example", home); err != nil {
			t.Fatal(err)
		}
		_, token := id.registrationLink(1, "new.person@patients.example")
		e.openRegistration(p, false)
		if _, err := id.CompleteRegistration(ctx, p.ID, token, newPatient, home); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("a link of a closed registration: %v", err)
		}
		id.Close()
		if n := len(id.mail.Sent()); n != 1 {
			t.Fatalf("%d emails, want only the one sent while open", n)
		}
		if e.practiceUsers(p.ID) != before {
			t.Fatal("an account was created")
		}
	})
}

// TestRegistrationLinkExpires: a day later (by the injected clock) the
// link is refused and creates nothing.
func TestRegistrationLinkExpires(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "r4")
		e.openRegistration(p, true)
		id := e.identity()
		ctx := context.Background()
		if err := id.RequestRegistration(ctx, p.ID, "late@patients.example", home); err != nil {
			t.Fatal(err)
		}
		_, token := id.registrationLink(1, "late@patients.example")
		before := e.practiceUsers(p.ID)
		e.Clock.Advance(identity.VerifyTTL + time.Second)
		if _, err := id.RegistrationLinkInfo(ctx, p.ID, token, home); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("an expired link's form: %v", err)
		}
		if _, err := id.CompleteRegistration(ctx, p.ID, token, newPatient, home); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("an expired link: %v", err)
		}
		if e.practiceUsers(p.ID) != before {
			t.Fatal("an expired link created an account")
		}
	})
}

// TestRegistrationLinkOfOnePracticeCannotRegisterInAnother: a link from
// practice A presented at practice B's page (also open) is refused,
// recorded in A's log, creates nothing in either, and still works at A.
func TestRegistrationLinkOfOnePracticeCannotRegisterInAnother(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		a := e.Seed("riverside", "r5")
		b := e.Seed("lakeshore", "r5b")
		e.openRegistration(a, true)
		e.openRegistration(b, true)
		id := e.identity()
		ctx := context.Background()
		if err := id.RequestRegistration(ctx, a.ID, "wanderer@patients.example", home); err != nil {
			t.Fatal(err)
		}
		_, token := id.registrationLink(1, "wanderer@patients.example")
		beforeA, beforeB := e.practiceUsers(a.ID), e.practiceUsers(b.ID)
		if _, err := id.RegistrationLinkInfo(ctx, b.ID, token, home); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("A's link shown at B: %v", err)
		}
		if _, err := id.CompleteRegistration(ctx, b.ID, token, newPatient, home); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("A's link used at B: %v", err)
		}
		if ev := e.events(a.ID, identity.ActRegister)[0]; ev.Decision != haven.DecisionDeny || ev.Reason != "other_practice" {
			t.Fatalf("the cross-practice attempt audited as %+v", ev)
		}
		if e.practiceUsers(a.ID) != beforeA || e.practiceUsers(b.ID) != beforeB {
			t.Fatal("an account was created")
		}
		res, err := id.CompleteRegistration(ctx, a.ID, token, newPatient, home)
		if err != nil || res.Session.Actor.PracticeID != a.ID {
			t.Fatalf("the link at its own practice: %+v, %v", res, err)
		}
		if e.practiceUsers(b.ID) != beforeB {
			t.Fatal("B gained an account")
		}
	})
}

// TestRegistrationRefusesWeakPasswordsAndBadDetailsWithoutUsingTheLink.
func TestRegistrationRefusesWeakPasswordsAndBadDetailsWithoutUsingTheLink(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "r6")
		e.openRegistration(p, true)
		id := e.identity()
		ctx := context.Background()
		if err := id.RequestRegistration(ctx, p.ID, "careful@patients.example", home); err != nil {
			t.Fatal(err)
		}
		_, token := id.registrationLink(1, "careful@patients.example")
		before := e.practiceUsers(p.ID)
		for name, reg := range map[string]identity.SelfRegistration{
			"breached":    {Name: "Careful Person", DateOfBirth: "1990-04-05", Password: "password"},
			"short":       {Name: "Careful Person", DateOfBirth: "1990-04-05", Password: "short"},
			"no name":     {Name: "  ", DateOfBirth: "1990-04-05", Password: newPatient.Password},
			"bad date":    {Name: "Careful Person", DateOfBirth: "05/04/1990", Password: newPatient.Password},
			"future date": {Name: "Careful Person", DateOfBirth: "2999-01-01", Password: newPatient.Password},
		} {
			if _, err := id.CompleteRegistration(ctx, p.ID, token, reg, home); haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if e.practiceUsers(p.ID) != before {
			t.Fatal("a refused registration created an account")
		}
		if _, err := id.CompleteRegistration(ctx, p.ID, token, newPatient, home); err != nil {
			t.Fatalf("the link after refused attempts: %v", err)
		}
	})
}

// TestRegistrationRequestsAreThrottledPerAddressAndPerEmail: one source
// address gets a few requests and then waits; one inbox gets a few more
// (from many addresses) and then waits too.
func TestRegistrationRequestsAreThrottledPerAddressAndPerEmail(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "r7")
		e.openRegistration(p, true)
		id := e.identity()
		ctx := context.Background()
		spammer := browser("203.0.113.50", "spam")
		for i := range 5 {
			if err := id.RequestRegistration(ctx, p.ID, "victim"+string(rune('a'+i))+"@patients.example", spammer); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		err := id.RequestRegistration(ctx, p.ID, "victimz@patients.example", spammer)
		if haven.ErrorCode(err) != haven.ETOOMANY || identity.RetryAfter(err) <= 0 {
			t.Fatalf("the sixth request from one address: %v", err)
		}
		// One inbox, from many addresses: 20 (four addresses × five) and no more.
		for i := range 20 {
			c := browser("198.51.100."+string(rune('0'+i/5)), "bot")
			if err := id.RequestRegistration(ctx, p.ID, "inbox@patients.example", c); err != nil {
				t.Fatalf("request %d to one inbox: %v", i, err)
			}
		}
		if err := id.RequestRegistration(ctx, p.ID, "inbox@patients.example", browser("192.0.2.99", "bot")); haven.ErrorCode(err) != haven.ETOOMANY {
			t.Fatalf("the 21st request to one inbox: %v", err)
		}
		// Waiting is all it takes (no permanent lockout).
		e.Clock.Advance(2 * time.Second)
		if err := id.RequestRegistration(ctx, p.ID, "inbox@patients.example", browser("192.0.2.99", "bot")); err != nil {
			t.Fatalf("after the wait: %v", err)
		}
		id.Close()
		if n := len(id.mail.Sent()); n != 5+20+1 {
			t.Fatalf("%d emails sent, want %d", n, 5+20+1)
		}
	})
}

// TestRegistrationLeadsIntoEnrolmentWhenThePracticeRequiresMFA.
func TestRegistrationLeadsIntoEnrolmentWhenThePracticeRequiresMFA(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "r8")
		ps := service.DefaultSettings()
		ps.SelfRegistration, ps.PatientsRequireMFA = true, true
		if err := e.Service.UpdateSettings(e.As(p.Admin), ps); err != nil {
			t.Fatal(err)
		}
		id := e.identity()
		ctx := context.Background()
		if err := id.RequestRegistration(ctx, p.ID, "secure@patients.example", home); err != nil {
			t.Fatal(err)
		}
		_, token := id.registrationLink(1, "secure@patients.example")
		res, err := id.CompleteRegistration(ctx, p.ID, token, newPatient, home)
		if err != nil || res.Stage != identity.StageEnrol || res.Pending == "" || res.Session != nil {
			t.Fatalf("registration under required MFA: %+v, %v", res, err)
		}
		if _, err := id.BeginPendingEnrolment(ctx, res.Pending, home, ""); err != nil {
			t.Fatalf("enrolment after registration: %v", err)
		}
	})
}

// TestRegistrationOfAnAddressThatMeanwhileGotAnAccountIsRefused: the link
// was sent while the address was new; the front desk registered it since.
func TestRegistrationOfAnAddressThatMeanwhileGotAnAccountIsRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "r9")
		e.openRegistration(p, true)
		id := e.identity()
		ctx := context.Background()
		if err := id.RequestRegistration(ctx, p.ID, "twice@patients.example", home); err != nil {
			t.Fatal(err)
		}
		_, token := id.registrationLink(1, "twice@patients.example")
		if _, err := e.Service.RegisterPatient(e.As(p.Staff), service.NewPatient{MRN: "MRN-desk",
			Demographics: service.Demographics{Name: "Desk Entered", DateOfBirth: "1990-04-05"},
			Contact:      service.Contact{Email: "twice@patients.example"}}); err != nil {
			t.Fatal(err)
		}
		before := e.practiceUsers(p.ID)
		if _, err := id.CompleteRegistration(ctx, p.ID, token, newPatient, home); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("registering an address that has an account: %v", err)
		}
		if e.practiceUsers(p.ID) != before {
			t.Fatal("a second account was created")
		}
	})
}

// TestSelfRegisteredPatientIsNotInTheDatabaseInTheClear seeds unique
// markers through self-registration and searches every file under the
// data dir and a PostgreSQL dump for them.
func TestSelfRegisteredPatientIsNotInTheDatabaseInTheClear(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "r10")
		e.openRegistration(p, true)
		id := e.identity()
		ctx := context.Background()
		const email, name = "qx8selfreg@patients.example", "Qx8Selfreg Person"
		if err := id.RequestRegistration(ctx, p.ID, email, home); err != nil {
			t.Fatal(err)
		}
		// A second, unused link keeps a sealed address in the tokens table.
		if err := id.RequestRegistration(ctx, p.ID, "qx8pending@patients.example", home); err != nil {
			t.Fatal(err)
		}
		_, token := id.registrationLink(2, email)
		reg := newPatient
		reg.Name, reg.DateOfBirth = name, "1937-12-29"
		if _, err := id.CompleteRegistration(ctx, p.ID, token, reg, home); err != nil {
			t.Fatal(err)
		}
		id.Close()
		if rows, err := e.DB.SQL().QueryContext(ctx, `SELECT 1 FROM auth_tokens WHERE kind = 'verify' AND used_us IS NULL`); err != nil {
			t.Fatal(err)
		} else {
			n := 0
			for rows.Next() {
				n++
			}
			rows.Close()
			if n != 1 {
				t.Fatalf("%d unused registration tokens, want 1 (the search would prove less)", n)
			}
		}
		markers := []string{"qx8selfreg", "qx8pending", "Qx8Selfreg", "1937-12-29", token}
		e.AssertNotInTheClear(t, "auth_tokens", markers...)
	})
}

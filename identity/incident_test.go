package identity_test

import (
	"context"
	"testing"
	"time"

	"haven"
	"haven/identity"
	"haven/service"
)

// TestIncidentContainmentShutsTheAccountOut: an insider signed in on two
// browsers is contained in one step by the compliance officer, after a
// fresh authentication: both sessions die, the password and authenticator
// no longer sign in, and each step is on record.
func TestIncidentContainmentShutsTheAccountOut(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.Seed("riverside", "ic1")
		id := e.identity()
		s1, secret, _ := id.enrol("desk@riverside.example", home)
		s2, err := id.signIn("desk@riverside.example", secret, browser("203.0.113.9", "device-work"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Service.Chart(e.As(p.Staff), p.ChartA.PatientID); err != nil {
			t.Fatal(err)
		}
		co := e.As(p.Compliance)
		inc, err := e.Service.OpenIncident(co, service.NewIncident{Title: "Front desk browsing"})
		if err != nil {
			t.Fatal(err)
		}
		sc := inc.Scope
		sc.Accounts = []string{p.Staff.UserID, p.Compliance.UserID}
		sc.Until = e.Clock.Now().Add(time.Hour)
		if _, err := e.Service.ScopeIncident(co, inc.ID, sc); err != nil {
			t.Fatal(err)
		}
		// Only the compliance officer, and only freshly authenticated.
		for _, who := range []haven.Actor{p.Admin, p.Staff, p.Clinician} {
			if _, err := id.ContainIncident(e.As(who), inc.ID); haven.ErrorCode(err) != haven.EFORBIDDEN {
				t.Fatalf("%s contains: %v", who.Role, err)
			}
		}
		stale := p.Compliance
		stale.MFA, stale.AuthTime, stale.SessionID = true, e.Clock.Now().Add(-time.Hour), "session-co"
		if _, err := id.ContainIncident(haven.NewContextWithActor(context.Background(), stale), inc.ID); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("an old sign-in contains: %v", err)
		}
		if _, err := id.resume(s1, home); err != nil {
			t.Fatal("refused containment still ended a session")
		}
		done, err := id.ContainIncident(co, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(done) != 2 || !done[0].Disabled || done[0].SessionsEnded != 2 || !done[0].PasswordCleared || !done[0].FactorsCleared {
			t.Fatalf("contained %+v", done)
		}
		if done[1].UserID != p.Compliance.UserID || done[1].Disabled {
			t.Fatalf("the officer contained their own account: %+v", done[1])
		}
		for _, s := range []*identity.NewSession{s1, s2} {
			if _, err := id.resume(s, home); err == nil {
				t.Fatal("a session survived containment")
			}
		}
		if res, err := id.Login(context.Background(), "desk@riverside.example", pw, home); err == nil && res.Stage != "" {
			t.Fatalf("the contained account still signs in: %+v", res)
		}
		u, _ := e.DB.FindUserByID(context.Background(), p.Staff.UserID)
		if !u.Disabled || u.PasswordHash != "" {
			t.Fatalf("account after containment: disabled %v, password set %v", u.Disabled, u.PasswordHash != "")
		}
		if v, err := e.Service.Incident(co, inc.ID); err != nil || v.State != haven.IncidentContained || v.ContainedAt == nil || len(v.Contained) != 2 {
			t.Fatalf("incident after containment: %+v, %v", v, err)
		}
		if evs := e.events(p.ID, identity.ActIncidentContain); len(evs) != 1 || evs[0].ResourceID != p.Staff.UserID || evs[0].ActorID != p.Compliance.UserID {
			t.Fatalf("containment events %+v", evs)
		}
		// Another practice's officer cannot contain it.
		q := e.Seed("hillside", "ic2")
		if _, err := id.ContainIncident(e.As(q.Compliance), inc.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice contains: %v", err)
		}
	})
}

package identity_test

import (
	"testing"
	"time"

	"haven"
	"haven/identity"
	"haven/service"
)

// TestPracticeShortensSessionTimeouts: a practice's own timeouts apply to
// its sessions, but can only shorten the platform's defaults: a longer one
// is refused, saying so, rather than stored and silently ignored.
func TestPracticeShortensSessionTimeouts(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "s1")
		id := identity.New(e.svc.Gate(), identity.Config{DB: e.db})
		defer id.Close()
		st := service.DefaultSettings()
		st.WorkforceIdle = service.Duration(5 * time.Minute)
		st.PatientAbsolute = service.Duration(48 * time.Hour) // longer than the default
		if err := e.svc.UpdateSettings(e.as(p.admin), st); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("a timeout longer than the platform's default was accepted: %v", err)
		}
		st.PatientAbsolute = 0
		if err := e.svc.UpdateSettings(e.as(p.admin), st); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute) // past the identity's policy cache
		wf, err := id.SessionPolicy(e.as(p.admin), p.id, haven.RoleClinician)
		if err != nil || wf.Idle != 5*time.Minute || wf.Absolute != 12*time.Hour {
			t.Fatalf("workforce policy %+v %v", wf, err)
		}
		pt, err := id.SessionPolicy(e.as(p.admin), p.id, haven.RolePatient)
		if err != nil || pt.Absolute != 24*time.Hour || pt.Idle != 30*time.Minute {
			t.Fatalf("patient policy %+v %v", pt, err)
		}
		st.WorkforceIdle = service.Duration(time.Second)
		if err := e.svc.UpdateSettings(e.as(p.admin), st); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("a one-second timeout was accepted: %v", err)
		}
	})
}

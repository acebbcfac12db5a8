package session

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"haven"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC)
)

func TestTokenIsRandomAndOnlyItsHashIsKept(t *testing.T) {
	tok, hash := NewToken()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 || len(tok) != 43 {
		t.Fatalf("token %q: %d bytes, %v; want 256 bits of base64url", tok, len(raw), err)
	}
	if want := sha256.Sum256(raw); !bytes.Equal(hash, want[:]) {
		t.Fatal("stored hash is not SHA-256 of the token")
	}
	if got, err := HashToken(tok); err != nil || !bytes.Equal(got, hash) {
		t.Fatalf("HashToken = %x, %v", got, err)
	}
	if tok2, _ := NewToken(); tok2 == tok {
		t.Fatal("two tokens are equal")
	}
}

func TestMalformedTokensAreRefused(t *testing.T) {
	tok, _ := NewToken()
	for _, bad := range []string{"", "x", tok[:42], tok + "A", tok + "=", strings.Repeat("+", 43), strings.Repeat("/", 43), "ey" + tok[2:] + "\x00"} {
		if _, err := HashToken(bad); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Errorf("HashToken(%q) = %v, want %s", bad, err, haven.EUNAUTHORIZED)
		}
	}
}

func TestLeakedTokenHashIsNotASession(t *testing.T) {
	st := &MemoryStore{}
	_, s := New("u1", "p1", haven.RolePatient, true, "198.51.100.7", "d", t0)
	st.CreateSession(ctx, s)
	// A thief with a database dump presents the stored hash as a cookie.
	forged := base64.RawURLEncoding.EncodeToString(s.TokenHash)
	if _, err := Resume(ctx, st, forged, policyFor, t0); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Fatalf("Resume(stored hash as token) = %v, want %s", err, haven.EUNAUTHORIZED)
	}
}

func policyFor(s Session) Policy { return DefaultPolicy(s.Role) }

func TestTimeouts(t *testing.T) {
	clinician := Session{Role: haven.RoleClinician, MFA: true, CreatedAt: t0, LastSeen: t0, AuthTime: t0}
	patient := Session{Role: haven.RolePatient, CreatedAt: t0, LastSeen: t0, AuthTime: t0}
	active := func(s Session, lastSeen time.Duration) Session { s.LastSeen = t0.Add(lastSeen); return s }
	tests := []struct {
		name string
		s    Session
		at   time.Duration // after t0
		ok   bool
	}{
		{"WorkforceIdle14m59s", clinician, 15*time.Minute - time.Second, true},
		{"WorkforceIdle15m", clinician, 15 * time.Minute, false},
		{"WorkforceActiveJustBeforeAbsolute", active(clinician, 12*time.Hour-time.Minute), 12*time.Hour - time.Second, true},
		{"WorkforceActiveAtAbsolute", active(clinician, 12*time.Hour-time.Minute), 12 * time.Hour, false},
		{"PatientIdle29m", patient, 29 * time.Minute, true},
		{"PatientIdle30m", patient, 30 * time.Minute, false},
		{"PatientActiveAt23h59m", active(patient, 23*time.Hour+50*time.Minute), 23*time.Hour + 59*time.Minute, true},
		{"PatientActiveAt24h", active(patient, 23*time.Hour+50*time.Minute), 24 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.s, DefaultPolicy(tt.s.Role), t0.Add(tt.at))
			if tt.ok && err != nil {
				t.Fatalf("Check = %v, want nil", err)
			}
			if !tt.ok && haven.ErrorCode(err) != haven.EUNAUTHORIZED {
				t.Fatalf("Check = %v, want %s", err, haven.EUNAUTHORIZED)
			}
		})
	}
}

// TestActivityKeepsASessionAliveOnlyUntilItsAbsoluteEnd drives Resume with
// an injected clock: a request every ten minutes keeps a clinician in,
// until twelve hours after sign-in; then a pause of 15 minutes ends it.
func TestActivityKeepsASessionAliveOnlyUntilItsAbsoluteEnd(t *testing.T) {
	st := &MemoryStore{}
	tok, s := New("u1", "p1", haven.RoleClinician, true, "198.51.100.7", "d", t0)
	st.CreateSession(ctx, s)
	now := t0
	for now.Before(t0.Add(12*time.Hour - 10*time.Minute)) {
		now = now.Add(10 * time.Minute)
		if _, err := Resume(ctx, st, tok, policyFor, now); err != nil {
			t.Fatalf("Resume at +%v = %v", now.Sub(t0), err)
		}
	}
	if _, err := Resume(ctx, st, tok, policyFor, t0.Add(12*time.Hour)); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Fatalf("Resume at the absolute end = %v", err)
	}

	tok, s = New("u2", "p1", haven.RoleClinician, true, "198.51.100.7", "d", t0)
	st.CreateSession(ctx, s)
	if _, err := Resume(ctx, st, tok, policyFor, t0.Add(14*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := Resume(ctx, st, tok, policyFor, t0.Add(29*time.Minute)); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Fatalf("Resume after 15 idle minutes = %v", err)
	}
}

func TestRevokedSessionIsRefusedOnTheNextRequest(t *testing.T) {
	st := &MemoryStore{}
	tok, s := New("u1", "p1", haven.RolePatient, false, "198.51.100.7", "d", t0)
	st.CreateSession(ctx, s)
	if _, err := Resume(ctx, st, tok, policyFor, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeSession(ctx, "u1", s.ID, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := Resume(ctx, st, tok, policyFor, t0.Add(2*time.Minute)); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Fatalf("Resume after revoke = %v, want %s", err, haven.EUNAUTHORIZED)
	}
}

func TestPasswordChangeRevokesEverySession(t *testing.T) {
	st := &MemoryStore{}
	var toks []string
	for i := range 3 {
		tok, s := New("u1", "p1", haven.RolePatient, false, "198.51.100.7", "d", t0.Add(time.Duration(i)*time.Second))
		st.CreateSession(ctx, s)
		toks = append(toks, tok)
	}
	otherTok, other := New("u2", "p1", haven.RolePatient, false, "198.51.100.7", "d", t0)
	st.CreateSession(ctx, other)
	if list, _ := st.UserSessions(ctx, "u1"); len(list) != 3 || !list[0].CreatedAt.After(list[2].CreatedAt) {
		t.Fatalf("UserSessions = %d sessions, want 3 newest first", len(list))
	}
	if n, err := st.RevokeUserSessions(ctx, "u1", t0.Add(time.Minute)); n != 3 || err != nil {
		t.Fatalf("RevokeUserSessions = %d, %v", n, err)
	}
	for _, tok := range toks {
		if _, err := Resume(ctx, st, tok, policyFor, t0.Add(time.Minute)); err == nil {
			t.Fatal("a session survived revoke-all")
		}
	}
	if _, err := Resume(ctx, st, otherTok, policyFor, t0.Add(time.Minute)); err != nil {
		t.Fatalf("another user's session was revoked too: %v", err)
	}
}

func TestNobodyRevokesAnotherUsersSessionByID(t *testing.T) {
	st := &MemoryStore{}
	tok, victim := New("victim", "p1", haven.RolePatient, false, "198.51.100.7", "d", t0)
	st.CreateSession(ctx, victim)
	if err := st.RevokeSession(ctx, "attacker", victim.ID, t0); haven.ErrorCode(err) != haven.ENOTFOUND {
		t.Fatalf("RevokeSession(another user's id) = %v, want %s", err, haven.ENOTFOUND)
	}
	if _, err := Resume(ctx, st, tok, policyFor, t0); err != nil {
		t.Fatal("victim's session ended")
	}
}

func TestWorkforceSessionWithoutMFAIsRefused(t *testing.T) {
	s := Session{Role: haven.RoleStaff, CreatedAt: t0, LastSeen: t0, AuthTime: t0, MFA: false}
	if err := Check(s, DefaultPolicy(s.Role), t0); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Fatalf("Check(staff without MFA) = %v", err)
	}
	p := Session{Role: haven.RolePatient, CreatedAt: t0, LastSeen: t0, AuthTime: t0}
	if err := Check(p, DefaultPolicy(p.Role), t0); err != nil {
		t.Fatalf("Check(patient without MFA, default policy) = %v", err)
	}
	strict := PatientPolicy.Within(Policy{RequireMFA: true})
	if err := Check(p, strict, t0); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Fatalf("Check(patient without MFA, practice requires it) = %v", err)
	}
	if err := Check(Session{}, PatientPolicy, t0); err == nil {
		t.Fatal("an empty session record passed")
	}
}

func TestPracticePolicyMayShortenButNeverLengthen(t *testing.T) {
	got := WorkforcePolicy.Within(Policy{Idle: 5 * time.Minute, Absolute: 48 * time.Hour})
	if got.Idle != 5*time.Minute || got.Absolute != 12*time.Hour || !got.RequireMFA {
		t.Fatalf("Within = %+v", got)
	}
	if got.WarnBefore >= got.Idle {
		t.Fatalf("warning %v is not before the idle end %v", got.WarnBefore, got.Idle)
	}
	if relaxed := WorkforcePolicy.Within(Policy{RequireMFA: false}); !relaxed.RequireMFA {
		t.Fatal("a practice turned workforce MFA off")
	}
	for _, bad := range []Policy{{Idle: 30 * time.Second, Absolute: time.Hour}, {Idle: time.Hour, Absolute: time.Minute}, {Idle: 10 * time.Minute, Absolute: time.Hour, WarnBefore: 10 * time.Minute}} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", bad)
		}
	}
	if err := WorkforcePolicy.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestWarningComesBeforeTheEnd(t *testing.T) {
	s := Session{CreatedAt: t0, LastSeen: t0.Add(11*time.Hour + 50*time.Minute)}
	p := WorkforcePolicy
	if got, want := Expires(s, p), t0.Add(12*time.Hour); !got.Equal(want) {
		t.Fatalf("Expires = %v, want the absolute end %v", got, want)
	}
	if got, want := WarnAt(s, p), t0.Add(12*time.Hour-2*time.Minute); !got.Equal(want) {
		t.Fatalf("WarnAt = %v, want %v", got, want)
	}
}

func TestNeedsStepUp(t *testing.T) {
	s := Session{MFA: true, AuthTime: t0}
	tests := []struct {
		name string
		s    Session
		at   time.Time
		want bool
	}{
		{"Fresh", s, t0.Add(4 * time.Minute), false},
		{"AtTheLimit", s, t0.Add(5 * time.Minute), false},
		{"Stale", s, t0.Add(5*time.Minute + time.Second), true},
		{"NoSecondFactor", Session{AuthTime: t0}, t0, true},
		{"NeverAuthenticated", Session{MFA: true}, t0, true},
		{"AuthTimeInTheFuture", s, t0.Add(-time.Minute), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NeedsStepUp(tt.s, tt.at, 5*time.Minute); got != tt.want {
				t.Fatalf("NeedsStepUp = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDeviceChanged(t *testing.T) {
	dev := HashDevice("device-cookie-1", "Mozilla/5.0")
	v4 := Session{ClientAddr: "198.51.100.7", DeviceHash: dev}
	v6 := Session{ClientAddr: "2001:db8:1:2::10", DeviceHash: dev}
	tests := []struct {
		name   string
		s      Session
		addr   string
		device string
		want   bool
	}{
		{"Same", v4, "198.51.100.7", dev, false},
		{"SameWithPort", v4, "198.51.100.7:51234", dev, false},
		{"SameIPv4Network", v4, "198.51.100.200", dev, false},
		{"OtherIPv4Network", v4, "203.0.113.7", dev, true},
		{"IPv4MappedIPv6", v4, "::ffff:198.51.100.9", dev, false},
		{"SameIPv6Slash64", v6, "2001:db8:1:2:ffff::1", dev, false},
		{"OtherIPv6Slash64", v6, "2001:db8:1:3::10", dev, true},
		{"OtherDevice", v4, "198.51.100.7", HashDevice("device-cookie-2", "Mozilla/5.0"), true},
		{"DeviceSignalStripped", v4, "198.51.100.7", "", true},
		{"UnparseableAddress", Session{ClientAddr: "unknown", DeviceHash: dev}, "unknown2", dev, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DeviceChanged(tt.s, tt.addr, tt.device); got != tt.want {
				t.Fatalf("DeviceChanged = %v, want %v", got, tt.want)
			}
		})
	}
	if HashDevice("ab", "c") == HashDevice("a", "bc") {
		t.Fatal("HashDevice is ambiguous across signal boundaries")
	}
}

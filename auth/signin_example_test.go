package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"haven"
	"haven/auth/password"
	"haven/auth/session"
	"haven/auth/throttle"
	"haven/auth/totp"
)

// signIn is the sequence described in the package documentation, wired to
// the in-memory stores, as the service layer will wire it to the database.
type signIn struct {
	hasher   *password.Hasher
	throttle *throttle.Throttle
	steps    *totp.MemoryStepStore
	sessions *session.MemoryStore
	users    map[string]user // by blind index
	now      func() time.Time
}

type user struct {
	id, practice string
	role         haven.Role
	hash, secret string
}

var errCredentials = haven.Errorf(haven.EUNAUTHORIZED, "email, password or code is not right")

func blindIndex(email string) string {
	m := hmac.New(sha256.New, []byte("test blind-index key"))
	m.Write([]byte(email))
	return fmt.Sprintf("%x", m.Sum(nil))
}

func (s *signIn) do(ctx context.Context, email, pw, code, addr string) (string, error) {
	a := throttle.Attempt{Account: blindIndex(email), Addr: addr}
	if _, err := s.throttle.Allow(ctx, a); err != nil {
		return "", err
	}
	u, ok := s.users[a.Account]
	if !ok {
		if err := s.hasher.VerifyDummy(ctx, pw); err != nil {
			return "", err
		}
		return "", errors.Join(s.throttle.Failure(ctx, a), errCredentials)
	}
	match, _, err := s.hasher.Verify(ctx, pw, u.hash)
	if err != nil {
		return "", err
	}
	if !match {
		return "", errors.Join(s.throttle.Failure(ctx, a), errCredentials)
	}
	if err := totp.Use(ctx, s.steps, u.id, u.secret, code, s.now(), s.steps.LastStep(u.id)); err != nil {
		return "", errors.Join(s.throttle.Failure(ctx, a), errCredentials)
	}
	if err := s.throttle.Success(ctx, a); err != nil {
		return "", err
	}
	token, sess := session.New(u.id, u.practice, u.role, true, addr, "", s.now())
	return token, s.sessions.CreateSession(ctx, sess)
}

// newSignIn sets up one clinician; setup cannot fail short of a bug, so
// it panics rather than taking a *testing.T (the Example has none).
func newSignIn() (*signIn, *time.Time) {
	now := time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC)
	s := &signIn{
		hasher:   password.NewHasher(password.HasherConfig{Params: password.Params{Memory: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}),
		steps:    &totp.MemoryStepStore{},
		sessions: &session.MemoryStore{},
		users:    map[string]user{},
		now:      func() time.Time { return now },
	}
	s.throttle = throttle.New(&throttle.MemoryStore{}, throttle.Config{}, s.now)
	pw := "a long and unlisted passphrase"
	if err := password.Check(pw); err != nil {
		panic(err)
	}
	h, err := s.hasher.Hash(context.Background(), pw)
	if err != nil {
		panic(err)
	}
	s.users[blindIndex("dr.lee@example.org")] = user{id: "u1", practice: "p1", role: haven.RoleClinician, hash: h, secret: totp.NewSecret()}
	return s, &now
}

// TestUnknownEmailAndWrongPasswordGetTheSameAnswer: an enumerating
// attacker sees one error, code and message, whether or not the email has
// an account.
func TestUnknownEmailAndWrongPasswordGetTheSameAnswer(t *testing.T) {
	s, _ := newSignIn()
	ctx := context.Background()
	_, unknown := s.do(ctx, "nobody@example.org", "a long and unlisted passphrase", "000000", "203.0.113.1")
	_, wrong := s.do(ctx, "dr.lee@example.org", "not the passphrase at all", "000000", "203.0.113.2")
	if haven.ErrorCode(unknown) != haven.ErrorCode(wrong) || haven.ErrorMessage(unknown) != haven.ErrorMessage(wrong) {
		t.Fatalf("unknown email: %v; wrong password: %v", unknown, wrong)
	}
}

func TestSignInWithPasswordAndCodeOnceOnly(t *testing.T) {
	s, now := newSignIn()
	ctx := context.Background()
	u := s.users[blindIndex("dr.lee@example.org")]
	code, _ := totp.Code(u.secret, *now)
	token, err := s.do(ctx, "dr.lee@example.org", "a long and unlisted passphrase", code, "203.0.113.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := session.Resume(ctx, s.sessions, token, func(x session.Session) session.Policy { return session.DefaultPolicy(x.Role) }, *now); err != nil {
		t.Fatalf("new session does not resume: %v", err)
	}
	// A phisher replays the password and the same code seconds later.
	if _, err := s.do(ctx, "dr.lee@example.org", "a long and unlisted passphrase", code, "192.0.2.9"); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Fatalf("replayed sign-in = %v, want %s", err, haven.EUNAUTHORIZED)
	}
}

// Example shows the order of the calls a sign-in makes.
func Example() {
	s, now := newSignIn()
	ctx := context.Background()
	code, _ := totp.Code(s.users[blindIndex("dr.lee@example.org")].secret, *now)

	_, err := s.do(ctx, "dr.lee@example.org", "a wrong guess here", code, "203.0.113.1")
	fmt.Println(haven.ErrorMessage(err))
	token, err := s.do(ctx, "dr.lee@example.org", "a long and unlisted passphrase", code, "203.0.113.1")
	fmt.Println(len(token), err)
	// Output:
	// email, password or code is not right
	// 43 <nil>
}

package sqlstore_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"haven"
	"haven/auth/recovery"
	"haven/auth/session"
	"haven/auth/throttle"
	"haven/store/sqlstore"
)

var t0 = time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC)

// newUser stores a practice and one user in it and returns the user's id.
func newUser(t *testing.T, db *sqlstore.DB, role haven.Role) string {
	t.Helper()
	ctx := context.Background()
	p := &haven.Practice{ID: haven.NewID(), Name: "Harbour Clinic"}
	if err := db.CreatePractice(ctx, p); err != nil {
		t.Fatal(err)
	}
	u := &haven.User{ID: haven.NewID(), PracticeID: p.ID, Role: role, EmailIndex: []byte(haven.NewID()),
		Email: haven.Sealed{1}, Name: haven.Sealed{2}, PasswordHash: "$argon2id$old"}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// newMember is newUser returning the account, whose PracticeID names its
// new practice.
func newMember(t *testing.T, db *sqlstore.DB, role haven.Role) *haven.User {
	t.Helper()
	u, err := db.FindUserByID(context.Background(), newUser(t, db, role))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// race runs fn on n goroutines released at once and counts the true results.
func race(t *testing.T, n int, fn func() (bool, error)) int {
	t.Helper()
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := fn()
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	return int(wins.Load())
}

func TestSessionRecordsRoundTripAndOnlyTheirOwnerRevokesThem(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		uid := newUser(t, db, haven.RoleClinician)
		other := newUser(t, db, haven.RolePatient)
		tok, s := session.New(uid, "p1", haven.RoleClinician, true, "198.51.100.7", "dev", t0)
		if err := db.CreateSessionRecord(ctx, sqlstore.SessionRecord{Session: s, Factor: "totp", DeviceLabel: "Firefox on Linux"}); err != nil {
			t.Fatal(err)
		}
		hash, _ := session.HashToken(tok)
		got, err := db.SessionRecordByTokenHash(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != s.ID || got.UserID != uid || got.Role != haven.RoleClinician || !got.MFA || got.Factor != "totp" ||
			!got.CreatedAt.Equal(t0) || !got.AuthTime.Equal(t0) || got.DeviceLabel != "Firefox on Linux" || !got.RevokedAt.IsZero() {
			t.Fatalf("round trip: %+v", got)
		}
		if _, err := db.SessionRecordByTokenHash(ctx, bytes.Repeat([]byte{1}, 32)); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("unknown hash: %v", err)
		}

		// LastSeen never moves backwards.
		db.TouchSession(ctx, s.ID, t0.Add(5*time.Minute))
		db.TouchSession(ctx, s.ID, t0.Add(time.Minute))
		if got, _ := db.SessionRecordByTokenHash(ctx, hash); !got.LastSeen.Equal(t0.Add(5 * time.Minute)) {
			t.Fatalf("LastSeen = %v", got.LastSeen)
		}

		// A challenge holds until re-authentication, which moves the session
		// to the new address and device.
		if err := db.ChallengeSession(ctx, s.ID, t0.Add(6*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.SessionRecordByTokenHash(ctx, hash); !got.ChallengedAt.Equal(t0.Add(6 * time.Minute)) {
			t.Fatalf("ChallengedAt = %v", got.ChallengedAt)
		}
		if err := db.Reauthenticate(ctx, s.ID, t0.Add(7*time.Minute), true, "recovery", "203.0.113.9", "dev2"); err != nil {
			t.Fatal(err)
		}
		got, _ = db.SessionRecordByTokenHash(ctx, hash)
		if !got.ChallengedAt.IsZero() || !got.AuthTime.Equal(t0.Add(7*time.Minute)) || got.ClientAddr != "203.0.113.9" || got.DeviceHash != "dev2" || got.Factor != "recovery" {
			t.Fatalf("after reauth: %+v", got)
		}

		// Another user cannot revoke it by id.
		if err := db.RevokeSession(ctx, other, s.ID, t0); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("revoke by another user: %v", err)
		}
		if err := db.RevokeSession(ctx, uid, s.ID, t0.Add(8*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.SessionRecordByTokenHash(ctx, hash); !got.RevokedAt.Equal(t0.Add(8 * time.Minute)) {
			t.Fatalf("RevokedAt = %v", got.RevokedAt)
		}
		if err := db.Reauthenticate(ctx, s.ID, t0.Add(9*time.Minute), true, "totp", "", ""); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("a revoked session was re-authenticated: %v", err)
		}
	})
}

func TestRevokeAllEndsEveryLiveSessionOfOneUserOnly(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		uid, other := newUser(t, db, haven.RolePatient), newUser(t, db, haven.RolePatient)
		for i := range 3 {
			_, s := session.New(uid, "p", haven.RolePatient, false, "198.51.100.7", "d", t0.Add(time.Duration(i)*time.Minute))
			db.CreateSession(ctx, s)
		}
		_, s := session.New(other, "p", haven.RolePatient, false, "198.51.100.7", "d", t0)
		db.CreateSession(ctx, s)
		list, err := db.UserSessions(ctx, uid)
		if err != nil || len(list) != 3 || !list[0].CreatedAt.After(list[2].CreatedAt) {
			t.Fatalf("UserSessions = %d, %v; want 3, newest first", len(list), err)
		}
		if n, err := db.RevokeUserSessions(ctx, uid, t0.Add(time.Hour)); n != 3 || err != nil {
			t.Fatalf("RevokeUserSessions = %d, %v", n, err)
		}
		if list, _ := db.UserSessions(ctx, uid); len(list) != 0 {
			t.Fatalf("%d sessions survived", len(list))
		}
		if list, _ := db.UserSessions(ctx, other); len(list) != 1 {
			t.Fatal("another user's session was revoked")
		}
		if n, err := db.PurgeSessions(ctx, t0.Add(2*time.Hour)); n != 4 || err != nil {
			t.Fatalf("PurgeSessions = %d, %v", n, err)
		}
	})
}

// TestOneTOTPStepIsAcceptedOnceUnderRace is the storage half of "each code
// works once": many requests carrying the same code reach AdvanceStep at
// once, and exactly one may pass.
func TestOneTOTPStepIsAcceptedOnceUnderRace(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		uid := newUser(t, db, haven.RoleClinician)
		if ok, _ := db.AdvanceStep(ctx, uid, 100); ok {
			t.Fatal("a step was accepted for a user with no authenticator")
		}
		if err := db.SetPendingTOTP(ctx, uid, haven.Sealed("sealed-1"), t0); err != nil {
			t.Fatal(err)
		}
		if ok, _ := db.AdvanceStep(ctx, uid, 100); ok {
			t.Fatal("a step was accepted against a secret not yet confirmed")
		}
		if ok, err := db.ConfirmTOTP(ctx, uid, t0.Add(time.Second), 100, t0); ok || err != nil {
			t.Fatalf("confirm of another pending enrolment = %v, %v", ok, err)
		}
		if ok, err := db.ConfirmTOTP(ctx, uid, t0, 100, t0); !ok || err != nil {
			t.Fatalf("confirm = %v, %v", ok, err)
		}
		r, err := db.TOTP(ctx, uid)
		if err != nil || !r.Active() || string(r.Secret) != "sealed-1" || r.LastStep != 100 || r.Pending != nil {
			t.Fatalf("after confirm: %+v %v", r, err)
		}
		if ok, _ := db.AdvanceStep(ctx, uid, 100); ok {
			t.Fatal("the confirming code's step was accepted again")
		}
		if wins := race(t, 16, func() (bool, error) { return db.AdvanceStep(ctx, uid, 101) }); wins != 1 {
			t.Fatalf("%d of 16 racing requests with one code passed, want exactly 1", wins)
		}
		if ok, _ := db.AdvanceStep(ctx, uid, 99); ok {
			t.Fatal("an older step was accepted")
		}

		// Re-enrolment keeps the active secret until the new one is confirmed.
		db.SetPendingTOTP(ctx, uid, haven.Sealed("sealed-2"), t0.Add(time.Hour))
		if r, _ := db.TOTP(ctx, uid); string(r.Secret) != "sealed-1" || string(r.Pending) != "sealed-2" {
			t.Fatalf("during re-enrolment: %+v", r)
		}
		if ok, _ := db.AdvanceStep(ctx, uid, 102); !ok {
			t.Fatal("the active secret stopped working during re-enrolment")
		}
		if err := db.DeleteTOTP(ctx, uid); err != nil {
			t.Fatal(err)
		}
		if r, _ := db.TOTP(ctx, uid); r.Active() || r.Pending != nil {
			t.Fatalf("after delete: %+v", r)
		}
	})
}

func TestRecoveryCodeIsConsumedOnceUnderRace(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		uid := newUser(t, db, haven.RolePatient)
		codes, err := recovery.Issue(ctx, db, uid)
		if err != nil || len(codes) != recovery.Count {
			t.Fatalf("Issue = %d codes, %v", len(codes), err)
		}
		wins := race(t, 8, func() (bool, error) {
			_, err := recovery.Redeem(ctx, db, uid, codes[3])
			return err == nil, nil
		})
		if wins != 1 {
			t.Fatalf("one recovery code worked %d times", wins)
		}
		if left, _ := db.RecoveryCodes(ctx, uid); len(left) != recovery.Count-1 {
			t.Fatalf("%d codes left", len(left))
		}
		if _, err := recovery.Issue(ctx, db, uid); err != nil {
			t.Fatal(err)
		}
		if _, err := recovery.Redeem(ctx, db, uid, codes[4]); err == nil {
			t.Fatal("a code of the replaced set still works")
		}
	})
}

func TestAuthTokenIsSingleUseAndExpires(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		uid := newUser(t, db, haven.RolePatient)
		_, hash := session.NewToken()
		tok := sqlstore.AuthToken{Hash: hash, Kind: sqlstore.TokenReset, UserID: uid, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		if err := db.CreateAuthToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := db.FindAuthToken(ctx, hash, sqlstore.TokenInvite, t0); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("a reset token was found as an invitation: %v", err)
		}
		if got, err := db.FindAuthToken(ctx, hash, sqlstore.TokenReset, t0); err != nil || got.UserID != uid {
			t.Fatalf("FindAuthToken = %+v, %v", got, err)
		}
		wins := race(t, 8, func() (bool, error) {
			_, err := db.UseAuthToken(ctx, hash, sqlstore.TokenReset, t0.Add(time.Minute))
			return err == nil, nil
		})
		if wins != 1 {
			t.Fatalf("a single-use token was used %d times", wins)
		}
		if _, err := db.FindAuthToken(ctx, hash, sqlstore.TokenReset, t0.Add(time.Minute)); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("a used token is still found: %v", err)
		}

		_, h2 := session.NewToken()
		db.CreateAuthToken(ctx, sqlstore.AuthToken{Hash: h2, Kind: sqlstore.TokenLogin, UserID: uid, CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)})
		if n, err := db.CountTokenAttempt(ctx, h2); n != 1 || err != nil {
			t.Fatalf("CountTokenAttempt = %d, %v", n, err)
		}
		if _, err := db.UseAuthToken(ctx, h2, sqlstore.TokenLogin, t0.Add(10*time.Minute)); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("an expired token was used: %v", err)
		}
		_, h3 := session.NewToken()
		db.CreateAuthToken(ctx, sqlstore.AuthToken{Hash: h3, Kind: sqlstore.TokenLogin, UserID: uid, CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)})
		if n, err := db.EndUserTokens(ctx, uid, "", t0); n != 2 || err != nil {
			t.Fatalf("EndUserTokens = %d, %v", n, err)
		}
		if _, err := db.UseAuthToken(ctx, h3, sqlstore.TokenLogin, t0); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("an ended token was used: %v", err)
		}
		if n, err := db.PurgeAuthTokens(ctx, t0.Add(2*time.Hour)); n != 3 || err != nil {
			t.Fatalf("PurgeAuthTokens = %d, %v", n, err)
		}
	})
}

func TestKnownDevicesAndPasswordUpdates(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		uid, other := newUser(t, db, haven.RolePatient), newUser(t, db, haven.RolePatient)
		dev := []byte("device-hash")
		if ok, _ := db.KnownDevice(ctx, dev, uid); ok {
			t.Fatal("unknown device is known")
		}
		db.RememberDevice(ctx, uid, dev, t0)
		db.RememberDevice(ctx, uid, dev, t0)
		if ok, err := db.KnownDevice(ctx, dev, other, uid); !ok || err != nil {
			t.Fatalf("KnownDevice = %v, %v", ok, err)
		}
		if ok, _ := db.KnownDevice(ctx, dev, other); ok {
			t.Fatal("a device is known for a user it never signed in as")
		}
		db.ForgetDevices(ctx, uid)
		if ok, _ := db.KnownDevice(ctx, dev, uid); ok {
			t.Fatal("a forgotten device is known")
		}

		if ok, err := db.ReplacePasswordHash(ctx, uid, "$argon2id$stale", "$argon2id$new"); ok || err != nil {
			t.Fatalf("rehash over a changed password = %v, %v", ok, err)
		}
		if ok, err := db.ReplacePasswordHash(ctx, uid, "$argon2id$old", "$argon2id$new"); !ok || err != nil {
			t.Fatalf("rehash = %v, %v", ok, err)
		}
		if err := db.SetUserDisabled(ctx, uid, true); err != nil {
			t.Fatal(err)
		}
		u, _ := db.FindUserByID(ctx, uid)
		if u.PasswordHash != "$argon2id$new" || !u.Disabled {
			t.Fatalf("user after updates: %+v", u)
		}
		if err := db.SetPasswordHash(ctx, "nobody", "x"); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("SetPasswordHash(unknown) = %v", err)
		}
	})
}

// TestThrottleCountsEveryConcurrentFailureAndItsBackoffEnds drives the
// throttle over the shared store with an injected clock.
func TestThrottleCountsEveryConcurrentFailureAndItsBackoffEnds(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		st := db.ThrottleStore()
		race(t, 12, func() (bool, error) {
			_, err := st.Update(ctx, "addr:198.51.100.7", func(r throttle.Record) throttle.Record {
				return throttle.Record{Failures: r.Failures + 1, Last: t0}
			})
			return true, err
		})
		if r, err := st.Get(ctx, "addr:198.51.100.7"); r.Failures != 12 || !r.Last.Equal(t0) || err != nil {
			t.Fatalf("after 12 concurrent failures: %+v, %v", r, err)
		}

		now := t0
		th := throttle.New(st, throttle.Config{}, func() time.Time { return now })
		a := throttle.Attempt{Account: "acct-1", Addr: "203.0.113.5"}
		for range 5 {
			if _, err := th.Allow(ctx, a); err != nil {
				t.Fatal(err)
			}
			if err := th.Failure(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		wait, err := th.Allow(ctx, a)
		if haven.ErrorCode(err) != haven.ETOOMANY || wait <= 0 {
			t.Fatalf("sixth attempt: wait %v, %v", wait, err)
		}
		now = now.Add(wait)
		if _, err := th.Allow(ctx, a); err != nil {
			t.Fatalf("after waiting out the backoff: %v", err)
		}
		if n, err := db.PurgeThrottle(ctx, t0.Add(time.Second)); n != 4 || err != nil { // address, address, account, pair
			t.Fatalf("PurgeThrottle = %d, %v", n, err)
		}
	})
}

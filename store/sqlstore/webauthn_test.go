package sqlstore_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"haven"
	"haven/store/sqlstore"
)

func newPasskey(userID string, credID string) sqlstore.WebAuthnCredential {
	return sqlstore.WebAuthnCredential{ID: haven.NewID(), CredentialID: []byte(credID), UserID: userID, PracticeID: "p",
		PublicKey: []byte{0xa5, 1, 2}, SignCount: 7, Transports: []string{"internal", "hybrid"}, AAGUID: make([]byte, 16),
		AttestationFormat: "none", UserVerified: true, BackupEligible: true, Discoverable: true, Nickname: haven.Sealed{9, 9},
		CreatedAt: t0}
}

func TestPasskeyRoundTripsAndBelongsToItsUser(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		alice, bob := newUser(t, db, haven.RolePatient), newUser(t, db, haven.RolePatient)
		c := newPasskey(alice, "cred-alice")
		if err := db.CreateWebAuthnCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := db.WebAuthnCredentialByCredentialID(ctx, []byte("cred-alice"))
		if err != nil {
			t.Fatal(err)
		}
		if got.UserID != alice || got.SignCount != 7 || len(got.Transports) != 2 || got.Transports[1] != "hybrid" ||
			!got.BackupEligible || got.BackupState || !got.Discoverable || !bytes.Equal(got.Nickname, c.Nickname) ||
			!got.CreatedAt.Equal(t0) || !got.LastUsedAt.IsZero() {
			t.Fatalf("stored %+v, read back %+v", c, got)
		}
		if has, _ := db.HasWebAuthnCredential(ctx, bob); has {
			t.Fatal("bob has alice's passkey")
		}
		if list, _ := db.WebAuthnCredentials(ctx, bob); len(list) != 0 {
			t.Fatalf("bob's list: %+v", list)
		}
		// Bob cannot delete alice's passkey by its id; the answer is the
		// same as for an id that does not exist.
		if err := db.DeleteWebAuthnCredential(ctx, bob, c.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("bob deleted alice's passkey: %v", err)
		}
		if err := db.DeleteWebAuthnCredential(ctx, alice, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.WebAuthnCredentialByCredentialID(ctx, []byte("cred-alice")); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("deleted passkey still found: %v", err)
		}
	})
}

// TestPasskeyCredentialIDCannotBeRegisteredTwice: an authenticator (or an
// attacker replaying its registration) cannot attach a credential id that
// one account holds to a second account.
func TestPasskeyCredentialIDCannotBeRegisteredTwice(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		alice, mallory := newUser(t, db, haven.RolePatient), newUser(t, db, haven.RolePatient)
		if err := db.CreateWebAuthnCredential(ctx, newPasskey(alice, "shared-id")); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateWebAuthnCredential(ctx, newPasskey(mallory, "shared-id")); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("second registration of one credential id: %v", err)
		}
		if got, _ := db.WebAuthnCredentialByCredentialID(ctx, []byte("shared-id")); got.UserID != alice {
			t.Fatalf("credential now belongs to %s", got.UserID)
		}
	})
}

// TestPasskeyCounterMovesOnceFromEachValue: two assertions checked against
// the same counter value race; only one may be recorded, so a replayed or
// cloned assertion cannot ride along with a genuine one.
func TestPasskeyCounterMovesOnceFromEachValue(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		alice := newUser(t, db, haven.RolePatient)
		c := newPasskey(alice, "counter")
		if err := db.CreateWebAuthnCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
		if wins := race(t, 8, func() (bool, error) {
			return db.UseWebAuthnCredential(ctx, c.ID, 7, 8, true, t0.Add(time.Minute))
		}); wins != 1 {
			t.Fatalf("counter 7→8 recorded %d times", wins)
		}
		got, _ := db.WebAuthnCredentialByCredentialID(ctx, c.CredentialID)
		if got.SignCount != 8 || !got.BackupState || !got.LastUsedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("after use: %+v", got)
		}
		if ok, _ := db.UseWebAuthnCredential(ctx, c.ID, 7, 9, true, t0); ok {
			t.Fatal("an update checked against a stale counter was recorded")
		}
		for _, lower := range []uint32{8, 3, 0} {
			if ok, _ := db.UseWebAuthnCredential(ctx, c.ID, 8, lower, true, t0); ok {
				t.Fatalf("counter moved from 8 to %d", lower)
			}
		}
		// An authenticator without a counter reports 0 every time.
		z := newPasskey(alice, "no-counter")
		z.SignCount = 0
		db.CreateWebAuthnCredential(ctx, z)
		for range 2 {
			if ok, err := db.UseWebAuthnCredential(ctx, z.ID, 0, 0, false, t0); !ok || err != nil {
				t.Fatalf("zero counter use refused: %v", err)
			}
		}
	})
}

func TestWebAuthnChallengeIsAnsweredOnceByItsBinding(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		ch := sqlstore.WebAuthnChallenge{Hash: []byte("h1"), Kind: "login", Binding: "device-a", SessionData: []byte(`{}`),
			CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
		if err := db.CreateWebAuthnChallenge(ctx, ch); err != nil {
			t.Fatal(err)
		}
		// Another device, or the same challenge for another purpose, finds
		// nothing and spends nothing.
		if _, err := db.UseWebAuthnChallenge(ctx, ch.Hash, "login", "device-b", t0); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another binding used the challenge: %v", err)
		}
		if _, err := db.UseWebAuthnChallenge(ctx, ch.Hash, "register", "device-a", t0); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another kind used the challenge: %v", err)
		}
		wins := race(t, 8, func() (bool, error) {
			_, err := db.UseWebAuthnChallenge(ctx, ch.Hash, "login", "device-a", t0.Add(time.Minute))
			if haven.ErrorCode(err) == haven.ENOTFOUND {
				return false, nil
			}
			return err == nil, err
		})
		if wins != 1 {
			t.Fatalf("one challenge answered %d times", wins)
		}

		// An expired challenge is refused, and purged.
		old := ch
		old.Hash = []byte("h2")
		if err := db.CreateWebAuthnChallenge(ctx, old); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UseWebAuthnChallenge(ctx, old.Hash, "login", "device-a", t0.Add(5*time.Minute)); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("expired challenge used: %v", err)
		}
		if n, err := db.PurgeWebAuthnChallenges(ctx, t0.Add(6*time.Minute)); err != nil || n != 1 {
			t.Fatalf("purged %d, %v", n, err)
		}
	})
}

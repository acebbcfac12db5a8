package keyring_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"

	"haven"
	"haven/keyring"
)

func TestSignVerifiesWithThePublicKeyAlone(t *testing.T) {
	k, _, _ := newKeyring(t)
	ctx := context.Background()
	msg := []byte("haven.test.v1 canonical bytes")
	sig, id, err := k.Sign(ctx, "p1", msg)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.VerifierKey(ctx, "p1", id)
	if err != nil {
		t.Fatal(err)
	}
	// A reader outside Haven checks it with nothing but the public key.
	if !ed25519.Verify(pub, msg, sig) {
		t.Fatal("the signature does not verify under the published key")
	}
	if err := k.Verify(ctx, "p1", id, msg, sig); err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), sig...)
	bad[0] ^= 1
	err = k.Verify(ctx, "p1", id, msg, bad)
	wantCode(t, err, haven.EINVALID)
	if !errors.Is(err, keyring.ErrBadSignature) {
		t.Fatalf("%v is not a bad signature", err)
	}
	wantCode(t, k.Verify(ctx, "p1", "no-such-key", msg, sig), haven.ENOTFOUND)
	// Another practice cannot name this practice's key.
	wantCode(t, k.Verify(ctx, "p2", id, msg, sig), haven.ENOTFOUND)
	_, _, err = k.Sign(ctx, "", msg)
	wantCode(t, err, haven.EINVALID)
}

func TestSigningKeyIsWrappedByThePracticeKey(t *testing.T) {
	k, store, root := newKeyring(t)
	ctx := context.Background()
	msg := []byte("haven.test.v1 canonical bytes")
	sig, id, err := k.Sign(ctx, "p1", msg)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := store.ListKeys(ctx, "p1", keyring.KindSigning, "", "", 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("signing rows %+v (%v), want one", rows, err)
	}
	pk, err := store.GetKey(ctx, "p1", keyring.KindPractice, "", 0)
	if err != nil || rows[0].WrappedBy != pk.ID {
		t.Fatalf("signing key wrapped by %q, want practice key (%v)", rows[0].WrappedBy, err)
	}
	pub, _ := k.VerifierKey(ctx, "p1", id)
	if containsBytes(rows[0].Wrapped, pub) {
		t.Fatal("the stored row holds the key in the clear")
	}
	// An altered row cannot be opened by a keyring that has not cached it.
	next := rows[0]
	next.Wrapped = append([]byte(nil), next.Wrapped...)
	next.Wrapped[len(next.Wrapped)-1] ^= 1
	if err := store.UpdateKey(ctx, rows[0], next); err != nil {
		t.Fatal(err)
	}
	other := openKeyring(t, store, root)
	wantCode(t, other.Verify(ctx, "p1", id, msg, sig), haven.EINTERNAL)
}

package keyring_test

import (
	"bytes"
	"context"
	"testing"

	"haven/internal/testkit"
	"haven/keyring"
)

// Under fips140=only every operation of the key hierarchy runs inside Go's
// FIPS 140-3 module: a local root wraps practice and data keys, fields and
// blobs seal and open (GCM with module-made nonces), blind indexes are
// HMAC-SHA-256, practice signing keys are Ed25519, and values sealed in the
// mode still refuse to open anywhere else. Any non-approved call on these
// paths would return an error or panic here.
func TestKeyHierarchyRunsUnderFIPSModeOnly(t *testing.T) {
	if !testkit.InFIPSMode(t) {
		return
	}
	ctx := context.Background()
	k, _, _ := newKeyring(t)

	s := mustSeal(t, k, noteAD, "fips field")
	if pt, err := k.Open(ctx, noteAD, s); err != nil || string(pt) != "fips field" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if _, err := k.Open(ctx, keyring.AD{PracticeID: "p1", PatientID: "alice", Kind: "note", RecordID: "n2", Field: "body"}, s); err == nil {
		t.Fatal("a value moved to another record opened in FIPS mode")
	}

	data := randomBytes(3*64<<10 + 5)
	sealed := sealStream(t, k, blobAD, data, 0)
	if got, err := openStream(k, blobAD, sealed); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob did not round-trip in FIPS mode: %v", err)
	}
	v1, err := keyring.SealStreamV1(k, ctx, blobAD, data, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openStream(k, blobAD, v1); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("a format 1 blob did not open in FIPS mode: %v", err)
	}

	if _, err := k.BlindIndex(ctx, "p1", "email", []byte("alice@example.com")); err != nil {
		t.Fatal(err)
	}
	sig, id, err := k.Sign(ctx, "p1", []byte("checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Verify(ctx, "p1", id, []byte("checkpoint"), sig); err != nil {
		t.Fatal(err)
	}
}

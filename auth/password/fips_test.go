package password

import (
	"context"
	"errors"
	"strings"
	"testing"

	"haven/internal/testkit"
)

// setBeforeFIPSMode is an argon2id hash of "correct horse battery staple",
// as stored before a deployment turned FIPS 140-3 mode on.
const setBeforeFIPSMode = "$argon2id$v=19$m=1024,t=1,p=1$G42DGOHZJTM7YeLwpDij7w$gvotWIPMyEu2f2ZIyCxlsYUBLcZvWOl3Vc9vskEHs2M"

// In FIPS 140-3 mode (fips140=only) passwords hash and verify with
// PBKDF2-HMAC-SHA-256 through Go's module, a password set before the mode
// answers as a wrong one, and argon2id is never run: the count of argon2id
// derivations stays at zero, and a direct call is refused.
func TestFIPSModeHashesWithPBKDF2AndNeverRunsArgon2id(t *testing.T) {
	if !testkit.InFIPSMode(t) {
		return
	}
	ctx := context.Background()
	h := NewHasher(HasherConfig{Params: fast})
	before := argon2Calls.Load()

	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$pbkdf2-sha256$i=1000$") {
		t.Fatalf("FIPS-mode hash %q is not PBKDF2-HMAC-SHA-256", enc)
	}
	if ok, rehash, err := h.Verify(ctx, "correct horse battery staple", enc); !ok || rehash || err != nil {
		t.Fatalf("Verify(right password) = %v, %v, %v", ok, rehash, err)
	}
	if ok, _, err := h.Verify(ctx, "correct horse battery stapler", enc); ok || err != nil {
		t.Fatalf("Verify(wrong password) = %v, %v", ok, err)
	}
	if ok, _, err := h.Verify(ctx, "correct horse battery staple", setBeforeFIPSMode); ok || err != nil {
		t.Fatalf("Verify(argon2id hash, right password) = %v, %v; want a wrong-password answer", ok, err)
	}
	if err := h.VerifyDummy(ctx, "anything"); err != nil {
		t.Fatal(err)
	}
	if n := argon2Calls.Load() - before; n != 0 {
		t.Fatalf("argon2id ran %d times in FIPS mode", n)
	}
	if _, err := hash(fast, "x", make([]byte, 16)); !errors.Is(err, errArgon2InFIPSMode) {
		t.Fatalf("argon2id in FIPS mode: %v, want refused", err)
	}

	// The default cost is OWASP's for PBKDF2-HMAC-SHA-256, and a weaker
	// stored count is redone at the next sign-in.
	if DefaultParams.PBKDF2Iterations < 600_000 {
		t.Fatalf("default PBKDF2 iterations %d", DefaultParams.PBKDF2Iterations)
	}
	if !NeedsRehash(enc) {
		t.Fatal("a 1000-iteration hash does not need rehashing in FIPS mode")
	}
}

// Outside FIPS mode a PBKDF2 hash made in FIPS mode still verifies (so a
// deployment can leave the mode) and is kept, so it can return to it.
func TestPBKDF2HashVerifiesOutsideFIPSMode(t *testing.T) {
	ctx := context.Background()
	h := newFastHasher(t)
	salt := newSalt(16)
	key, err := hashPBKDF2(1000, "correct horse battery staple", salt)
	if err != nil {
		t.Fatal(err)
	}
	enc := encodePBKDF2(1000, salt, key)
	if ok, _, err := h.Verify(ctx, "correct horse battery staple", enc); !ok || err != nil {
		t.Fatalf("Verify(PBKDF2 hash) = %v, %v", ok, err)
	}
	if ok, _, err := h.Verify(ctx, "wrong horse battery staple", enc); ok || err != nil {
		t.Fatalf("Verify(PBKDF2 hash, wrong password) = %v, %v", ok, err)
	}
	for _, bad := range []string{
		strings.Replace(enc, "i=1000", "i=999", 1),
		strings.Replace(enc, "i=1000", "i=01000", 1),
		strings.Replace(enc, "i=1000", "i=99999999", 1),
		strings.Replace(enc, "pbkdf2-sha256", "pbkdf2-sha1", 1),
		enc + "\n",
		enc[:len(enc)-4],
	} {
		if ok, _, err := h.Verify(ctx, "correct horse battery staple", bad); ok || err == nil {
			t.Fatalf("tampered %q: ok=%v err=%v, want an error", bad, ok, err)
		}
	}
}

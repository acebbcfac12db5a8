package password

import (
	"context"
	"crypto/fips140"
	"runtime"
	"strings"
	"testing"

	"haven"
)

// fast are small parameters so tests run in milliseconds; one test below
// uses DefaultParams to prove the real setting round-trips.
var fast = Params{Memory: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32, PBKDF2Iterations: minPBKDF2Iterations}

// argon2Only stops a test of argon2id's encoding in FIPS 140-3 mode, where
// argon2id is never run (TestFIPSModeHashesWithPBKDF2AndNeverRunsArgon2id
// shows that, and TestPBKDF2HashVerifiesOutsideFIPSMode the PBKDF2 parser).
func argon2Only(t *testing.T) {
	t.Helper()
	if fips140.Enabled() {
		t.Skip("argon2id is not run in FIPS 140-3 mode")
	}
}

func newFastHasher(t *testing.T) *Hasher {
	t.Helper()
	return NewHasher(HasherConfig{Params: fast, Concurrency: 2})
}

func TestHashVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(HasherConfig{})
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	want := "$argon2id$v=19$m=19456,t=2,p=1$"
	if fips140.Enabled() {
		want = "$pbkdf2-sha256$i=600000$"
	}
	if !strings.HasPrefix(enc, want) {
		t.Fatalf("encoded hash %q does not start %q: not the default KDF and parameters", enc, want)
	}
	if ok, rehash, err := h.Verify(ctx, "correct horse battery staple", enc); !ok || rehash || err != nil {
		t.Fatalf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	if ok, _, err := h.Verify(ctx, "correct horse battery stapler", enc); ok || err != nil {
		t.Fatalf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
	}
	if NeedsRehash(enc) {
		t.Fatal("NeedsRehash(fresh default hash) = true")
	}
}

func TestSamePasswordHashesDifferently(t *testing.T) {
	h := newFastHasher(t)
	a, _ := h.Hash(context.Background(), "same password here")
	b, _ := h.Hash(context.Background(), "same password here")
	if a == b {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
}

func TestVerifyNormalisesUnicode(t *testing.T) {
	ctx := context.Background()
	h := newFastHasher(t)
	enc, err := h.Hash(ctx, "caf\u00e9 au lait") // precomposed é
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := h.Verify(ctx, "cafe\u0301 au lait", enc); !ok { // e + combining acute
		t.Fatal("the same passphrase typed with a combining accent did not verify")
	}
}

func TestTamperedHashIsRefused(t *testing.T) {
	argon2Only(t)
	ctx := context.Background()
	h := newFastHasher(t)
	const pw = "tamper-evident passphrase"
	enc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(enc, "$")
	flip := func(s string) string { // change one base64 character in the middle
		b := []byte(s)
		i := len(b) / 2
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	join := func(parts ...string) string { return strings.Join(parts, "$") }
	key, _ := b64.DecodeString(f[5])
	truncated := b64.EncodeToString(key[:24]) // a shorter key, well encoded
	// Each of these still parses but must not verify.
	for name, bad := range map[string]string{
		"FlippedHash":   join(f[0], f[1], f[2], f[3], f[4], flip(f[5])),
		"FlippedSalt":   join(f[0], f[1], f[2], f[3], flip(f[4]), f[5]),
		"WeakerMemory":  join(f[0], f[1], f[2], "m=128,t=1,p=1", f[4], f[5]),
		"MoreTime":      join(f[0], f[1], f[2], "m=256,t=2,p=1", f[4], f[5]),
		"TruncatedHash": join(f[0], f[1], f[2], f[3], f[4], truncated),
	} {
		t.Run(name, func(t *testing.T) {
			ok, _, err := h.Verify(ctx, pw, bad)
			if ok {
				t.Fatalf("Verify(%q) matched", bad)
			}
			if err != nil {
				t.Fatalf("Verify(%q) = %v; a parseable hash should just not match", bad, err)
			}
		})
	}
	// These must not parse: an error, never a match, and never huge work.
	for name, bad := range map[string]string{
		"Empty":           "",
		"Argon2i":         strings.Replace(enc, "$argon2id$", "$argon2i$", 1),
		"OldVersion":      strings.Replace(enc, "$v=19$", "$v=16$", 1),
		"FourGiBMemory":   join(f[0], f[1], f[2], "m=4194304,t=1,p=1", f[4], f[5]),
		"ThousandPasses":  join(f[0], f[1], f[2], "m=256,t=1000,p=1", f[4], f[5]),
		"ZeroTime":        join(f[0], f[1], f[2], "m=256,t=0,p=1", f[4], f[5]),
		"LeadingZero":     join(f[0], f[1], f[2], "m=0256,t=1,p=1", f[4], f[5]),
		"ReorderedParams": join(f[0], f[1], f[2], "t=1,m=256,p=1", f[4], f[5]),
		"ShortSalt":       join(f[0], f[1], f[2], f[3], "AAAA", f[5]),
		"PaddedBase64":    join(f[0], f[1], f[2], f[3], f[4], f[5]+"="),
		"ExtraField":      enc + "$x",
		"LineBreakInHash": join(f[0], f[1], f[2], f[3], f[4], f[5][:10]+"\n"+f[5][10:]),
		"BcryptHash":      "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
	} {
		t.Run(name, func(t *testing.T) {
			ok, _, err := h.Verify(ctx, pw, bad)
			if ok || haven.ErrorCode(err) != haven.EINTERNAL {
				t.Fatalf("Verify(%q) = %v, %v; want false, %s", bad, ok, err, haven.EINTERNAL)
			}
			if !NeedsRehash(bad) {
				t.Fatalf("NeedsRehash(%q) = false for an unparseable hash", bad)
			}
		})
	}
}

func TestNeedsRehashForWeakerParameters(t *testing.T) {
	argon2Only(t)
	weak := NewHasher(HasherConfig{Params: fast})
	enc, err := weak.Hash(context.Background(), "upgrade me please")
	if err != nil {
		t.Fatal(err)
	}
	if !NeedsRehash(enc) {
		t.Fatalf("NeedsRehash(%q) = false, want true against %+v", enc, DefaultParams)
	}
	strong := NewHasher(HasherConfig{Params: Params{Memory: 512, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}})
	ok, rehash, err := strong.Verify(context.Background(), "upgrade me please", enc)
	if !ok || !rehash || err != nil {
		t.Fatalf("Verify with stronger Hasher = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	enc2, _ := strong.Hash(context.Background(), "upgrade me please")
	if needsRehash(enc2, strong.params) {
		t.Fatal("a hash at the Hasher's own parameters needs rehash")
	}
}

func TestVerifyDummyNeverMatches(t *testing.T) {
	h := newFastHasher(t)
	for _, pw := range []string{"", "password1", strings.Repeat("x", 2000)} {
		if err := h.VerifyDummy(context.Background(), pw); err != nil {
			t.Fatalf("VerifyDummy = %v", err)
		}
	}
}

// block occupies one of h's slots until release is closed, and returns once
// it holds the slot.
func block(t *testing.T, h *Hasher, memKiB uint32) (release chan struct{}, done chan error) {
	t.Helper()
	release, done, started := make(chan struct{}), make(chan error, 1), make(chan struct{})
	go func() { done <- h.run(context.Background(), memKiB, func() { close(started); <-release }) }()
	<-started
	return release, done
}

// waitAdmitted waits until n callers are inside h (running or queued). It
// synchronises on the pool's own state; it asserts nothing about time.
func waitAdmitted(h *Hasher, n int) {
	for len(h.admitted) < n {
		runtime.Gosched()
	}
}

func TestFloodBeyondQueueIsTurnedAwayAtOnce(t *testing.T) {
	h := NewHasher(HasherConfig{Params: fast, Concurrency: 1, QueueLimit: 1})
	release, done := block(t, h, fast.Memory)

	queued := make(chan error, 1)
	go func() { _, err := h.Hash(context.Background(), "queued caller"); queued <- err }()
	waitAdmitted(h, 2)

	if _, err := h.Hash(context.Background(), "one too many"); haven.ErrorCode(err) != haven.ETOOMANY {
		t.Fatalf("Hash with a full queue = %v, want %s", err, haven.ETOOMANY)
	}
	if err := h.VerifyDummy(context.Background(), "unknown account"); haven.ErrorCode(err) != haven.ETOOMANY {
		t.Fatalf("VerifyDummy with a full queue = %v, want %s", err, haven.ETOOMANY)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-queued; err != nil {
		t.Fatalf("queued Hash = %v, want it to run once a slot frees", err)
	}
}

func TestCancelledWaiterGivesUpAndLeaksNoSlot(t *testing.T) {
	h := NewHasher(HasherConfig{Params: fast, Concurrency: 2})
	release, done := block(t, h, fast.Memory)

	// A stored hash at twice the memory needs both tokens; one is held, so it
	// waits until its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() { waited <- h.run(ctx, 2*fast.Memory, func() { t.Error("ran without enough memory budget") }) }()
	waitAdmitted(h, 2)
	cancel()
	if err := <-waited; haven.ErrorCode(err) != haven.ETOOMANY {
		t.Fatalf("cancelled waiter = %v, want %s", err, haven.ETOOMANY)
	}
	close(release)
	<-done
	if n := len(h.tokens); n != 2 {
		t.Fatalf("%d of 2 tokens back after the flood, want all", n)
	}
	if len(h.admitted) != 0 {
		t.Fatalf("%d callers still counted as admitted", len(h.admitted))
	}
}

func TestHasherSizesItselfByMemoryBudget(t *testing.T) {
	h := NewHasher(HasherConfig{Concurrency: 64, MemoryBudget: 64 << 20})
	if got := h.Concurrency(); got != 3 { // 64 MiB / 19 MiB
		t.Fatalf("Concurrency = %d, want 3", got)
	}
	if got := NewHasher(HasherConfig{MemoryBudget: 1}).Concurrency(); got != 1 {
		t.Fatalf("Concurrency with a tiny budget = %d, want 1", got)
	}
}

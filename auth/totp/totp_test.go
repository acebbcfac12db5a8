package totp

import (
	"context"
	"crypto/fips140"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"haven"
	"haven/internal/testkit"
)

// TestRFC6238Vectors checks HOTP over the RFC 6238 Appendix B SHA-1 test
// vectors (8 digits, secret "12345678901234567890", 30-second steps).
func TestRFC6238Vectors(t *testing.T) {
	if fips140.Enabled() {
		t.Skip("SHA-1 is refused in FIPS 140-3 mode (TestFIPSModeTOTPUsesSHA256 checks the refusal)")
	}
	key := []byte("12345678901234567890")
	for _, v := range []struct {
		unix int64
		code string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		if got := hotp(key, uint64(Step(time.Unix(v.unix, 0))), 8); got != v.code {
			t.Errorf("T=%d: got %s, want %s", v.unix, got, v.code)
		}
	}
	// The same secret through the public, 6-digit API: the low six digits.
	secret := b32.EncodeToString(key)
	if got, _ := Code(secret, time.Unix(59, 0)); got != "287082" {
		t.Errorf("Code(T=59) = %s, want 287082", got)
	}
}

// TestRFC6238SHA256Vectors checks the SHA-256 vectors of RFC 6238
// Appendix B (32-byte secret), the mode FIPS 140-3 deployments use.
func TestRFC6238SHA256Vectors(t *testing.T) {
	key := []byte("12345678901234567890123456789012")
	for _, v := range []struct {
		unix int64
		code string
	}{
		{59, "46119246"},
		{1111111109, "68084774"},
		{1111111111, "67062674"},
		{1234567890, "91819424"},
		{2000000000, "90698825"},
		{20000000000, "77737706"},
	} {
		if got := hotp(key, uint64(Step(time.Unix(v.unix, 0))), 8); got != v.code {
			t.Errorf("T=%d: got %s, want %s", v.unix, got, v.code)
		}
	}
	secret := b32.EncodeToString(key)
	if got, _ := Code(secret, time.Unix(59, 0)); got != "119246" {
		t.Errorf("Code(T=59) = %s, want 119246", got)
	}
	if q := mustQuery(t, URI(secret, "Haven", "alex@example.org")); q.Get("algorithm") != "SHA256" {
		t.Errorf("URI of a 32-byte secret says algorithm %q", q.Get("algorithm"))
	}
}

// In FIPS 140-3 mode new secrets are SHA-256 ones and work end to end, and
// an authenticator enrolled with SHA-1 gets a clear refusal, not a panic.
func TestFIPSModeTOTPUsesSHA256(t *testing.T) {
	if !testkit.InFIPSMode(t) {
		return
	}
	s := NewSecret()
	key, err := b32.DecodeString(s)
	if err != nil || len(key) != SecretBytesSHA256 {
		t.Fatalf("FIPS-mode secret %q: %d bytes, %v", s, len(key), err)
	}
	if q := mustQuery(t, URI(s, "Haven", "alex@example.org")); q.Get("algorithm") != "SHA256" {
		t.Fatalf("FIPS-mode URI algorithm %q", q.Get("algorithm"))
	}
	code, err := Code(s, now)
	if err != nil {
		t.Fatal(err)
	}
	if step, err := Validate(s, code, now, 0); err != nil || step != Step(now) {
		t.Fatalf("Validate = %d, %v", step, err)
	}
	old := b32.EncodeToString([]byte("12345678901234567890"))
	if _, err := Validate(old, "287082", time.Unix(59, 0), 0); haven.ErrorCode(err) != haven.EUNAVAILABLE || !strings.Contains(haven.ErrorMessage(err), "set the app up again") {
		t.Fatalf("SHA-1 secret in FIPS mode: %v", err)
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

var (
	secret = NewSecret()
	now    = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
)

func codeAt(t *testing.T, at time.Time) string {
	t.Helper()
	c, err := Code(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCurrentCodeIsAcceptedAndReturnsItsStep(t *testing.T) {
	step, err := Validate(secret, codeAt(t, now), now, 0)
	if err != nil || step != Step(now) {
		t.Fatalf("Validate = %d, %v; want %d, nil", step, err, Step(now))
	}
	// Spaces as apps display them are fine.
	c := codeAt(t, now)
	if _, err := Validate(secret, c[:3]+" "+c[3:], now, 0); err != nil {
		t.Fatalf("Validate(code with a space) = %v", err)
	}
}

func TestReplayedCodeIsRefused(t *testing.T) {
	c := codeAt(t, now)
	step, err := Validate(secret, c, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The phisher replays the code within the same 30 seconds, and again
	// in the next step while it is still inside the skew window.
	for _, at := range []time.Time{now, now.Add(5 * time.Second), now.Add(Period)} {
		if _, err := Validate(secret, c, at, step); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("replay at %v = %v, want %s", at, err, haven.EUNAUTHORIZED)
		}
	}
}

func TestEarlierCodeIsRefusedAfterALaterOneWasUsed(t *testing.T) {
	next := now.Add(Period)
	step, err := Validate(secret, codeAt(t, next), now, 0) // clock ahead by one step
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(secret, codeAt(t, now), now, step); err == nil {
		t.Fatal("a code for a step before the last used one was accepted")
	}
}

func TestSkewWindow(t *testing.T) {
	tests := []struct {
		name   string
		offset time.Duration
		ok     bool
	}{
		{"TwoStepsAgo", -2 * Period, false},
		{"OneStepAgo", -Period, true},
		{"Now", 0, true},
		{"OneStepAhead", Period, true},
		{"TwoStepsAhead", 2 * Period, false},
		{"AnHourAgo", -time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Validate(secret, codeAt(t, now.Add(tt.offset)), now, 0)
			if tt.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok && haven.ErrorCode(err) != haven.EUNAUTHORIZED {
				t.Fatalf("code = %s, want %s", haven.ErrorCode(err), haven.EUNAUTHORIZED)
			}
		})
	}
}

func TestWrongAndMalformedCodes(t *testing.T) {
	c := codeAt(t, now)
	wrong := []byte(c)
	wrong[5] = '0' + (wrong[5]-'0'+1)%10
	if _, err := Validate(secret, string(wrong), now, 0); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Fatalf("wrong code = %v", err)
	}
	if _, err := Validate(NewSecret(), c, now, 0); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
		t.Fatalf("right code for another user's secret = %v", err)
	}
	for _, bad := range []string{"", "12345", "1234567", "12345a", "١٢٣٤٥٦", c + "\n"} {
		if _, err := Validate(secret, bad, now, 0); haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("Validate(%q) = %v, want %s", bad, err, haven.EINVALID)
		}
	}
	if _, err := Validate("not base32!", c, now, 0); haven.ErrorCode(err) != haven.EINTERNAL {
		t.Fatalf("malformed stored secret = %v, want %s", err, haven.EINTERNAL)
	}
}

func TestRacingRequestsWithOneCodeSucceedOnce(t *testing.T) {
	st := &MemoryStepStore{}
	c := codeAt(t, now)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			// Each request read lastUsedStep (0) before any of them stored.
			if Use(context.Background(), st, "u1", secret, c, now, 0) == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d racing requests succeeded with one code, want 1", ok.Load())
	}
	if st.LastStep("u1") != Step(now) {
		t.Fatalf("stored step %d, want %d", st.LastStep("u1"), Step(now))
	}
}

func TestNewSecret(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	if a == b {
		t.Fatal("two secrets are equal")
	}
	want := SecretBytes
	if fips140.Enabled() {
		want = SecretBytesSHA256
	}
	key, err := b32.DecodeString(a)
	if err != nil || len(key) != want {
		t.Fatalf("secret %q: %d bytes, %v", a, len(key), err)
	}
}

func TestURI(t *testing.T) {
	raw := URI("JBSWY3DPEHPK3PXP", "Haven: Riverside Clinic", "alex@example.org")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Haven Riverside Clinic:alex@example.org" {
		t.Fatalf("URI %q: scheme %q host %q label %q", raw, u.Scheme, u.Host, u.Path)
	}
	if strings.Contains(u.RawQuery, "+") {
		t.Fatalf("query %q encodes spaces as +", u.RawQuery)
	}
	q := u.Query()
	for k, want := range map[string]string{"secret": "JBSWY3DPEHPK3PXP", "issuer": "Haven Riverside Clinic", "algorithm": "SHA1", "digits": "6", "period": "30"} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
}

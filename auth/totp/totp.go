// Package totp owns time-based one-time passwords (RFC 6238): secrets,
// enrolment URIs, and validation that accepts each code once.
//
// It never stores anything and never logs a secret or a code. The secret
// is a credential: callers keep it sealed by the keyring like PHI, and the
// enrolment URI (which holds it, and an account label that may be an email)
// goes only to the enrolling user's screen, never to a log or a URL.
//
// HMAC-SHA1 with 6 digits and a 30-second step is what every authenticator
// app understands; SHA-1's collision weakness does not touch HMAC. In FIPS
// 140-3 mode, where Go's module refuses SHA-1, new secrets are 32 bytes and
// use HMAC-SHA-256 (RFC 6238's SHA256 mode, algorithm=SHA256 in the URI):
// the secret's length says which, so nothing else is stored.
package totp

import (
	"context"
	"crypto/fips140"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strings"
	"time"

	"haven"
)

const (
	// Digits in a code.
	Digits = 6
	// Period is the length of one time step.
	Period = 30 * time.Second
	// Skew is how many steps either side of now are accepted, for clocks
	// that drift and people who type slowly; one step keeps a code alive for
	// at most 90 seconds.
	Skew = 1
	// SecretBytes is the secret's size: 160 bits, as RFC 4226 recommends for
	// HMAC-SHA1.
	SecretBytes = 20
	// SecretBytesSHA256 is the size of a FIPS-mode secret, as long as
	// SHA-256's output (RFC 6238's reference keys); a secret of exactly this
	// size is used with HMAC-SHA-256.
	SecretBytesSHA256 = 32
)

// b32 is the encoding authenticator apps expect: RFC 4648 base32, no padding.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a fresh random secret, base32-encoded (32 characters).
// In FIPS 140-3 mode it is a 32-byte HMAC-SHA-256 secret (52 characters).
func NewSecret() string {
	n := SecretBytes
	if fips140.Enabled() {
		n = SecretBytesSHA256
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("totp: crypto/rand failed: " + err.Error())
	}
	return b32.EncodeToString(b)
}

func decodeSecret(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.ReplaceAll(secret, " ", ""))
	key, err := b32.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(key) < 10 {
		return nil, haven.Wrap(haven.EINTERNAL, errors.New("totp: malformed secret"), "Internal error.")
	}
	if fips140.Enabled() && !isSHA256(key) {
		return nil, errSHA1InFIPSMode
	}
	return key, nil
}

// errSHA1InFIPSMode answers a code for an authenticator enrolled before FIPS
// 140-3 mode, with SHA-1. It is only reached after the password matched, so
// saying why reveals nothing to a stranger.
var errSHA1InFIPSMode = haven.Errorf(haven.EUNAVAILABLE, "this authenticator app was set up with SHA-1, which FIPS mode does not use; sign in with a passkey or a recovery code and set the app up again")

func isSHA256(key []byte) bool { return len(key) == SecretBytesSHA256 }

// hotp is RFC 4226's HOTP: HMAC (SHA-1, or SHA-256 for a 32-byte secret)
// over the big-endian counter, dynamic truncation, and the low digits in
// decimal.
func hotp(key []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	h := sha1.New
	if isSHA256(key) {
		h = sha256.New
	}
	m := hmac.New(func() hash.Hash { return h() }, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}

// Step returns the time step that t falls in.
func Step(t time.Time) int64 {
	return t.Unix() / int64(Period/time.Second)
}

// Code returns the code for secret at time t; for tests and for showing a
// freshly enrolled user that their app agrees.
func Code(secret string, t time.Time) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	return hotp(key, uint64(Step(t)), Digits), nil
}

// errRejected is the one answer for a wrong, stale or replayed code, so a
// phisher holding a code cannot learn whether it was ever right.
var errRejected = haven.Errorf(haven.EUNAUTHORIZED, "that code is not valid; wait for a new code and try again")

// Validate checks code against secret at now, accepting the steps from
// Skew before to Skew after now, but only steps after lastUsedStep. It
// returns the step that matched; the caller must store it as the new
// lastUsedStep (atomically, see StepStore) so that the code, and every
// code of an earlier step, is accepted at most once: a code phished and
// replayed seconds later fails. Start with lastUsedStep 0 for a new secret.
//
// Every candidate step is computed and compared in constant time, so the
// time taken does not reveal which step, if any, was close.
func Validate(secret, code string, now time.Time, lastUsedStep int64) (int64, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return 0, err
	}
	code = strings.ReplaceAll(code, " ", "") // apps show "123 456"
	if len(code) != Digits || strings.Trim(code, "0123456789") != "" {
		return 0, haven.Errorf(haven.EINVALID, "enter the %d-digit code from your authenticator app", Digits)
	}
	cur := Step(now)
	matched := int64(-1)
	for s := cur - Skew; s <= cur+Skew; s++ {
		if s < 0 {
			continue
		}
		ok := subtle.ConstantTimeCompare([]byte(hotp(key, uint64(s), Digits)), []byte(code)) == 1
		if ok && s > lastUsedStep && s > matched {
			matched = s
		}
	}
	if matched < 0 {
		return 0, errRejected
	}
	return matched, nil
}

// StepStore keeps each user's last accepted TOTP step. AdvanceStep must set
// it to step only if step is greater than the stored value, and report
// whether it did, in one atomic operation (UPDATE … WHERE last_step < ?):
// two requests racing with the same code must not both succeed.
type StepStore interface {
	AdvanceStep(ctx context.Context, userID string, step int64) (bool, error)
}

// Use validates code for userID and records its step in st, so the code
// works once even when two requests race with it.
func Use(ctx context.Context, st StepStore, userID, secret, code string, now time.Time, lastUsedStep int64) error {
	step, err := Validate(secret, code, now, lastUsedStep)
	if err != nil {
		return err
	}
	ok, err := st.AdvanceStep(ctx, userID, step)
	if err != nil {
		return err
	}
	if !ok {
		return errRejected
	}
	return nil
}

// URI returns the otpauth:// URI that enrols secret in an authenticator
// app (the key-URI format every app reads; shown as a QR code). issuer is
// the practice or service name; account identifies the user to them, and
// appears in their app, so prefer something they recognise.
func URI(secret, issuer, account string) string {
	issuer = strings.ReplaceAll(issuer, ":", "")
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	alg := "SHA1"
	if key, err := decodeSecret(secret); err == nil && isSHA256(key) {
		alg = "SHA256"
	}
	v.Set("algorithm", alg)
	v.Set("digits", fmt.Sprint(Digits))
	v.Set("period", fmt.Sprint(int(Period/time.Second)))
	u := url.URL{
		Scheme: "otpauth",
		Host:   "totp",
		Path:   "/" + issuer + ":" + account,
		// Spaces as %20, not "+": some apps show a "+" in the issuer literally.
		RawQuery: strings.ReplaceAll(v.Encode(), "+", "%20"),
	}
	return u.String()
}

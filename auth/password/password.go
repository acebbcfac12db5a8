// Package password owns how Haven accepts, hashes and verifies passwords:
// the length rule, the list of breached and common passwords, argon2id in
// the PHC string format, and a bounded pool that does the hashing.
//
// It must never log, return or store a password or any part of one, and it
// never talks to a database or the network: callers keep the encoded hash
// (haven.User.PasswordHash) wherever they like.
//
// The rules follow NIST SP 800-63B and OWASP: at least eight characters, a
// generous maximum, no composition rules (they push people to "Password1!"),
// and a refusal of passwords that attackers try first.
package password

import (
	"strings"
	"unicode/utf8"

	"haven"

	"golang.org/x/text/unicode/norm"
)

const (
	// MinLength is the fewest characters (Unicode code points, after NFC
	// normalisation) a new password may have.
	MinLength = 8
	// MaxLength is the most characters a password may have: long enough for
	// any passphrase a person types or a password manager generates.
	MaxLength = 256
	// MaxBytes bounds the encoded size, so the work spent normalising and
	// hashing attacker-supplied input stays small whatever the characters.
	MaxBytes = 1024
)

// normalize returns the NFC form of pw: the same passphrase typed on two
// keyboards (a precomposed "é" or "e" plus a combining accent) must hash
// alike. It refuses input that is not UTF-8 or is too large to bother with.
func normalize(pw string) (string, bool) {
	if len(pw) > MaxBytes || !utf8.ValidString(pw) {
		return "", false
	}
	return norm.NFC.String(pw), true
}

// Check reports whether pw may be set as a new password: MinLength to
// MaxLength characters and not in the list of breached or common passwords.
// Errors are haven.EINVALID with a message that never repeats the password.
// Check does not apply to sign-in: Verify accepts whatever was once set.
func Check(pw string) error {
	n, ok := normalize(pw)
	if !ok {
		return haven.Errorf(haven.EINVALID, "password must be valid text of at most %d bytes", MaxBytes)
	}
	switch c := utf8.RuneCountInString(n); {
	case c < MinLength:
		return haven.Errorf(haven.EINVALID, "password must be at least %d characters", MinLength)
	case c > MaxLength:
		return haven.Errorf(haven.EINVALID, "password must be at most %d characters", MaxLength)
	}
	if breached(strings.ToLower(n)) {
		return haven.Errorf(haven.EINVALID, "this password appears in lists of breached or common passwords; choose another")
	}
	return nil
}

// Breached reports whether pw, NFC-normalised and lower-cased, is in the
// embedded list of breached and common passwords. Case is ignored because
// attackers try "Password" and "PASSWORD" as soon as "password".
func Breached(pw string) bool {
	n, ok := normalize(pw)
	return ok && breached(strings.ToLower(n))
}

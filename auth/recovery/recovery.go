// Package recovery owns MFA recovery codes: the ten single-use codes a user
// writes down at enrolment to sign in when their authenticator is lost.
//
// It never stores or logs a code in the clear: codes are shown once, at
// Issue, and only their hashes are kept. Using a recovery code is a
// sign-in with a second factor and must be audited like one; issuing a new
// set replaces every old code.
package recovery

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"haven"
)

const (
	// Count is how many codes a set holds.
	Count = 10
	// Length is the characters in a code: 12 symbols of 5 bits, 60 bits.
	Length = 12
	group  = 4 // shown as XXXX-XXXX-XXXX
)

// alphabet is Crockford's base32: digits and upper-case letters without I,
// L, O and U, so a code copied by hand from paper survives (I, L and O are
// read back as 1, 1 and 0).
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Generate returns Count fresh codes formatted for display, and their
// hashes for userID, in the same order.
//
// Why SHA-256 and not argon2id: a code has 60 bits from crypto/rand, so
// guessing one from a stolen hash takes about 2^59 SHA-256 computations,
// years of a GPU farm, and a slow hash would add little to that while
// making the ten constant-time comparisons per attempt costly. Why 12
// characters and not 10: 50 bits is within reach of an offline search for
// a determined attacker; 60 bits is not. Each hash also binds the user id,
// so one search cannot target every user's codes at once and a hash copied
// to another user's row does not work there.
func Generate(userID string) (codes []string, hashes [][]byte) {
	codes = make([]string, Count)
	hashes = make([][]byte, Count)
	for i := range Count {
		var b [Length]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic("recovery: crypto/rand failed: " + err.Error())
		}
		var c strings.Builder
		for j, x := range b {
			if j > 0 && j%group == 0 {
				c.WriteByte('-')
			}
			c.WriteByte(alphabet[x&31]) // 256 is a multiple of 32: no bias
		}
		codes[i] = c.String()
		hashes[i], _ = Hash(userID, codes[i])
	}
	return codes, hashes
}

// canonical returns code upper-cased, without separators, with the
// look-alike letters read as Crockford reads them; false if it cannot be a
// code.
func canonical(code string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToUpper(code) {
		switch {
		case r == '-' || r == ' ':
			continue
		case r == 'O':
			r = '0'
		case r == 'I' || r == 'L':
			r = '1'
		}
		if r > 127 || strings.IndexByte(alphabet, byte(r)) < 0 {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != Length {
		return "", false
	}
	return b.String(), true
}

// Hash returns the stored form of code for userID, and false if code is
// malformed.
func Hash(userID, code string) ([]byte, bool) {
	c, ok := canonical(code)
	if !ok {
		return nil, false
	}
	h := sha256.New()
	h.Write([]byte("haven recovery code v1\x00"))
	h.Write([]byte(userID))
	h.Write([]byte{0})
	h.Write([]byte(c))
	return h.Sum(nil), true
}

// Match reports which of hashes code matches for userID. It compares
// against every hash without stopping early, in constant time, so timing
// reveals neither whether nor where a code matched.
func Match(hashes [][]byte, userID, code string) (int, bool) {
	h, ok := Hash(userID, code)
	if !ok {
		h = make([]byte, sha256.Size) // compare anyway; matches nothing real
	}
	found := -1
	for i, s := range hashes {
		eq := subtle.ConstantTimeCompare(s, h)
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	return found, ok && found >= 0
}

// Store keeps the hashes of each user's unused codes.
type Store interface {
	// RecoveryCodes returns the hashes of userID's unused codes.
	RecoveryCodes(ctx context.Context, userID string) ([][]byte, error)
	// ConsumeRecoveryCode deletes the hash from userID's codes and reports
	// whether it was there, atomically (DELETE … and check rows affected),
	// so two requests racing with one code cannot both succeed.
	ConsumeRecoveryCode(ctx context.Context, userID string, hash []byte) (bool, error)
	// ReplaceRecoveryCodes replaces all of userID's codes with hashes.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error
}

// Issue makes a new set of codes for userID, replacing any old set, and
// returns the codes to show the user once.
func Issue(ctx context.Context, st Store, userID string) ([]string, error) {
	codes, hashes := Generate(userID)
	if err := st.ReplaceRecoveryCodes(ctx, userID, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}

var errRejected = haven.Errorf(haven.EUNAUTHORIZED, "that recovery code is not valid")

// Redeem uses code as userID's second factor: it succeeds once per code,
// consuming it, and reports how many codes remain so the caller can urge
// the user to issue new ones when few are left.
func Redeem(ctx context.Context, st Store, userID, code string) (remaining int, err error) {
	hashes, err := st.RecoveryCodes(ctx, userID)
	if err != nil {
		return 0, err
	}
	i, ok := Match(hashes, userID, code)
	if !ok {
		return 0, errRejected
	}
	consumed, err := st.ConsumeRecoveryCode(ctx, userID, hashes[i])
	if err != nil {
		return 0, err
	}
	if !consumed {
		return 0, errRejected // another request used it first
	}
	return len(hashes) - 1, nil
}

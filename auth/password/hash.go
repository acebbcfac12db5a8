package password

import (
	"crypto/fips140"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters. They are written into every
// encoded hash, so raising them later only changes new hashes; NeedsRehash
// tells the caller to re-hash an old one at the next successful sign-in.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8  // lanes; 1 keeps each hash on one core
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes

	// PBKDF2Iterations is the cost of PBKDF2-HMAC-SHA-256, the KDF new
	// hashes use in FIPS 140-3 mode instead of argon2id (which no FIPS
	// module offers). Memory, Time and Threads do not apply to it.
	PBKDF2Iterations uint32
}

// DefaultParams is the first of OWASP's equivalent argon2id configurations:
// 19 MiB of memory, two passes, one lane. OWASP rates it the same against
// offline cracking as 46 MiB with one pass; Haven takes the smaller memory
// because the Hasher admits hashes by memory budget, so 19 MiB lets more
// sign-ins proceed at once on a small clinic's machine while a login flood
// still cannot exhaust memory, and two passes blunt the time-memory
// trade-off attacks that single-pass Argon2 is weakest against.
//
// In FIPS 140-3 mode new hashes are PBKDF2-HMAC-SHA-256 at OWASP's 600,000
// iterations: FIPS-approved (SP 800-132) but not memory-hard, so a GPU
// cracks it far more cheaply than argon2id; that is the price of the mode,
// paid only by deployments that need it.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32, PBKDF2Iterations: 600_000}

// Bounds on parameters read back from a stored hash. A stored hash is
// trusted no further than its parser: a tampered row must not make one
// sign-in allocate gigabytes or spin for minutes.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 64
	maxThreads = 16
	minSalt    = 8
	maxSalt    = 64
	minKey     = 16
	maxKey     = 64
	// SP 800-132's floor, and a ceiling so a tampered row cannot make one
	// sign-in spin for minutes.
	minPBKDF2Iterations = 1000
	maxPBKDF2Iterations = 10_000_000
)

// b64 is the PHC string format's base64: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// encode returns the PHC string $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses a PHC argon2id string. It returns an error for anything it
// does not fully understand rather than guessing.
func decode(encoded string) (p Params, salt, key []byte, err error) {
	bad := func(what string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("password: malformed argon2id hash: %s", what)
	}
	if strings.ContainsAny(encoded, "\r\n") {
		return bad("line break") // base64 decoding would skip it: one spelling per hash
	}
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return bad("not $argon2id$v=…$m=…,t=…,p=…$salt$hash")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version")
	}
	kv := strings.Split(f[3], ",")
	if len(kv) != 3 {
		return bad("parameters")
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		s, ok := strings.CutPrefix(kv[i], name)
		if !ok || s == "" || (len(s) > 1 && s[0] == '0') {
			return bad("parameters")
		}
		if vals[i], err = strconv.ParseUint(s, 10, 32); err != nil {
			return bad("parameters")
		}
	}
	if vals[0] < 8*vals[2] || vals[0] > maxMemory || vals[1] < 1 || vals[1] > maxTime || vals[2] < 1 || vals[2] > maxThreads {
		return bad("parameters out of range")
	}
	if salt, err = b64.Strict().DecodeString(f[4]); err != nil || len(salt) < minSalt || len(salt) > maxSalt {
		return bad("salt")
	}
	if key, err = b64.Strict().DecodeString(f[5]); err != nil || len(key) < minKey || len(key) > maxKey {
		return bad("hash")
	}
	p = Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2]), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	return p, salt, key, nil
}

// errArgon2InFIPSMode is what argon2id answers in FIPS 140-3 mode. The
// Hasher never asks it there; this is the backstop that makes a path which
// did fail loudly (under make test-fips) instead of quietly using a KDF
// outside the module: x/crypto's argon2 does not consult fips140 itself.
var errArgon2InFIPSMode = errors.New("password: argon2id is not FIPS 140-3 approved and is not run in FIPS mode")

// argon2Calls counts argon2id derivations, so a test can show FIPS mode
// reached none.
var argon2Calls atomic.Int64

// hash computes argon2id over the normalised password. It is the only
// place the CPU- and memory-hard work happens; the Hasher decides when.
func hash(p Params, normalized string, salt []byte) ([]byte, error) {
	if fips140.Enabled() {
		return nil, errArgon2InFIPSMode
	}
	argon2Calls.Add(1)
	return argon2.IDKey([]byte(normalized), salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
}

// pbkdf2Prefix starts a FIPS-mode hash: $pbkdf2-sha256$i=…$salt$hash, in
// the PHC string format like the argon2id ones, so either kind is
// recognised by its first field.
const (
	pbkdf2Prefix = "$pbkdf2-sha256$"
	pbkdf2KeyLen = 32
)

func encodePBKDF2(iter uint32, salt, key []byte) string {
	return fmt.Sprintf("%si=%d$%s$%s", pbkdf2Prefix, iter, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decodePBKDF2 parses a PBKDF2 hash as strictly as decode does argon2id.
func decodePBKDF2(encoded string) (iter uint32, salt, key []byte, err error) {
	bad := func(what string) (uint32, []byte, []byte, error) {
		return 0, nil, nil, fmt.Errorf("password: malformed pbkdf2-sha256 hash: %s", what)
	}
	if strings.ContainsAny(encoded, "\r\n") {
		return bad("line break")
	}
	f := strings.Split(encoded, "$")
	if len(f) != 5 || f[0] != "" || f[1] != "pbkdf2-sha256" {
		return bad("not $pbkdf2-sha256$i=…$salt$hash")
	}
	is, ok := strings.CutPrefix(f[2], "i=")
	if !ok || is == "" || is[0] == '0' {
		return bad("iterations")
	}
	n, err := strconv.ParseUint(is, 10, 32)
	if err != nil || n < minPBKDF2Iterations || n > maxPBKDF2Iterations {
		return bad("iterations out of range")
	}
	// FIPS mode refuses salts under 128 bits and keys under 112.
	if salt, err = b64.Strict().DecodeString(f[3]); err != nil || len(salt) < 16 || len(salt) > maxSalt {
		return bad("salt")
	}
	// One key length: PBKDF2's shorter outputs are prefixes of its longer
	// ones, so a cut hash must not verify as a weaker one.
	if key, err = b64.Strict().DecodeString(f[4]); err != nil || len(key) != pbkdf2KeyLen {
		return bad("hash")
	}
	return uint32(n), salt, key, nil
}

// hashPBKDF2 derives the FIPS-mode hash through Go's FIPS 140-3 module.
func hashPBKDF2(iter uint32, normalized string, salt []byte) ([]byte, error) {
	return pbkdf2.Key(sha256.New, normalized, salt, int(iter), pbkdf2KeyLen)
}

func newSalt(n uint32) []byte {
	salt := make([]byte, n)
	if _, err := rand.Read(salt); err != nil {
		panic("password: crypto/rand failed: " + err.Error())
	}
	return salt
}

// equal compares two derived keys in constant time, so the time a wrong
// guess takes says nothing about how many leading bytes it got right.
func equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// NeedsRehash reports whether encoded was made with weaker parameters than
// DefaultParams (or cannot be parsed), so the caller should hash the
// password again, with DefaultParams, right after it verifies.
func NeedsRehash(encoded string) bool { return needsRehash(encoded, DefaultParams) }

func needsRehash(encoded string, want Params) bool {
	if strings.HasPrefix(encoded, pbkdf2Prefix) {
		// Kept outside FIPS mode too: it is still a sound hash, and turning
		// FIPS mode back on must not strand the accounts that set it.
		iter, salt, _, err := decodePBKDF2(encoded)
		return err != nil || (fips140.Enabled() && (iter < want.PBKDF2Iterations || uint32(len(salt)) < want.SaltLen))
	}
	p, _, _, err := decode(encoded)
	if err != nil {
		return true
	}
	// Fewer passes at more memory can be as strong, but the rule a reader
	// can check at a glance is: anything below today's setting is redone.
	return p.Memory < want.Memory || p.Time < want.Time || p.SaltLen < want.SaltLen || p.KeyLen < want.KeyLen
}

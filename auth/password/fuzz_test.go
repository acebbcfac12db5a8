package password

import (
	"strings"
	"testing"

	"haven"
)

// FuzzDecode feeds arbitrary stored-hash strings to the parser: it must
// never panic, never accept parameters outside its bounds, and anything it
// accepts must re-encode to exactly the same string (one spelling per hash,
// so a tampered variant cannot parse as the original).
func FuzzDecode(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=4194304,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaA")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := decode(s)
		if err != nil {
			return
		}
		if p.Memory > maxMemory || p.Time > maxTime || p.Threads > maxThreads || len(salt) < minSalt || len(key) < minKey {
			t.Fatalf("accepted out-of-bounds %+v", p)
		}
		if again := encode(p, salt, key); again != s {
			t.Fatalf("%q re-encodes as %q", s, again)
		}
	})
}

// FuzzCheck: Check never panics and answers only with one of its fixed
// messages, so no part of a password can reach a page or a log through it.
func FuzzCheck(f *testing.F) {
	f.Add("password1")
	f.Add("e\u0301e\u0301e\u0301e\u0301")
	allowed := map[string]bool{}
	for _, pw := range []string{"\xff", "", strings.Repeat("x", MaxLength+1), "password1"} {
		allowed[haven.ErrorMessage(Check(pw))] = true
	}
	f.Fuzz(func(t *testing.T, pw string) {
		if err := Check(pw); err != nil && !allowed[haven.ErrorMessage(err)] {
			t.Fatalf("unexpected message %q", haven.ErrorMessage(err))
		}
	})
}

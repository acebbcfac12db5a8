package identity

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
)

// FuzzPasskeyAnswer feeds arbitrary browser answers to what Haven does
// with one before any key is looked up: the throttle key derived from it,
// and the parse whose challenge selects the stored ceremony. Neither may
// panic, and the throttle key is always short and fixed in form, so an
// attacker cannot grow the throttle table's keys with huge answers.
func FuzzPasskeyAnswer(f *testing.F) {
	f.Add(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":"","userHandle":""}}`)
	f.Add(`{"rawId":` + strings.Repeat("[", 100) + `}`)
	f.Add(`{"rawId":"` + strings.Repeat("A", 5000) + `"}`)
	f.Add("")
	f.Fuzz(func(t *testing.T, proof string) {
		k := passkeyAccountKey(proof)
		if !strings.HasPrefix(k, "passkey:") || len(k) != len("passkey:")+32 {
			t.Fatalf("throttle key %q", k)
		}
		if p, err := protocol.ParseCredentialRequestResponseBytes([]byte(proof)); err == nil {
			_ = challengeHash(p.Response.CollectedClientData.Challenge)
		}
		if _, err := protocol.ParseCredentialCreationResponseBytes([]byte(proof)); err == nil && len(proof) == 0 {
			t.Fatal("an empty registration answer parsed")
		}
	})
}

// FuzzPasskeyNickname: whatever a user types as a passkey's name, what is
// kept is valid UTF-8, at most maxNickname characters, with no control
// characters (no line breaks or escapes reach a page or a log).
func FuzzPasskeyNickname(f *testing.F) {
	for _, s := range []string{"Work laptop", "  padded  ", "a\nb", "\x1b[31mred", strings.Repeat("é", 65), "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := cleanNickname(in)
		if err != nil {
			return
		}
		if !utf8.ValidString(out) || utf8.RuneCountInString(out) > maxNickname || out != strings.TrimSpace(out) {
			t.Fatalf("kept %q from %q", out, in)
		}
		for _, r := range out {
			if unicode.IsControl(r) {
				t.Fatalf("kept control character %U from %q", r, in)
			}
		}
	})
}

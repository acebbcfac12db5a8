package session

import (
	"encoding/base64"
	"testing"
)

// FuzzHashToken: whatever a client sends as a cookie, HashToken never
// panics, and accepts only the one canonical spelling of a 256-bit token.
func FuzzHashToken(f *testing.F) {
	tok, _ := NewToken()
	f.Add(tok)
	f.Add(tok[:42] + "=")
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := HashToken(s); err != nil {
			return
		}
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) != TokenBytes || base64.RawURLEncoding.EncodeToString(b) != s {
			t.Fatalf("accepted non-canonical token %q", s)
		}
	})
}

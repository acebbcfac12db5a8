package token_test

import (
	"testing"
	"time"

	"haven"
	"haven/video/token"
)

// FuzzVerify feeds the token parser arbitrary text. It must never panic,
// and anything it accepts must be a token Mint made under our key, for
// this visit and participant, still unexpired.
func FuzzVerify(f *testing.F) {
	f.Add(mint(f, patientClaims()))
	f.Add(mint(f, token.Claims{VisitID: visit, ParticipantID: doc, Role: token.Clinician}))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := token.Verify(key, tok, visit, pat, t0)
		if err != nil {
			if code := haven.ErrorCode(err); code != haven.EUNAUTHORIZED && code != haven.EFORBIDDEN {
				t.Fatalf("refusal with code %q: %v", code, err)
			}
			if token.Reason(err) == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		if c.VisitID != visit || c.ParticipantID != pat || !c.Role.Valid() || !t0.Before(c.Expiry) {
			t.Fatalf("accepted %q as %+v", tok, c)
		}
	})
}

// FuzzMintVerifyRoundTrip mints from arbitrary claims; whatever Mint
// accepts must verify to the same claims.
func FuzzMintVerifyRoundTrip(f *testing.F) {
	f.Add("v1", "p1", "patient", int64(60))
	f.Add("", "p1", "guest", int64(0))
	f.Fuzz(func(t *testing.T, v, p, role string, ttl int64) {
		c := token.Claims{VisitID: v, ParticipantID: p, Role: token.Role(role), Expiry: t0.Add(time.Duration(ttl) * time.Second)}
		tok, err := token.Mint(key, c, t0)
		if err != nil {
			return
		}
		got, err := token.Verify(key, tok, v, p, t0)
		if err != nil {
			t.Fatalf("minted token refused: %v", err)
		}
		if got.VisitID != v || got.ParticipantID != p || got.Role != c.Role || got.Expiry.Unix() != c.Expiry.Unix() {
			t.Fatalf("round trip %+v -> %+v", c, got)
		}
	})
}

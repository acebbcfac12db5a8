package token_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"haven"
	"haven/video/token"
)

var (
	key   = bytes.Repeat([]byte{7}, token.KeySize)
	t0    = time.Date(2030, 3, 4, 10, 0, 0, 0, time.UTC)
	visit = "visit-aaaa"
	pat   = "patient-1"
	doc   = "clinician-1"
)

func mint(t testing.TB, c token.Claims) string {
	t.Helper()
	tok, err := token.Mint(key, c, t0)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return tok
}

func patientClaims() token.Claims {
	return token.Claims{VisitID: visit, ParticipantID: pat, Role: token.Patient}
}

// wantRefused checks err is the refusal sentinel with the given code.
func wantRefused(t *testing.T, err error, sentinel error, code string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	if got := haven.ErrorCode(err); got != code {
		t.Fatalf("code = %q, want %q", got, code)
	}
}

func TestMintedTokenVerifiesForItsVisitAndParticipant(t *testing.T) {
	tok := mint(t, patientClaims())
	c, err := token.Verify(key, tok, visit, pat, t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.VisitID != visit || c.ParticipantID != pat || c.Role != token.Patient {
		t.Fatalf("claims = %+v", c)
	}
	if !c.Expiry.Equal(t0.Add(token.DefaultTTL)) {
		t.Fatalf("expiry = %v, want %v", c.Expiry, t0.Add(token.DefaultTTL))
	}
	if len(c.TokenID) != 32 {
		t.Fatalf("token id %q", c.TokenID)
	}
	if len(tok) > token.MaxLength {
		t.Fatalf("token of %d characters exceeds MaxLength", len(tok))
	}
}

func TestTokensAreUnique(t *testing.T) {
	a, b := mint(t, patientClaims()), mint(t, patientClaims())
	if a == b {
		t.Fatal("two tokens for the same claims are equal; token ids must be random")
	}
}

func TestForgedTokenIsRefused(t *testing.T) {
	tok := mint(t, patientClaims())
	raw, _ := base64.RawURLEncoding.DecodeString(tok)

	t.Run("FlippedMACBit", func(t *testing.T) {
		b := bytes.Clone(raw)
		b[len(b)-1] ^= 1
		_, err := token.Verify(key, base64.RawURLEncoding.EncodeToString(b), visit, pat, t0)
		wantRefused(t, err, token.ErrForged, haven.EUNAUTHORIZED)
	})
	t.Run("OtherKey", func(t *testing.T) {
		other := bytes.Repeat([]byte{8}, token.KeySize)
		forged, err := token.Mint(other, patientClaims(), t0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = token.Verify(key, forged, visit, pat, t0)
		wantRefused(t, err, token.ErrForged, haven.EUNAUTHORIZED)
	})
	t.Run("PatientPromotesThemselvesToClinician", func(t *testing.T) {
		// The role byte follows version, id and expiry.
		b := bytes.Clone(raw)
		b[1+16+8] = 2
		_, err := token.Verify(key, base64.RawURLEncoding.EncodeToString(b), visit, pat, t0)
		wantRefused(t, err, token.ErrForged, haven.EUNAUTHORIZED)
	})
	t.Run("ExpiryPushedBack", func(t *testing.T) {
		b := bytes.Clone(raw)
		b[1+16+6]++ // a larger expiry, by 256 seconds
		_, err := token.Verify(key, base64.RawURLEncoding.EncodeToString(b), visit, pat, t0)
		wantRefused(t, err, token.ErrForged, haven.EUNAUTHORIZED)
	})
	t.Run("VisitIDSwapped", func(t *testing.T) {
		// Same length visit id, so the layout still parses: only the MAC
		// can tell.
		b := bytes.Replace(bytes.Clone(raw), []byte("visit-aaaa"), []byte("visit-bbbb"), 1)
		_, err := token.Verify(key, base64.RawURLEncoding.EncodeToString(b), "visit-bbbb", pat, t0)
		wantRefused(t, err, token.ErrForged, haven.EUNAUTHORIZED)
	})
	t.Run("MACStripped", func(t *testing.T) {
		b := raw[:len(raw)-32]
		_, err := token.Verify(key, base64.RawURLEncoding.EncodeToString(b), visit, pat, t0)
		if !errors.Is(err, token.ErrMalformed) && !errors.Is(err, token.ErrForged) {
			t.Fatalf("err = %v", err)
		}
		if haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("code = %q", haven.ErrorCode(err))
		}
	})
}

func TestExpiredTokenIsRefused(t *testing.T) {
	tok := mint(t, patientClaims())
	exp := t0.Add(token.DefaultTTL)
	if _, err := token.Verify(key, tok, visit, pat, exp.Add(-time.Second)); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	_, err := token.Verify(key, tok, visit, pat, exp)
	wantRefused(t, err, token.ErrExpired, haven.EUNAUTHORIZED)
	_, err = token.Verify(key, tok, visit, pat, exp.Add(time.Hour))
	wantRefused(t, err, token.ErrExpired, haven.EUNAUTHORIZED)
}

func TestReusedTokenIsRefused(t *testing.T) {
	ctx := context.Background()
	spent := token.NewMemorySpent(0, func() time.Time { return t0 })
	tok := mint(t, patientClaims())
	if _, err := token.Redeem(ctx, key, spent, tok, visit, pat, t0); err != nil {
		t.Fatalf("first use: %v", err)
	}
	_, err := token.Redeem(ctx, key, spent, tok, visit, pat, t0.Add(time.Second))
	wantRefused(t, err, token.ErrReused, haven.EUNAUTHORIZED)
}

func TestConcurrentRedeemsOfOneTokenAdmitOnlyOne(t *testing.T) {
	ctx := context.Background()
	spent := token.NewMemorySpent(0, func() time.Time { return t0 })
	tok := mint(t, patientClaims())
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, err := token.Redeem(ctx, key, spent, tok, visit, pat, t0); err == nil {
				ok.Add(1)
			} else if !errors.Is(err, token.ErrReused) {
				t.Errorf("unexpected refusal: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d redeems succeeded, want exactly 1", ok.Load())
	}
}

func TestOtherVisitsTokenIsRefused(t *testing.T) {
	tok := mint(t, patientClaims())
	_, err := token.Verify(key, tok, "visit-other", pat, t0)
	wantRefused(t, err, token.ErrOtherVisit, haven.EFORBIDDEN)
}

func TestOtherParticipantsTokenIsRefused(t *testing.T) {
	// The clinician's token in the patient's hands (or the reverse).
	tok := mint(t, token.Claims{VisitID: visit, ParticipantID: doc, Role: token.Clinician})
	_, err := token.Verify(key, tok, visit, pat, t0)
	wantRefused(t, err, token.ErrOtherParticipant, haven.EFORBIDDEN)
}

func TestGuestJoinsOnlyWithTheirOwnTokenForThatVisit(t *testing.T) {
	guest := "interpreter-9"
	tok := mint(t, token.Claims{VisitID: visit, ParticipantID: guest, Role: token.Guest})
	c, err := token.Verify(key, tok, visit, guest, t0)
	if err != nil || c.Role != token.Guest {
		t.Fatalf("guest with own token: %+v, %v", c, err)
	}
	// The patient's token does not let the guest in, nor the guest's token
	// another visit.
	_, err = token.Verify(key, mint(t, patientClaims()), visit, guest, t0)
	wantRefused(t, err, token.ErrOtherParticipant, haven.EFORBIDDEN)
	_, err = token.Verify(key, tok, "visit-other", guest, t0)
	wantRefused(t, err, token.ErrOtherVisit, haven.EFORBIDDEN)
}

func TestRefusedPresentationDoesNotSpendTheToken(t *testing.T) {
	ctx := context.Background()
	spent := token.NewMemorySpent(0, func() time.Time { return t0 })
	tok := mint(t, patientClaims())
	if _, err := token.Redeem(ctx, key, spent, tok, "visit-other", pat, t0); err == nil {
		t.Fatal("other visit admitted")
	}
	if _, err := token.Redeem(ctx, key, spent, tok, visit, "mallory", t0); err == nil {
		t.Fatal("other participant admitted")
	}
	if _, err := token.Redeem(ctx, key, spent, tok, visit, pat, t0); err != nil {
		t.Fatalf("owner refused after a stranger tried the token: %v", err)
	}
}

func TestSpentStoreFailureRefusesTheJoin(t *testing.T) {
	_, err := token.Redeem(context.Background(), key, failingSpent{}, mint(t, patientClaims()), visit, pat, t0)
	if haven.ErrorCode(err) != haven.EUNAVAILABLE {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

type failingSpent struct{}

func (failingSpent) MarkSpent(context.Context, string, time.Time) error {
	return errors.New("database down")
}

func TestMalformedTokensAreRefused(t *testing.T) {
	good := mint(t, patientClaims())
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	for name, tok := range map[string]string{
		"Empty":         "",
		"NotBase64":     "!!!!",
		"Padded":        good + "==",
		"StdAlphabet":   strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+/",
		"Truncated":     good[:20],
		"Huge":          strings.Repeat("A", 10_000),
		"UnknownVer":    base64.RawURLEncoding.EncodeToString(append([]byte{9}, raw[1:]...)),
		"TrailingBytes": base64.RawURLEncoding.EncodeToString(append(bytes.Clone(raw), 0)),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := token.Verify(key, tok, visit, pat, t0)
			if haven.ErrorCode(err) != haven.EUNAUTHORIZED || token.Reason(err) == "" {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestMintRefusesUnboundOrLongLivedTokens(t *testing.T) {
	for name, c := range map[string]token.Claims{
		"NoVisit":       {ParticipantID: pat, Role: token.Patient},
		"NoParticipant": {VisitID: visit, Role: token.Patient},
		"NoRole":        {VisitID: visit, ParticipantID: pat},
		"StaffRole":     {VisitID: visit, ParticipantID: pat, Role: "staff"},
		"IDWithNewline": {VisitID: "v\n1", ParticipantID: pat, Role: token.Patient},
		"IDTooLong":     {VisitID: strings.Repeat("v", 65), ParticipantID: pat, Role: token.Patient},
		"UpperCaseID":   {VisitID: "Visit-1", ParticipantID: pat, Role: token.Patient}, // haven.PlausibleID's alphabet
		"NULInID":       {VisitID: visit, ParticipantID: "p\x001", Role: token.Patient},
		"PastExpiry":    {VisitID: visit, ParticipantID: pat, Role: token.Patient, Expiry: t0.Add(-time.Second)},
		"DayLong":       {VisitID: visit, ParticipantID: pat, Role: token.Patient, Expiry: t0.Add(24 * time.Hour)},
		"BadTokenID":    {TokenID: "xyz", VisitID: visit, ParticipantID: pat, Role: token.Patient},
		"UpperHexID":    {TokenID: strings.Repeat("AB", 16), VisitID: visit, ParticipantID: pat, Role: token.Patient},
	} {
		t.Run(name, func(t *testing.T) {
			if tok, err := token.Mint(key, c, t0); err == nil {
				t.Fatalf("minted %q", tok)
			}
		})
	}
	if _, err := token.Mint(key[:16], patientClaims(), t0); err == nil {
		t.Fatal("minted under a 16-byte key")
	}
	if _, err := token.Verify(key[:16], "x", visit, pat, t0); err == nil {
		t.Fatal("verified under a 16-byte key")
	}
}

func TestReasonNamesEachRefusal(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range []error{token.ErrMalformed, token.ErrForged, token.ErrExpired, token.ErrReused, token.ErrOtherVisit, token.ErrOtherParticipant} {
		r := token.Reason(&haven.Error{Code: haven.EUNAUTHORIZED, Err: e})
		if r == "" || seen[r] {
			t.Fatalf("reason %q for %v is empty or repeated", r, e)
		}
		seen[r] = true
	}
	if token.Reason(errors.New("other")) != "" {
		t.Fatal("reason for a non-token error")
	}
}

func TestMemorySpentForgetsExpiredIDsAndRefusesWhenFullOfLiveOnes(t *testing.T) {
	ctx := context.Background()
	now := t0
	m := token.NewMemorySpent(2, func() time.Time { return now })
	if err := m.MarkSpent(ctx, "a", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := m.MarkSpent(ctx, "b", now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Full of live ids: refuse rather than forget one that could be replayed.
	if err := m.MarkSpent(ctx, "c", now.Add(time.Minute)); haven.ErrorCode(err) != haven.ETOOMANY {
		t.Fatalf("full store: %v", err)
	}
	if err := m.MarkSpent(ctx, "a", now.Add(time.Minute)); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("respent: %v", err)
	}
	now = now.Add(90 * time.Second) // "a" has expired
	if err := m.MarkSpent(ctx, "c", now.Add(time.Minute)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if m.Len() != 2 {
		t.Fatalf("len = %d, want 2", m.Len())
	}
	if err := m.MarkSpent(ctx, "b", now.Add(time.Minute)); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("live id b forgotten: %v", err)
	}
}

package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"testing"

	"haven"
	"haven/identity"
)

// BenchmarkPasskeySignIn measures a whole passwordless sign-in through the
// service (options with a stored challenge, the authenticator's signature,
// then the check: challenge used up, credential found, signature and
// origin verified, counter compare-and-set, two audit appends, throttle,
// session insert) against its cryptographic floor measured in the same
// run: the same software authenticator's signature and one ECDSA P-256
// verification over the same bytes, with nothing stored.
//
//   - baseline: sign + verify one assertion
//   - service: BeginPasswordless + sign + FinishPasswordless, to a session
func BenchmarkPasskeySignIn(b *testing.B) {
	st := benchIdentity(b)
	pk, err := identity.NewPasskeys(st.id, identity.PasskeyConfig{PublicURL: havenOrigin})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	res, err := st.id.Login(ctx, "pat@bench.example", pw, home)
	if err != nil || res.Stage != identity.StageDone {
		b.Fatalf("login: %+v, %v", res, err)
	}
	cur, err := st.id.Resume(ctx, res.Session.Token, home)
	if err != nil {
		b.Fatal(err)
	}
	signedIn := haven.NewContextWithActor(ctx, cur.Actor)
	key := newSoftKey(b)
	opts, err := pk.BeginRegistration(signedIn)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pk.FinishRegistration(signedIn, key.create(opts), "", home); err != nil {
		b.Fatal(err)
	}
	b.Run("baseline", func(b *testing.B) {
		opts, _ := pk.BeginPasswordless(ctx, home)
		for b.Loop() {
			a := key.sign(opts)
			h := sha256.Sum256(a.clientData)
			digest := sha256.Sum256(append(append([]byte{}, a.authData...), h[:]...))
			if !ecdsa.VerifyASN1(&key.key.PublicKey, digest[:], a.sig) {
				b.Fatal("signature does not verify")
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
	b.Run("service", func(b *testing.B) {
		for b.Loop() {
			opts, err := pk.BeginPasswordless(ctx, home)
			if err != nil {
				b.Fatal(err)
			}
			res, err := pk.FinishPasswordless(ctx, key.get(opts), home)
			if err != nil || res.Stage != identity.StageDone {
				b.Fatalf("passwordless: %+v, %v", res, err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
}

package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v3/jwt"

	"haven"
	"haven/internal/testkit"
	"haven/smart"
	"haven/web"
)

// backendKey is a backend system's ES384 key and its public JWKS.
type backendKey struct {
	priv *ecdsa.PrivateKey
	jwks string
}

func newBackendKey(t *testing.T, kid string) backendKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: kid, Algorithm: "ES384", Use: "sig"}}}
	b, _ := json.Marshal(set)
	return backendKey{priv: priv, jwks: string(b)}
}

// assertion signs a client assertion as SMART Backend Services asks:
// iss and sub the client, aud the token endpoint, a fresh jti.
func (k backendKey) assertion(t *testing.T, kid, clientID, aud, jti string) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: k.priv}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{aud}, ID: jti,
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(4 * time.Minute))}).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSMARTBackendServicesAsAnAttackerWouldTry: a lab system registered
// with its public key gets a system token with a signed assertion
// (client_credentials, private_key_jwt, ES384), on every database; a
// replayed assertion, one signed by another key, a system calling from a
// network it is not allowed, and one over its rate limit are refused.
// Each token issued and each refusal is in the practice's audit log,
// naming the client. FHIR reads with a system token are refused (403)
// until policy decides what a backend system may read.
func TestSMARTBackendServicesAsAnAttackerWouldTry(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			ctx := context.Background()
			// Served again with a limit of 3 token requests a window per client.
			ln, base := listener(t)
			apps, err := smart.New(ctx, st.svc.Gate(), st.db, base)
			if err != nil {
				t.Fatal(err)
			}
			st.base = base
			st.web.SMART = apps
			st.web.Limits = &web.RateLimits{Counter: st.db, PerClient: 3, Window: time.Hour}
			st.srv = newWebServer(t, st.web)
			serveOn(t, st.srv, ln)

			admin := haven.NewContextWithActor(ctx, haven.Actor{UserID: st.users[own.emails[haven.RolePracticeAdmin]], PracticeID: own.id,
				Role: haven.RolePracticeAdmin, MFA: true, AuthTime: st.clock.Now(), SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1"})
			key, thief := newBackendKey(t, "lab-1"), newBackendKey(t, "lab-1")
			lab, err := apps.AddClient(admin, smart.NewClient{Name: "Lakeside Lab", JWKS: key.jwks, Scopes: []string{"system/*.rs"}, Networks: []string{"127.0.0.0/8"}})
			if err != nil {
				t.Fatal(err)
			}
			far, err := apps.AddClient(admin, smart.NewClient{Name: "Far Pharmacy", JWKS: key.jwks, Scopes: []string{"system/*.rs"}, Networks: []string{"10.0.0.0/8"}})
			if err != nil {
				t.Fatal(err)
			}
			// A private key registered as a public one is refused.
			privSet, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.priv, KeyID: "x", Algorithm: "ES384"}}})
			if _, err := apps.AddClient(admin, smart.NewClient{Name: "Leaky", JWKS: string(privSet), Scopes: []string{"system/*.rs"}}); haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("a private key registered: %v", err)
			}

			c := st.client(firefox)
			aud := base + "/oauth2/token"
			grant := func(clientID, assertion string) tokenAnswer {
				return tokenCall(t, c, url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}})
			}
			first := key.assertion(t, "lab-1", lab.Client.ID, aud, haven.NewID())
			tok := grant(lab.Client.ID, first)
			if tok.Status != 200 || tok.AccessToken == "" || tok.RefreshToken != "" || tok.Scope != "system/*.rs" {
				t.Fatalf("client_credentials: %+v", tok)
			}
			if again := grant(lab.Client.ID, first); again.Status == 200 {
				t.Fatalf("a replayed assertion: %+v", again)
			}
			if forged := grant(lab.Client.ID, thief.assertion(t, "lab-1", lab.Client.ID, aud, haven.NewID())); forged.Status == 200 {
				t.Fatalf("an assertion signed by another key: %+v", forged)
			}
			if wrongAud := grant(lab.Client.ID, key.assertion(t, "lab-1", lab.Client.ID, "https://elsewhere.example/token", haven.NewID())); wrongAud.Status == 200 {
				t.Fatalf("an assertion for another server: %+v", wrongAud)
			}
			if outside := grant(far.Client.ID, key.assertion(t, "lab-1", far.Client.ID, aud, haven.NewID())); outside.Status == 200 || outside.Error != "access_denied" {
				t.Fatalf("a system outside its networks: %+v", outside)
			}
			// Reads are not served to backend systems yet: refused, audited.
			outcome(t, bearer(c, tok.AccessToken, "/fhir/R4/Patient/"+own.patient[0]), http.StatusForbidden, "forbidden")

			// Over the client's limit: 429 with Retry-After.
			var r *http.Response
			for range 3 {
				r = c.do("POST", "/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
					"client_assertion":      {key.assertion(t, "lab-1", lab.Client.ID, aud, haven.NewID())}}.Encode()),
					map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
			}
			if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
				t.Fatalf("over the client's limit: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
			}

			for _, want := range []struct {
				client, action, decision string
			}{{lab.Client.ID, "smart.token", "allow"}, {far.Client.ID, "smart.token", "deny"}, {lab.Client.ID, "smart.fhir", "deny"}} {
				var n int
				if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1 AND session_id = $2 AND action = $3 AND decision = $4`,
					own.id, "smart:"+want.client, want.action, want.decision).Scan(&n); err != nil || n == 0 {
					t.Errorf("no %s %s naming the client in the audit log (%v)", want.action, want.decision, err)
				}
			}
		})
	}
}

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
// naming the client (its reads are TestSMARTBackendSystemReadsAsAnAttackerWouldTry's).
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
			}{{lab.Client.ID, "smart.token", "allow"}, {far.Client.ID, "smart.token", "deny"}} {
				var n int
				if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1 AND session_id = $2 AND action = $3 AND decision = $4`,
					own.id, "smart:"+want.client, want.action, want.decision).Scan(&n); err != nil || n == 0 {
					t.Errorf("no %s %s naming the client in the audit log (%v)", want.action, want.decision, err)
				}
			}
		})
	}
}

// TestSMARTBackendSystemReadsAsAnAttackerWouldTry: a lab system of one
// practice, registered for Patient and Observation, reads a patient's
// Patient and her Observations with its system token, on every database,
// each read decided as the integration role and audited naming the
// client. Then what a stolen or over-reaching token would try: another
// practice's patient (not found, and that practice's log is told), a type
// beyond its scopes (403), notes and the whole record even with
// system/*.rs (403: policy gives a backend system no notes, files or
// messages), a search naming no patient (400), a use from outside its
// networks (403), and a token of a revoked client (401 at once).
func TestSMARTBackendSystemReadsAsAnAttackerWouldTry(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own, other := ts[0], ts[1]
			ctx := context.Background()
			admin := haven.NewContextWithActor(ctx, haven.Actor{UserID: st.users[own.emails[haven.RolePracticeAdmin]], PracticeID: own.id,
				Role: haven.RolePracticeAdmin, MFA: true, AuthTime: st.clock.Now(), SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1"})
			key := newBackendKey(t, "lab-1")
			lab, err := st.smart.AddClient(admin, smart.NewClient{Name: "Lakeside Lab", JWKS: key.jwks,
				Scopes: []string{"system/Patient.rs", "system/Observation.rs"}, Networks: []string{"127.0.0.0/8"}})
			if err != nil {
				t.Fatal(err)
			}
			wide, err := st.smart.AddClient(admin, smart.NewClient{Name: "Registry", JWKS: key.jwks, Scopes: []string{"system/*.rs"}})
			if err != nil {
				t.Fatal(err)
			}
			c := st.client(firefox)
			aud := st.base + "/oauth2/token"
			grant := func(clientID, scope string) string {
				t.Helper()
				tok := tokenCall(t, c, url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
					"client_assertion":      {key.assertion(t, "lab-1", clientID, aud, haven.NewID())}})
				if tok.Status != 200 || tok.AccessToken == "" {
					t.Fatalf("client_credentials for %s: %+v", scope, tok)
				}
				return tok.AccessToken
			}
			tok := grant(lab.Client.ID, "system/Patient.rs system/Observation.rs")
			p := own.patient[0]
			// Her result, reviewed and released by the ordering clinician.
			doc2 := haven.NewContextWithActor(ctx, haven.Actor{UserID: st.users["doc2@riverside.example"], PracticeID: own.id, Role: haven.RoleClinician,
				MFA: true, SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1", AuthTime: st.clock.Now()})
			if _, err := st.svc.ReviewResult(doc2, own.results[0], "", true); err != nil {
				t.Fatal(err)
			}

			// The happy path: her Patient, and a search of her Observations.
			if doc := fhirDoc(t, bearer(c, tok, "/fhir/R4/Patient/"+p), http.StatusOK); doc["id"] != p {
				t.Fatalf("Patient read: %v", doc)
			}
			entries(t, fhirDoc(t, bearer(c, tok, "/fhir/R4/Patient?_id="+p), http.StatusOK), 1)
			obs := entries(t, fhirDoc(t, bearer(c, tok, "/fhir/R4/Observation?patient="+p), http.StatusOK), -1)
			if len(obs) == 0 {
				t.Fatal("no Observation of her released result")
			}
			for _, o := range obs {
				if ref, _ := o["subject"].(map[string]any)["reference"].(string); ref != "Patient/"+p {
					t.Errorf("an Observation of someone else in her search: %v", o)
				}
			}
			// Every search names its patient: no practice-wide sweep.
			outcome(t, bearer(c, tok, "/fhir/R4/Observation"), http.StatusBadRequest, "invalid")

			// Another practice's patient is nowhere, and that practice is told.
			outcome(t, bearer(c, tok, "/fhir/R4/Patient/"+other.patient[0]), http.StatusNotFound, "not-found")
			outcome(t, bearer(c, tok, "/fhir/R4/Observation?patient="+other.patient[0]), http.StatusNotFound, "not-found")
			// A type beyond its scopes.
			outcome(t, bearer(c, tok, "/fhir/R4/MedicationRequest?patient="+p), http.StatusForbidden, "forbidden")
			outcome(t, bearer(c, tok, "/fhir/R4/AllergyIntolerance?patient="+p), http.StatusForbidden, "forbidden")
			// With every type in its scopes, policy still keeps a backend
			// system from notes, files, messages and the whole record.
			wt := grant(wide.Client.ID, "system/*.rs")
			fhirDoc(t, bearer(c, wt, "/fhir/R4/MedicationRequest?patient="+p), http.StatusOK)
			for _, path := range []string{"/fhir/R4/DocumentReference?patient=" + p, "/fhir/R4/Communication?patient=" + p,
				"/fhir/R4/Patient/" + p + "/$everything"} {
				outcome(t, bearer(c, wt, path), http.StatusForbidden, "forbidden")
			}

			// Used from outside its networks (as if carried off), refused on
			// the very next request.
			if _, err := st.db.SQL().Exec(`UPDATE smart_clients SET networks = $1 WHERE id = $2`, "10.0.0.0/8", lab.Client.ID); err != nil {
				t.Fatal(err)
			}
			outcome(t, bearer(c, tok, "/fhir/R4/Patient/"+p), http.StatusForbidden, "forbidden")
			if _, err := st.db.SQL().Exec(`UPDATE smart_clients SET networks = $1 WHERE id = $2`, "127.0.0.0/8", lab.Client.ID); err != nil {
				t.Fatal(err)
			}
			fhirDoc(t, bearer(c, tok, "/fhir/R4/Patient/"+p), http.StatusOK)

			// Her access history names the system that read her record.
			her := haven.NewContextWithActor(ctx, haven.Actor{UserID: p, PracticeID: own.id, Role: haven.RolePatient, MFA: true,
				SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1", AuthTime: st.clock.Now()})
			h, err := st.svc.AccessHistory(her, p)
			if err != nil {
				t.Fatal(err)
			}
			named := false
			for _, e := range h.Events {
				named = named || (e.ActorName == "Lakeside Lab" && e.ActorRole == string(haven.RoleIntegration))
			}
			if !named {
				t.Error("her access history does not name the lab system that read her record")
			}

			// The admin revokes the client: its token is refused at once.
			if err := st.smart.RevokeClient(admin, lab.Client.ID); err != nil {
				t.Fatal(err)
			}
			outcome(t, bearer(c, tok, "/fhir/R4/Patient/"+p), http.StatusUnauthorized, "login")

			st.svc.Wait()
			for _, want := range []struct {
				log, query string
				args       []any
			}{
				{own.id, `actor_id = $2 AND actor_role = 'integration' AND session_id = $3 AND action = 'chart.read' AND patient_id = $4 AND decision = 'allow'`,
					[]any{lab.Client.ID, "smart:" + lab.Client.ID, p}},
				{own.id, `actor_id = $2 AND session_id = $3 AND action = 'lab.read' AND patient_id = $4 AND decision = 'allow'`,
					[]any{lab.Client.ID, "smart:" + lab.Client.ID, p}},
				{own.id, `session_id = $2 AND action = 'smart.fhir' AND reason = 'scope_not_granted' AND decision = 'deny'`,
					[]any{"smart:" + lab.Client.ID}},
				{own.id, `session_id = $2 AND action = 'smart.fhir' AND reason = 'network_not_allowed' AND decision = 'deny'`,
					[]any{"smart:" + lab.Client.ID}},
				{own.id, `actor_id = $2 AND action = 'note.read' AND reason = 'role_not_permitted' AND decision = 'deny'`,
					[]any{wide.Client.ID}},
				{other.id, `actor_id = $2 AND reason = 'other_practice' AND resource_id = $3 AND decision = 'deny'`,
					[]any{lab.Client.ID, other.patient[0]}},
			} {
				var n int
				if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1 AND `+want.query,
					append([]any{want.log}, want.args...)...).Scan(&n); err != nil || n == 0 {
					t.Errorf("no audit event in %s's log where %s (%v)", want.log, want.query, err)
				}
			}
		})
	}
}

package web_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v3/jwt"

	"haven"
	"haven/internal/testkit"
)

// idTokenCall redeems code as tokenCall does and returns the id_token too.
func idTokenCall(t *testing.T, c *client, app smartApp, code, verifier string) (string, string) {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {app.redirect}, "client_id": {app.id}, "code_verifier": {verifier}}
	r := c.do("POST", "/oauth2/token", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	var a struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	body := readAll(t, r)
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &a) != nil || a.AccessToken == "" {
		t.Fatalf("token: %d %s", r.StatusCode, body)
	}
	return a.AccessToken, a.IDToken
}

// TestSMARTOpenIDTokenIsSignedAndNamesTheFHIRUser: an app granted openid
// and fhirUser gets an id_token, on every database, that verifies against
// the key the JWKS (found through the SMART configuration and the OpenID
// discovery document) publishes; it names the issuer, the app, the user,
// and as fhirUser her Patient, which the app then reads with its token. A
// clinician's names his Practitioner. An id_token whose claims were
// changed, or signed by another key, does not verify; an app granted no
// openid gets no id_token; an app not registered for openid cannot ask
// for it.
func TestSMARTOpenIDTokenIsSignedAndNamesTheFHIRUser(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			a := own.patient[0]
			anon := st.client(firefox)
			fhirBase := st.base + "/fhir/R4"

			var conf, disco struct {
				JWKS   string   `json:"jwks_uri"`
				Issuer string   `json:"issuer"`
				Algs   []string `json:"id_token_signing_alg_values_supported"`
				Scopes []string `json:"scopes_supported"`
			}
			for path, into := range map[string]any{"/fhir/R4/.well-known/smart-configuration": &conf, "/fhir/R4/.well-known/openid-configuration": &disco} {
				if err := json.Unmarshal([]byte(readAll(t, anon.get(path))), into); err != nil {
					t.Fatal(err)
				}
			}
			if conf.JWKS != st.base+"/oauth2/jwks" || disco.JWKS != conf.JWKS || disco.Issuer != fhirBase || len(disco.Algs) != 1 || disco.Algs[0] != "RS256" {
				t.Fatalf("configuration %+v, discovery %+v", conf, disco)
			}
			var set jose.JSONWebKeySet
			r := anon.get("/oauth2/jwks")
			if err := json.Unmarshal([]byte(readAll(t, r)), &set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() || set.Keys[0].KeyID == "" {
				t.Fatalf("JWKS: %v %+v", err, set)
			}
			verify := func(idToken string) (map[string]any, error) {
				tok, err := jwt.ParseSigned(idToken)
				if err != nil {
					return nil, err
				}
				if len(tok.Headers) != 1 || tok.Headers[0].KeyID != set.Keys[0].KeyID || tok.Headers[0].Algorithm != "RS256" {
					t.Errorf("id_token header %+v", tok.Headers)
				}
				var claims map[string]any
				return claims, tok.Claims(set.Keys[0].Key, &claims)
			}

			app := registerApp(t, st, own, "My Health", "launch/patient", "openid", "fhirUser", "patient/*.rs")
			pc := st.client(firefox)
			pc.pageSignIn(own.pEmail[0])
			v, ch := pkce()
			access, idToken := idTokenCall(t, anon, app, authorize(t, pc, app, "launch/patient openid fhirUser patient/*.rs", ch), v)
			claims, err := verify(idToken)
			if err != nil {
				t.Fatalf("the id_token does not verify against the published key: %v", err)
			}
			aud, _ := claims["aud"].([]any)
			if claims["iss"] != fhirBase || claims["sub"] != a || len(aud) != 1 || aud[0] != app.id || claims["fhirUser"] != fhirBase+"/Patient/"+a {
				t.Fatalf("id_token claims %v", claims)
			}
			if doc := fhirDoc(t, bearer(anon, access, strings.TrimPrefix(claims["fhirUser"].(string), st.base)), http.StatusOK); doc["id"] != a {
				t.Fatalf("her fhirUser reads as %v", doc)
			}
			// Tampered with: another patient's fhirUser, the signature kept.
			parts := strings.Split(idToken, ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			forged := strings.Replace(string(payload), "/Patient/"+a, "/Patient/"+own.patient[1], 1)
			if _, err := verify(parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]); err == nil || forged == string(payload) {
				t.Fatal("an id_token with changed claims verifies")
			}

			// Signed by another key, with the published key's id.
			other, _ := rsa.GenerateKey(rand.Reader, 2048)
			signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: other}, (&jose.SignerOptions{}).WithHeader("kid", set.Keys[0].KeyID))
			if self, err := jwt.Signed(signer).Claims(claims).CompactSerialize(); err != nil {
				t.Fatal(err)
			} else if _, err := verify(self); err == nil {
				t.Fatal("an id_token signed by another key verifies")
			}

			// A clinician's names his Practitioner.
			chartApp := registerApp(t, st, own, "Chart Helper", "openid", "fhirUser", "user/Patient.rs")
			doc := st.client(firefox)
			doc.signIn(own.emails[haven.RoleClinician], "")
			v, ch = pkce()
			_, idToken = idTokenCall(t, anon, chartApp, authorize(t, doc, chartApp, "openid fhirUser user/Patient.rs", ch), v)
			if claims, err := verify(idToken); err != nil || claims["fhirUser"] != fhirBase+"/Practitioner/"+st.users[own.emails[haven.RoleClinician]] {
				t.Fatalf("the clinician's id_token: %v %v", err, claims)
			}

			// No openid, no id_token; not registered for it, not granted.
			plain := registerApp(t, st, own, "Plain", "launch/patient", "patient/*.rs")
			v, ch = pkce()
			if _, idToken := idTokenCall(t, anon, plain, authorize(t, pc, plain, "launch/patient patient/*.rs", ch), v); idToken != "" {
				t.Fatal("an id_token without openid")
			}
			q := url.Values{"response_type": {"code"}, "client_id": {plain.id}, "redirect_uri": {plain.redirect}, "scope": {"launch/patient openid fhirUser patient/*.rs"},
				"state": {"state-123456789"}, "code_challenge": {ch}, "code_challenge_method": {"S256"}}
			if r := pc.get("/oauth2/authorize?" + q.Encode()); r.StatusCode/100 != 3 || !strings.Contains(r.Header.Get("Location"), "error=invalid_scope") {
				t.Fatalf("openid asked by an app not registered for it: %d %s", r.StatusCode, r.Header.Get("Location"))
			}
		})
	}
}

package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/internal/testkit"
	"haven/smart"
	"haven/web"
)

// clientCert is a system's self-signed client certificate, in PEM files
// for curl and in memory for Go.
type clientCert struct {
	pem, certFile, keyFile string
	tls                    tls.Certificate
}

func newClientCert(t *testing.T, cn string, now time.Time) clientCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	c := clientCert{pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"),
		tls: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
	if err := os.WriteFile(c.certFile, []byte(c.pem), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// curlCall runs curl, a TLS client we did not write, against url with
// cert (none when nil) and the further arguments, and returns the status
// and body.
func curlCall(t *testing.T, cert *clientCert, url string, args ...string) (int, string) {
	t.Helper()
	all := []string{"-s", "-k", "--max-time", "10", "-w", "\n%{http_code}"}
	if cert != nil {
		all = append(all, "--cert", cert.certFile, "--key", cert.keyFile)
	}
	out, err := exec.Command("curl", append(append(all, args...), url)...).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", url, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	code, _ := strconv.Atoi(s[i+1:])
	return code, s[:i]
}

// TestSMARTMutualTLSAsAnAttackerWouldTry: backend systems registered with
// a client certificate (RFC 8705), on every database, driven by curl. The
// integration listener asks for a certificate, the main one never does
// (browsers are not asked). A pharmacy registered with a certificate alone
// gets a token by presenting it; a lab registered with keys and a
// certificate must present both. Their tokens are bound to their
// certificates: a stolen token used with no certificate, with another
// client's, with one of the thief's own, or on the main listener is
// refused with 401 and an OperationOutcome, and audited naming the
// client; so is a lab posting HL7 with its token without its
// certificate. An app that presents a certificate when redeeming its code
// gets bound tokens, and its refresh token renews only with that
// certificate. A revoked client is refused with its certificate. The
// SMART configuration announces bound tokens and the integration
// listener's token endpoint.
func TestSMARTMutualTLSAsAnAttackerWouldTry(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if testkit.InCI() {
			t.Fatal("curl is needed to test mutual TLS with a client we did not write")
		}
		t.Skip("no curl")
	}
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			ctx := context.Background()
			ln, base := listener(t)
			iln, ibase := listener(t)
			apps, err := smart.New(ctx, st.svc.Gate(), st.db, base, ibase)
			if err != nil {
				t.Fatal(err)
			}
			st.base = base
			st.web.SMART, st.web.IntegrationURL = apps, ibase
			st.srv = newWebServer(t, st.web)
			cert := serveOn(t, st.srv, ln)
			sctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- st.srv.ServeIntegration(sctx, iln, web.IntegrationTLSConfig(cert)) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("integration listener shutdown: %v", err)
				}
			})

			// Only the integration listener asks for a certificate.
			for _, l := range []struct {
				addr string
				asks bool
			}{{strings.TrimPrefix(base, "https://"), false}, {strings.TrimPrefix(ibase, "https://"), true}} {
				asked := false
				conn, err := tls.Dial("tcp", l.addr, &tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					asked = true
					return &tls.Certificate{}, nil
				}})
				if err != nil {
					t.Fatal(err)
				}
				conn.Close()
				if asked != l.asks {
					t.Errorf("%s asks for a client certificate: %v, want %v", l.addr, asked, l.asks)
				}
			}
			// It serves the integration endpoints only.
			if code, _ := curlCall(t, nil, ibase+"/app/login"); code != http.StatusNotFound {
				t.Errorf("a page on the integration listener: %d", code)
			}

			code, body := curlCall(t, nil, base+"/fhir/R4/.well-known/smart-configuration")
			var conf struct {
				Bound   bool              `json:"tls_client_certificate_bound_access_tokens"`
				Aliases map[string]string `json:"mtls_endpoint_aliases"`
				Methods []string          `json:"token_endpoint_auth_methods_supported"`
			}
			if code != 200 || json.Unmarshal([]byte(body), &conf) != nil || !conf.Bound || conf.Aliases["token_endpoint"] != ibase+"/oauth2/token" ||
				!strings.Contains(strings.Join(conf.Methods, " "), "self_signed_tls_client_auth") {
				t.Fatalf("smart-configuration: %d %s", code, body)
			}

			admin := haven.NewContextWithActor(ctx, haven.Actor{UserID: st.users[own.emails[haven.RolePracticeAdmin]], PracticeID: own.id,
				Role: haven.RolePracticeAdmin, MFA: true, AuthTime: st.clock.Now(), SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1"})
			now := st.clock.Now()
			pharmCert, labCert, thiefCert := newClientCert(t, "Harbor Pharmacy", now), newClientCert(t, "Lakeside Lab", now), newClientCert(t, "Thief", now)
			if _, err := apps.AddClient(admin, smart.NewClient{Name: "Bad", TLSCert: "not a certificate", Scopes: []string{"system/*.rs"}}); haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("an unreadable certificate registered: %v", err)
			}
			pharm, err := apps.AddClient(admin, smart.NewClient{Name: "Harbor Pharmacy", TLSCert: pharmCert.pem, Scopes: []string{"system/Patient.rs"}})
			if err != nil {
				t.Fatal(err)
			}
			if pharm.Secret != "" || pharm.Client.CertThumbprint != smart.Thumbprint(pharmCert.tls.Certificate[0]) {
				t.Fatalf("registered: %+v", pharm)
			}
			key := newBackendKey(t, "lab-1")
			lab, err := apps.AddClient(admin, smart.NewClient{Name: "Lakeside Lab", JWKS: key.jwks, TLSCert: labCert.pem, Scopes: []string{"system/Patient.rs"}})
			if err != nil {
				t.Fatal(err)
			}

			token := func(at string, cert *clientCert, form ...string) (int, string) {
				t.Helper()
				args := []string{"-H", "Origin: http://127.0.0.1:9"}
				for _, f := range form {
					args = append(args, "--data-urlencode", f)
				}
				code, body := curlCall(t, cert, at+"/oauth2/token", args...)
				var a struct {
					AccessToken string `json:"access_token"`
				}
				json.Unmarshal([]byte(body), &a)
				if code == 200 && a.AccessToken == "" {
					t.Fatalf("token: %s", body)
				}
				return code, a.AccessToken
			}
			pharmForm := []string{"grant_type=client_credentials", "scope=system/Patient.rs", "client_id=" + pharm.Client.ID}
			// self_signed_tls_client_auth: its certificate, and only it.
			code, ptok := token(ibase, &pharmCert, pharmForm...)
			if code != 200 {
				t.Fatalf("the pharmacy with its certificate: %d", code)
			}
			for what, c := range map[string]*clientCert{"no certificate": nil, "the lab's certificate": &labCert, "the thief's certificate": &thiefCert} {
				if code, _ := token(ibase, c, pharmForm...); code != http.StatusUnauthorized {
					t.Errorf("the pharmacy's token asked for with %s: %d", what, code)
				}
			}
			if code, _ := token(base, nil, pharmForm...); code != http.StatusUnauthorized {
				t.Errorf("the pharmacy's token asked for on the main listener: %d", code)
			}
			// private_key_jwt and its certificate, both.
			labForm := func(aud string) []string {
				return []string{"grant_type=client_credentials", "scope=system/Patient.rs",
					"client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
					"client_assertion=" + key.assertion(t, "lab-1", lab.Client.ID, aud, haven.NewID())}
			}
			code, ltok := token(ibase, &labCert, labForm(ibase+"/oauth2/token")...)
			if code != 200 {
				t.Fatalf("the lab with its assertion and certificate: %d", code)
			}
			if code, _ := token(ibase, &pharmCert, labForm(ibase+"/oauth2/token")...); code == 200 {
				t.Error("the lab's assertion with the pharmacy's certificate was honoured")
			}
			if code, _ := token(base, nil, labForm(base+"/oauth2/token")...); code == 200 {
				t.Error("the lab's assertion without its certificate was honoured")
			}

			// The tokens work with their certificates only.
			p := own.patient[0]
			read := func(at string, c *clientCert, tok string) (int, string) {
				t.Helper()
				return curlCall(t, c, at+"/fhir/R4/Patient/"+p, "-H", "Authorization: Bearer "+tok, "-H", "Accept: application/fhir+json")
			}
			for _, ok := range []struct {
				tok  string
				cert *clientCert
			}{{ptok, &pharmCert}, {ltok, &labCert}} {
				if code, body := read(ibase, ok.cert, ok.tok); code != 200 || !strings.Contains(body, `"id":"`+p+`"`) {
					t.Fatalf("a bound token with its certificate: %d %s", code, body)
				}
			}
			for what, try := range map[string]struct {
				at   string
				cert *clientCert
				tok  string
			}{
				"with no certificate":            {ibase, nil, ptok},
				"on the main listener":           {base, nil, ptok},
				"with another client's":          {ibase, &labCert, ptok},
				"with the thief's own":           {ibase, &thiefCert, ptok},
				"the lab's, with no certificate": {ibase, nil, ltok},
				"the lab's, with the pharmacy's": {ibase, &pharmCert, ltok},
			} {
				code, body := read(try.at, try.cert, try.tok)
				if code != http.StatusUnauthorized || !strings.Contains(body, `"resourceType":"OperationOutcome"`) || !strings.Contains(body, `"code":"login"`) {
					t.Errorf("a stolen token %s: %d %s", what, code, body)
				}
			}

			// An app that presents a certificate of its own when it redeems
			// its code gets tokens bound to it; its refresh token renews only
			// with that certificate.
			app := registerApp(t, st, own, "Cuff Reader", "launch/patient", "patient/Patient.rs", "offline_access")
			pc := st.client(firefox)
			pc.pageSignIn(own.pEmail[0])
			verifier, challenge := pkce()
			authCode := authorize(t, pc, app, "launch/patient patient/Patient.rs offline_access", challenge)
			appCert := newClientCert(t, "Cuff Reader install", now)
			redeem := func(c *clientCert, form ...string) (int, map[string]any) {
				t.Helper()
				args := []string{}
				for _, f := range form {
					args = append(args, "--data-urlencode", f)
				}
				code, body := curlCall(t, c, ibase+"/oauth2/token", args...)
				var m map[string]any
				json.Unmarshal([]byte(body), &m)
				return code, m
			}
			code2, got := redeem(&appCert, "grant_type=authorization_code", "code="+authCode, "redirect_uri="+app.redirect, "client_id="+app.id, "code_verifier="+verifier)
			atok, _ := got["access_token"].(string)
			rtok, _ := got["refresh_token"].(string)
			if code2 != 200 || atok == "" || rtok == "" {
				t.Fatalf("redeeming with a certificate: %d %v", code2, got)
			}
			if code, _ := read(ibase, &appCert, atok); code != 200 {
				t.Errorf("the app's bound token with its certificate: %d", code)
			}
			if code, _ := read(base, nil, atok); code != http.StatusUnauthorized {
				t.Errorf("the app's bound token without its certificate: %d", code)
			}
			refresh := []string{"grant_type=refresh_token", "refresh_token=" + rtok, "client_id=" + app.id}
			if code, got := redeem(&thiefCert, refresh...); code == 200 {
				t.Errorf("a bound refresh token renewed with another certificate: %v", got)
			}
			if code, got := redeem(&appCert, refresh...); code != 200 {
				t.Errorf("a bound refresh token renewed with its certificate: %d %v", code, got)
			}

			// A lab registered with a certificate posts HL7 with its token
			// and that certificate, or not at all.
			vendor := &haven.Vendor{Name: "Lakeside Lab", Kind: haven.VendorLab, Endpoint: "mllps://lab.invalid:2575", PHI: haven.PHIMinimum,
				BAASigned: now.AddDate(0, -1, 0), BAAExpires: now.AddDate(1, 0, 0)}
			if err := st.svc.AddVendor(admin, vendor); err != nil {
				t.Fatal(err)
			}
			hl7tok, err := st.svc.SetLabInterface(admin, vendor.ID, labCert.pem, true)
			if err != nil {
				t.Fatal(err)
			}
			post := func(at string, c *clientCert) int {
				code, _ := curlCall(t, c, at+"/api/v1/hl7", "-H", "Authorization: Bearer "+hl7tok, "-H", "Content-Type: x-application/hl7-v2+er7",
					"--data-binary", "MSH|^~\\&|LAB|L|HAVEN|P|2026||ORU^R01|MTLS-1|P|2.5.1\r")
				return code
			}
			if code := post(ibase, &labCert); code != http.StatusOK {
				t.Errorf("HL7 with the lab's token and certificate: %d", code)
			}
			for what, try := range map[string]struct {
				at string
				c  *clientCert
			}{"no certificate": {ibase, nil}, "the main listener": {base, nil}, "the thief's certificate": {ibase, &thiefCert}} {
				if code := post(try.at, try.c); code != http.StatusUnauthorized {
					t.Errorf("HL7 with the lab's token and %s: %d", what, code)
				}
			}

			// Revoked: refused with its certificate, for a token and a read.
			if err := apps.RevokeClient(admin, pharm.Client.ID); err != nil {
				t.Fatal(err)
			}
			if code, _ := read(ibase, &pharmCert, ptok); code != http.StatusUnauthorized {
				t.Errorf("a revoked client's token with its certificate: %d", code)
			}
			if code, _ := token(ibase, &pharmCert, pharmForm...); code != http.StatusUnauthorized {
				t.Errorf("a revoked client asking with its certificate: %d", code)
			}

			st.svc.Wait()
			for _, c := range []string{pharm.Client.ID, lab.Client.ID} {
				var n int
				if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1 AND session_id = $2 AND action = 'smart.fhir'
					AND reason = 'certificate_not_presented' AND decision = 'deny'`, own.id, "smart:"+c).Scan(&n); err != nil || n == 0 {
					t.Errorf("no refusal for a missing certificate naming %s in the audit log (%v)", c, err)
				}
			}
		})
	}
}

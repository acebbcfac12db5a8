package web_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/internal/testkit"
)

// labClientCertPEM is a lab's self-signed client certificate in PEM.
func labClientCertPEM(t *testing.T, name string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: name, Organization: []string{name + " Inc"}},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

var hl7TokenRE = regexp.MustCompile(`id="token" class="secret">(hl7_[A-Za-z0-9_-]+)<`)

// TestLabInterfacePageIsTheAdminsOwnLabs: the admin reaches her lab's
// results interface from the vendors page; a certificate that cannot be
// read is refused with words and changes nothing; a good one is shown by
// its subject and end date, and a token is shown once and works (and is
// revoked); an uploaded certificate file does as a pasted one; another
// practice's lab is not found (to look or to change), a pharmacy is no
// lab, and a clinician and the compliance officer are refused the page.
func TestLabInterfacePageIsTheAdminsOwnLabs(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { labInterfacePage(t, testkit.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { labInterfacePage(t, testkit.Postgres(t)) })
}

func labInterfacePage(t *testing.T, dsn string) {
	st, ts := newChartStack(t, dsn)
	own, other := ts[0], ts[1]
	adm := st.client(firefox)
	adm.signIn(own.emails["practice_admin"], "")
	vendors := readAll(t, adm.get("/app/admin/vendors"))
	page := "/app/admin/labs/" + own.lab + "/interface"
	if !strings.Contains(vendors, `href="`+page+`"`) || strings.Contains(vendors, `href="/app/admin/labs/`+own.vendor) {
		t.Fatalf("the vendors page does not link the lab's results interface (and only the lab's):\n%s", vendors)
	}
	body, tok := adm.adminPage(page)
	if !strings.Contains(body, "Lab"+own.marker) || !strings.Contains(body, "None registered") || !strings.Contains(body, "None made") {
		t.Fatalf("the results interface page:\n%s", body)
	}

	// Another practice's lab: not found, to look or to change.
	theirs := "/app/admin/labs/" + other.lab + "/interface"
	if r := adm.get(theirs); r.StatusCode != http.StatusNotFound {
		t.Fatalf("another practice's lab's page: %d", r.StatusCode)
	}
	for _, path := range []string{theirs, theirs + "/revoke"} {
		if r := adm.adminPost(path, tok, url.Values{"certificate": {labClientCertPEM(t, "Intruder Lab")}, "token": {"1"}, "what": {"token"}}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("POST %s: %d", path, r.StatusCode)
		}
	}
	// A pharmacy sends no results.
	if r := adm.get("/app/admin/labs/" + own.vendor + "/interface"); r.StatusCode == http.StatusOK {
		t.Fatalf("a pharmacy's results interface: %d", r.StatusCode)
	}

	// A certificate that cannot be read: refused in words, nothing changed.
	r := adm.adminPost(page, tok, url.Values{"certificate": {"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"}, "token": {"1"}})
	bad := readAll(t, r)
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(bad, "cannot be read") || strings.Contains(bad, `id="token"`) {
		t.Fatalf("a bad certificate: %d\n%s", r.StatusCode, bad)
	}
	if body, _ := adm.adminPage(page); !strings.Contains(body, "None registered") || !strings.Contains(body, "None made") {
		t.Fatalf("a bad certificate changed the interface:\n%s", body)
	}

	// A good certificate and a token.
	r = adm.adminPost(page, tok, url.Values{"certificate": {labClientCertPEM(t, "Results Gateway")}, "token": {"1"}})
	made := readAll(t, r)
	m := hl7TokenRE.FindStringSubmatch(made)
	if r.StatusCode != http.StatusOK || m == nil || !strings.Contains(made, "/api/v1/hl7") {
		t.Fatalf("registering: %d\n%s", r.StatusCode, made)
	}
	body, _ = adm.adminPage(page)
	if !strings.Contains(body, "CN=Results Gateway") || !strings.Contains(body, "30 June 2027") || !strings.Contains(body, "Made on 25 November 2026") || strings.Contains(body, m[1]) {
		t.Fatalf("the interface after registering (the token must not be shown again):\n%s", body)
	}
	if st.svc.LabByToken(t.Context(), m[1]) != own.lab {
		t.Fatal("the token shown does not recognise the lab")
	}
	// Revoking the token leaves the certificate.
	if r := adm.adminPost(page+"/revoke", tok, url.Values{"what": {"token"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoking: %d", r.StatusCode)
	}
	if st.svc.LabByToken(t.Context(), m[1]) != "" {
		t.Fatal("a revoked token still recognises the lab")
	}
	if body, _ := adm.adminPage(page); !strings.Contains(body, "None made") || !strings.Contains(body, "CN=Results Gateway") {
		t.Fatalf("after revoking the token:\n%s", body)
	}

	// The certificate file the lab sent, uploaded in place of pasting.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("form_token", tok)
	fw, _ := mw.CreateFormFile("certificate_file", "lab.pem")
	io.WriteString(fw, labClientCertPEM(t, "Uploaded Gateway"))
	mw.Close()
	if r := adm.do("POST", page, &buf, map[string]string{"Content-Type": mw.FormDataContentType(), "Sec-Fetch-Site": "same-origin", "Origin": st.base}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("uploading the certificate: %d\n%s", r.StatusCode, readAll(t, r))
	}
	if body, _ := adm.adminPage(page); !strings.Contains(body, "CN=Uploaded Gateway") {
		t.Fatalf("after uploading the certificate:\n%s", body)
	}

	// Not an admin: refused.
	for _, role := range []haven.Role{"clinician", "compliance_officer"} {
		c := st.client(firefox)
		c.signIn(own.emails[role], "")
		if r := c.get(page); r.StatusCode != http.StatusForbidden {
			t.Fatalf("%s opening the lab's results interface: %d", role, r.StatusCode)
		}
		if r := c.adminPost(page, c.forgeFormToken(), url.Values{"token": {"1"}}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("%s making a token: %d", role, r.StatusCode)
		}
	}
}

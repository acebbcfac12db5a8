package main_test

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServeRefusesAHalfConfiguredMLLPListener: the listener recognises
// labs only by their client certificates, so an address without the CAs
// that issue them (or CAs that are not PEM) stops serve before any data
// is touched, naming the flags.
func TestServeRefusesAHalfConfiguredMLLPListener(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runHaven(t, nil, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--mllp-addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "--mllp-addr and --mllp-client-ca") {
		t.Fatalf("address without CAs: %d %q", code, errOut)
	}
	bad := filepath.Join(dir, "ca.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	code, _, errOut = runHaven(t, nil, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--mllp-addr", "127.0.0.1:0", "--mllp-client-ca", bad)
	if code != 1 || !strings.Contains(errOut, "--mllp-client-ca") || !strings.Contains(errOut, "no PEM certificate") {
		t.Fatalf("CAs that are not PEM: %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "haven.db")); err == nil {
		t.Fatal("serve opened the database before refusing its configuration")
	}
}

// TestServeIntegrationListenerAsksForCertificates: with
// --integration-addr, serve opens a second HTTPS listener that asks every
// client for a certificate while the main one never asks (so no browser
// is asked to pick one); the SMART configuration names its token
// endpoint as the mutual TLS alias; it serves the integration endpoints
// only. --integration-url alone is refused before any data is touched.
func TestServeIntegrationListenerAsksForCertificates(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runHaven(t, nil, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--integration-url", "https://clinic.example:8444")
	if code != 1 || !strings.Contains(errOut, "--integration-url needs --integration-addr") {
		t.Fatalf("a URL without a listener: %d %q", code, errOut)
	}
	s := startServe(t, filepath.Join(dir, "data"), "--integration-addr", "127.0.0.1:0")
	m := regexp.MustCompile(`integration listener \(client certificates asked for\): (https://localhost:(\d+)) on`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("serve did not announce its integration listener:\n%s", s.out)
	}
	asks := func(addr string) bool {
		asked := false
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			return &tls.Certificate{}, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		return asked
	}
	if asks(strings.TrimPrefix(s.URL, "https://")) || !asks("127.0.0.1:"+m[2]) {
		t.Fatal("the main listener asks for a client certificate, or the integration listener does not")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	r, err := hc.Get(s.URL + "/fhir/R4/.well-known/smart-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Aliases map[string]string `json:"mtls_endpoint_aliases"`
	}
	json.NewDecoder(r.Body).Decode(&conf)
	r.Body.Close()
	if conf.Aliases["token_endpoint"] != m[1]+"/oauth2/token" {
		t.Fatalf("mtls_endpoint_aliases %v, want the token endpoint at %s", conf.Aliases, m[1])
	}
	for path, want := range map[string]int{"/fhir/R4/metadata": http.StatusOK, "/": http.StatusNotFound, "/app/login": http.StatusNotFound} {
		r, err := hc.Get("https://127.0.0.1:" + m[2] + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != want {
			t.Errorf("%s on the integration listener: %d, want %d", path, r.StatusCode, want)
		}
	}
}

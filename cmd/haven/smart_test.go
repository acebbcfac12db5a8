package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"haven/smart"
)

// An operator registers a practice's SMART apps from the command line:
// add (a public app; a confidential one, whose secret is shown once),
// list, revoke; each in the practice's audit log. A scope Haven does not
// know and an http redirect to another host are refused. A backend
// system is registered with its client certificate (--tls-cert), listed
// with its thumbprint.
func TestSMARTClientsCommand(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	code, out, errOut := runHaven(t, nil, "practice", "create", "--data-dir", dataDir, "--name", "Lakeside Family Medicine",
		"--admin-email", "admin@lakeside.example", "--public-url", "https://clinic.example")
	if code != 0 {
		t.Fatalf("practice create: exit %d\n%s%s", code, out, errOut)
	}
	practice := regexp.MustCompile(`practice ([a-z0-9]+) created`).FindStringSubmatch(out)[1]
	code, out, errOut = runHaven(t, nil, "smart", "clients", "add", "--data-dir", dataDir, "--practice", practice,
		"--name", "Pocket Health", "--public", "--redirect-uri", "https://app.example/callback", "--scope", "launch/patient patient/*.rs")
	m := regexp.MustCompile(`client ([a-f0-9]+) registered`).FindStringSubmatch(out)
	if code != 0 || m == nil || strings.Contains(out, "secret") {
		t.Fatalf("smart clients add: exit %d\n%s%s", code, out, errOut)
	}
	id := m[1]
	code, out, errOut = runHaven(t, nil, "smart", "clients", "add", "--data-dir", dataDir, "--practice", practice,
		"--name", "Clinic Portal", "--redirect-uri", "https://portal.example/cb", "--scope", "user/Observation.rs")
	if code != 0 || !regexp.MustCompile(`client secret \(shown once[^)]*\): [a-f0-9]{64}`).MatchString(out) {
		t.Fatalf("a confidential app: exit %d\n%s%s", code, out, errOut)
	}
	for _, bad := range [][]string{{"--scope", "patient/*.everything"}, {"--redirect-uri", "http://evil.example/cb"}} {
		args := append([]string{"smart", "clients", "add", "--data-dir", dataDir, "--practice", practice, "--name", "Bad", "--public",
			"--redirect-uri", "https://app.example/cb", "--scope", "patient/*.rs"}, bad...)
		if code, _, errOut := runHaven(t, nil, args...); code != 1 || !strings.Contains(errOut, "haven smart: ") {
			t.Fatalf("%v: exit %d, %q", bad, code, errOut)
		}
	}
	// A backend system registered with its client certificate (mutual
	// TLS); a file that holds none is refused.
	certFile := filepath.Join(t.TempDir(), "system.pem")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Harbor Pharmacy"}, NotBefore: time.Now(), NotAfter: time.Now().AddDate(1, 0, 0)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	code, out, errOut = runHaven(t, nil, "smart", "clients", "add", "--data-dir", dataDir, "--practice", practice,
		"--name", "Harbor Pharmacy", "--tls-cert", certFile, "--scope", "system/Patient.rs")
	if code != 0 || strings.Contains(out, "secret") {
		t.Fatalf("a system with a certificate: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runHaven(t, nil, "smart", "clients", "add", "--data-dir", dataDir, "--practice", practice,
		"--name", "Bad", "--tls-cert", filepath.Join(dataDir, "..", "nothing.pem"), "--scope", "system/Patient.rs"); code != 1 || !strings.Contains(errOut, "--tls-cert") {
		t.Fatalf("a missing certificate file: exit %d, %q", code, errOut)
	}
	code, out, _ = runHaven(t, nil, "smart", "clients", "list", "--data-dir", dataDir, "--practice", practice)
	if code != 0 || !strings.Contains(out, "\tHarbor Pharmacy\tbackend system (certificate "+smart.Thumbprint(der)+")\tsystem/Patient.rs\tactive") {
		t.Fatalf("smart clients list: exit %d\n%s", code, out)
	}
	code, out, _ = runHaven(t, nil, "smart", "clients", "list", "--data-dir", dataDir, "--practice", practice)
	if code != 0 || !strings.Contains(out, id+"\tPocket Health\tpublic app\tlaunch/patient patient/*.rs\tactive") || !strings.Contains(out, "Clinic Portal") {
		t.Fatalf("smart clients list: exit %d\n%s", code, out)
	}
	if code, out, errOut = runHaven(t, nil, "smart", "clients", "revoke", "--data-dir", dataDir, "--practice", practice, "--id", id); code != 0 {
		t.Fatalf("revoke: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runHaven(t, nil, "smart", "clients", "list", "--data-dir", dataDir, "--practice", practice)
	if code != 0 || !strings.Contains(out, id+"\tPocket Health\tpublic app\tlaunch/patient patient/*.rs\trevoked") {
		t.Fatalf("after revoking: exit %d\n%s", code, out)
	}
	code, out, _ = runHaven(t, nil, "audit", "export", "--data-dir", dataDir)
	for _, act := range []string{"smart.client.add", "smart.client.revoke"} {
		if code != 0 || !strings.Contains(out, `"`+act+`"`) {
			t.Fatalf("audit export has no %s:\n%s", act, out)
		}
	}
}

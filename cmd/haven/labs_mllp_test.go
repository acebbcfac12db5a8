package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"haven/internal/testkit"
)

// python3 is Debian's, whose python3-hl7 package .ci/run installs (a
// python earlier on PATH may not see it).
const python3 = "/usr/bin/python3"

// hl7Send is the outside sender service/testdata/hl7_send.py: python-hl7's
// MLLP client, which Haven did not write, on a TLS 1.3 socket.
var hl7Send = filepath.Join("..", "..", "service", "testdata", "hl7_send.py")

// issueCert makes a P-256 certificate from tmpl signed by parent (self-
// signed when parent is nil) and writes it and its key as PEM files in
// dir, returning the certificate, its key and the two paths.
func issueCert(t *testing.T, dir, name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key, certFile, keyFile
}

// TestServeTakesLabResultsOverMLLPFromAnOutsideSender runs the real
// `haven serve --mllp-addr` with mutual TLS: the practice admin registers
// the lab's client certificate through the API; a clinician orders a test
// for a demo patient; python-hl7's MLLP client sends the lab's ORU^R01
// (critical) over TLS 1.3 with that certificate and is answered AA; the
// clinician finds the result, critical, through the API. The same message
// sent again gets the same ACK, byte for byte, and stores nothing more. A
// certificate from the lab network's CA that no lab registered gets AR; a
// certificate from another CA is refused during the handshake.
func TestServeTakesLabResultsOverMLLPFromAnOutsideSender(t *testing.T) {
	if out, err := exec.Command(python3, "-c", "import hl7.client").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-hl7 is not installed (%v: %s): .ci/run installs it", err, out)
		}
		t.Skipf("python3-hl7 is not installed: apt-get install python3-hl7")
	}
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			now := time.Now()
			valid := func(serial int64, cn string) *x509.Certificate {
				return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
					NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
			}
			caTmpl := valid(1, "Lab network CA")
			caTmpl.IsCA, caTmpl.BasicConstraintsValid, caTmpl.KeyUsage = true, true, x509.KeyUsageCertSign
			ca, caKey, caFile, _ := issueCert(t, dir, "ca", caTmpl, nil, nil)
			srvTmpl := valid(2, "localhost")
			srvTmpl.DNSNames, srvTmpl.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
			srvTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			_, _, srvCert, srvKey := issueCert(t, dir, "server", srvTmpl, ca, caKey)
			client := func(serial int64, cn string, issuer *x509.Certificate, issuerKey *ecdsa.PrivateKey) (*x509.Certificate, string, string) {
				tmpl := valid(serial, cn)
				tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
				c, _, cf, kf := issueCert(t, dir, cn, tmpl, issuer, issuerKey)
				return c, cf, kf
			}
			labCert, labCertFile, labKeyFile := client(3, "riverside-lab", ca, caKey)
			_, strangerCert, strangerKey := client(4, "stranger-lab", ca, caKey)
			otherTmpl := valid(5, "Another CA")
			otherTmpl.IsCA, otherTmpl.BasicConstraintsValid, otherTmpl.KeyUsage = true, true, x509.KeyUsageCertSign
			other, otherKey, _, _ := issueCert(t, dir, "other-ca", otherTmpl, nil, nil)
			_, outsiderCert, outsiderKey := client(6, "outsider-lab", other, otherKey)

			args := []string{"--demo", "--tls-cert", srvCert, "--tls-key", srvKey, "--mllp-addr", "127.0.0.1:0", "--mllp-client-ca", caFile}
			if name == "postgres" {
				args = append(args, "--db", dsn)
			}
			s := startServe(t, filepath.Join(dir, "data"), args...)
			m := regexp.MustCompile(`lab results: MLLP over mutual TLS on 127\.0\.0\.1:(\d+)`).FindStringSubmatch(s.out.String())
			if m == nil {
				t.Fatalf("serve did not announce its MLLP listener:\n%s", s.out)
			}
			port := m[1]

			// The admin registers the lab's certificate.
			admin := newAPIClient(t, s.URL)
			admin.signInWorkforce("admin@riverside.example")
			var vendors struct {
				Vendors []struct{ ID, Name, Kind string }
			}
			if code, err := admin.call("GET", "/api/v1/vendors", nil, &vendors); code != http.StatusOK || err != nil {
				t.Fatalf("vendors: %d %v", code, err)
			}
			labID := ""
			for _, v := range vendors.Vendors {
				if v.Kind == "lab" {
					labID = v.ID
				}
			}
			if labID == "" {
				t.Fatalf("the demo practice has no lab: %+v", vendors)
			}
			certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: labCert.Raw}))
			var set map[string]any
			if code, err := admin.call("POST", "/api/v1/labs/"+labID+"/interface", map[string]any{"certificate": certPEM}, &set); code != http.StatusOK || err != nil {
				t.Fatalf("registering the lab's certificate: %d %v %v", code, err, set)
			}

			// The clinician orders glucose for Maria Lopez.
			doc := newAPIClient(t, s.URL)
			doc.signInWorkforce("rivera@riverside.example")
			code, patients := doc.patients()
			if code != http.StatusOK {
				t.Fatalf("patients: %d", code)
			}
			patientID := ""
			for _, p := range patients {
				if p.Name == "Maria Lopez" {
					patientID = p.PatientID
				}
			}
			var chart struct {
				MRN          string `json:"mrn"`
				Demographics struct {
					DateOfBirth string `json:"date_of_birth"`
				} `json:"demographics"`
			}
			if code, err := doc.call("GET", "/api/v1/patients/"+patientID, nil, &chart); code != http.StatusOK || err != nil || chart.MRN == "" {
				t.Fatalf("her chart: %d %v %+v", code, err, chart)
			}
			var order struct{ ID, Number string }
			if code, err := doc.call("POST", "/api/v1/lab-orders", map[string]any{"patient_id": patientID, "lab_id": labID, "tests": []string{"2345-7"}}, &order); code != http.StatusCreated || err != nil {
				t.Fatalf("ordering: %d %v", code, err)
			}

			oru := func(controlID string) string {
				f := filepath.Join(dir, controlID+".hl7")
				msg := strings.Join([]string{
					"MSH|^~\\&|LIS|RIVERSIDE LAB|HAVEN|RIVERSIDE|20261206043000+0000||ORU^R01^ORU_R01|" + controlID + "|P|2.5.1",
					"PID|1||" + chart.MRN + "^^^RIVERSIDE^MR||Lopez^Maria^^^^^L||" + strings.ReplaceAll(chart.Demographics.DateOfBirth, "-", "") + "|F",
					"ORC|RE|" + order.Number + "|RL-9",
					"OBR|1|" + order.Number + "|RL-9|2345-7^Glucose^LN|||20261205080000+0000|||||||||||||||20261206042500+0000|||F",
					"OBX|1|NM|2345-7^Glucose^LN||612|mg/dL|70-99|HH|||F",
					"NTE|1|L|Critical value called to the practice \\T\\ read back",
					"ZLB|1|lab-internal",
				}, "\r") + "\r"
				if err := os.WriteFile(f, []byte(msg), 0o600); err != nil {
					t.Fatal(err)
				}
				return f
			}
			send := func(cert, key string, files ...string) (string, error) {
				t.Helper()
				cmd := exec.Command(python3, append([]string{hl7Send, "localhost", port, caFile, cert, key}, files...)...)
				cmd.Env = append(os.Environ(), "HL7_SEND_DIGEST=1")
				out, err := cmd.CombinedOutput()
				return strings.TrimSpace(string(out)), err
			}
			results := func() []struct {
				ID       string
				Critical bool
				OrderID  string `json:"order_id"`
			} {
				t.Helper()
				var out struct {
					Results []struct {
						ID       string
						Critical bool
						OrderID  string `json:"order_id"`
					}
				}
				if code, err := doc.call("GET", "/api/v1/results", nil, &out); code != http.StatusOK || err != nil {
					t.Fatalf("results: %d %v", code, err)
				}
				return out.Results
			}

			msg := oru("RL-ORU-1")
			first, err := send(labCertFile, labKeyFile, msg)
			if err != nil || !strings.HasPrefix(first, "AA RL-ORU-1 ") {
				t.Fatalf("the lab's result was answered %q (%v)", first, err)
			}
			rs := results()
			if len(rs) != 1 || !rs[0].Critical || rs[0].OrderID != order.ID {
				t.Fatalf("the clinician's results to review: %+v", rs)
			}
			again, err := send(labCertFile, labKeyFile, msg)
			if err != nil || again != first {
				t.Fatalf("the same message again was answered %q, first %q (%v)", again, first, err)
			}
			if rs := results(); len(rs) != 1 {
				t.Fatalf("%d results after the message was sent again", len(rs))
			}

			// A certificate the lab network issued that no lab registered: AR.
			got, err := send(strangerCert, strangerKey, oru("RL-ORU-2"))
			if err != nil || !strings.HasPrefix(got, "AR RL-ORU-2 ") {
				t.Fatalf("an unregistered certificate was answered %q (%v)", got, err)
			}
			// Another CA's: refused in the handshake, no answer at all.
			got, err = send(outsiderCert, outsiderKey, oru("RL-ORU-3"))
			if err == nil || strings.Contains(got, "RL-ORU-3") {
				t.Fatalf("a certificate from another CA was answered %q", got)
			}
			if rs := results(); len(rs) != 1 {
				t.Fatalf("%d results after refused senders", len(rs))
			}
			stop(s)
			// The value alone ("612") is too short to look for: a timing or a
			// port in the log can hold it. Look for the segments, the note and
			// the identifiers instead.
			for _, secret := range []string{"OBX|", "Critical value called", chart.MRN, "Lopez^Maria"} {
				if strings.Contains(s.errOut.String(), secret) {
					t.Fatalf("the server's log holds the result's contents (%q)", secret)
				}
			}
		})
	}
}

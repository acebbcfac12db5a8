package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"haven/hl7"
)

// python3 is Debian's, whose python3-hl7 package .ci/run installs (a
// python earlier on PATH may not see it).
const python3 = "/usr/bin/python3"

func pemFile(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestResultsFromAnOutsideMLLPClient: python-hl7's MLLP client, which
// Haven did not write, sends real-world shaped ORU^R01 messages (a v2.5.1
// panel with a Z-segment, escapes, SN, CWE, TX and ED values; a v2.3 one
// with line feeds and a critical value) and malformed ones over TLS 1.3
// with the lab's client certificate to an MLLP listener wired as
// `haven serve --mllp-addr` wires it. The good ones are stored (AA), each
// malformed one gets AE and stores nothing, and the lab is recognised by
// its certificate: a certificate the practice did not register gets AR.
func TestResultsFromAnOutsideMLLPClient(t *testing.T) {
	if out, err := exec.Command(python3, "-c", "import hl7.client").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-hl7 is not installed (%v: %s): .ci/run installs it", err, out)
		}
		t.Skipf("python3-hl7 is not installed: apt-get install python3-hl7")
	}
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newLabScene(t, e, "Mllpville", "MLP1")
		order, mrn, dob := sc.sentOrder(t)

		// The lab network's CA issues Haven's listener certificate and the
		// lab's client certificate; the admin registers the latter.
		now := time.Now()
		caCert, caKey := newCert(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Lab network CA"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
		srvCert, srvKey := newCert(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, caCert, caKey)
		issue := func(serial int64, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
			return newCert(t, &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
				NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, caCert, caKey)
		}
		labCert, labKey := issue(3, "harbor-lab")
		strangerCert, strangerKey := issue(4, "stranger")
		certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: labCert.Raw}))
		if _, err := e.svc.SetLabInterface(e.as(sc.p.admin), sc.lab.ID, certPEM, false); err != nil {
			t.Fatal(err)
		}

		pool := x509.NewCertPool()
		pool.AddCert(caCert)
		srv := &hl7.Server{
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey}}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert},
			Handler: hl7.HandlerFunc(func(ctx context.Context, peer hl7.Peer, msg []byte) []byte {
				return e.svc.ReceiveHL7(ctx, e.svc.LabByCertificate(ctx, peer.Certificate), msg)
			}),
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		defer srv.Close()
		port := ln.Addr().(*net.TCPAddr).Port

		dir := t.TempDir()
		ca := pemFile(t, dir, "ca.pem", "CERTIFICATE", caCert.Raw)
		keyDER := func(k *ecdsa.PrivateKey) []byte {
			b, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		labCertFile, labKeyFile := pemFile(t, dir, "lab.pem", "CERTIFICATE", labCert.Raw), pemFile(t, dir, "lab.key", "PRIVATE KEY", keyDER(labKey))
		strCertFile, strKeyFile := pemFile(t, dir, "s.pem", "CERTIFICATE", strangerCert.Raw), pemFile(t, dir, "s.key", "PRIVATE KEY", keyDER(strangerKey))

		samples, err := filepath.Glob(filepath.Join("testdata", "oru", "*.hl7"))
		if err != nil || len(samples) < 6 {
			t.Fatalf("samples %v %v", samples, err)
		}
		var files []string
		for _, s := range samples {
			b, err := os.ReadFile(s)
			if err != nil {
				t.Fatal(err)
			}
			b = []byte(strings.NewReplacer("{MRN}", mrn, "{DOB}", dob, "{ORDER}", order.Number).Replace(string(b)))
			f := filepath.Join(dir, filepath.Base(s))
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		send := func(cert, key string, files ...string) []string {
			t.Helper()
			args := append([]string{filepath.Join("testdata", "hl7_send.py"), "localhost", itoa(port), ca, cert, key}, files...)
			out, err := exec.Command(python3, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("python-hl7 client: %v\n%s", err, out)
			}
			return strings.Split(strings.TrimSpace(string(out)), "\n")
		}

		got := send(labCertFile, labKeyFile, files...)
		want := []string{"AA RW-CMP-1", "AA RW-23-2", "AE RW-BAD-3", "AE RW-BAD-4", "AE RW-BAD-5", "AE RW-BAD-6"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("answers %q, want %q", got, want)
		}
		queue, err := e.svc.ResultsToReview(e.as(sc.p.clinician))
		if err != nil || len(queue) != 2 {
			t.Fatalf("%d results to review, %v", len(queue), err)
		}
		// The v2.3 result's LL puts it first, as critical.
		if !queue[0].Critical || queue[1].Critical || len(queue[1].Observations) != 6 {
			t.Fatalf("queue %+v", queue)
		}
		if o := queue[1].Observations; o[0].Value != "182" || o[1].Value != ">60" || o[2].Value != "Yellow" || o[3].Value != "Clear|hazy" || o[4].Value != "Line one\nLine two" {
			t.Fatalf("observations %+v", o)
		}
		// Sending them all again: the same answers, nothing stored twice.
		if again := send(labCertFile, labKeyFile, files...); strings.Join(again, "|") != strings.Join(want, "|") {
			t.Fatalf("again: %q", again)
		}
		if q, _ := e.svc.ResultsToReview(e.as(sc.p.clinician)); len(q) != 2 {
			t.Fatalf("%d results after resending", len(q))
		}
		// A certificate from the same CA that no lab registered: refused.
		if got := send(strCertFile, strKeyFile, files[0]); got[0] != "AR RW-CMP-1" {
			t.Fatalf("a stranger's message: %q", got)
		}
		if q, _ := e.svc.UnmatchedResults(e.as(sc.p.staff)); len(q) != 0 {
			t.Fatalf("%d queued", len(q))
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

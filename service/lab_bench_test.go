package service_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strconv"
	"testing"
	"time"

	"haven"
	"haven/demo"
	"haven/hl7"
	"haven/internal/testkit"
	"haven/internal/testkit/stack"
	"haven/service"
)

func benchCert(b *testing.B, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		b.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

// BenchmarkLabResultsMLLP measures ORU^R01 results through the MLLP
// listener over mutual TLS on SQLite, one lab connection sending one
// message after another as labs do: each is framed, read, parsed, its lab
// recognised by certificate, matched (blind index, date of birth on the
// opened chart, order number), sealed, audited, stored and acknowledged.
// The baseline, in the same run, parses the same message alone (hl7.Parse
// and ReadORU). Both report messages per second.
//
//	go test -run '^$' -bench LabResultsMLLP ./service
func BenchmarkLabResultsMLLP(b *testing.B) {
	s := stack.New(b, testkit.SQLite(b), stack.WallClock())
	p := s.Seed("labbench", "lb1")
	ctx := context.Background()
	if err := s.Service.SeedLabCatalogue(ctx, p.ID, bytes.NewReader(demo.LabCatalogue)); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	caCert, caKey := benchCert(b, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	srvCert, srvKey := benchCert(b, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, caCert, caKey)
	labCert, labKey := benchCert(b, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "lab"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, caCert, caKey)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)

	today := now.UTC().Truncate(24 * time.Hour)
	lab := &haven.Vendor{Name: "Bench Lab", Kind: haven.VendorLab, Endpoint: "mllps://lab.invalid:2575", PHI: haven.PHIMinimum,
		BAASigned: today.AddDate(0, -1, 0), BAAExpires: today.AddDate(1, 0, 0)}
	if err := s.Service.AddVendor(s.As(p.Admin), lab); err != nil {
		b.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: labCert.Raw}))
	if _, err := s.Service.SetLabInterface(s.As(p.Admin), lab.ID, certPEM, false); err != nil {
		b.Fatal(err)
	}
	order, err := s.Service.OrderLabs(s.As(p.Clinician), service.NewLabOrder{PatientID: p.ChartA.PatientID, LabID: lab.ID, Tests: []string{"2345-7"}})
	if err != nil {
		b.Fatal(err)
	}
	dob := p.ChartA.Demographics.DateOfBirth[:4] + p.ChartA.Demographics.DateOfBirth[5:7] + p.ChartA.Demographics.DateOfBirth[8:]
	message := func(n int) []byte {
		return []byte("MSH|^~\\&|LAB|BENCH LAB|HAVEN|PRACTICE|20261206043000||ORU^R01^ORU_R01|BENCH-" + strconv.Itoa(n) + "|P|2.5.1\r" +
			"PID|1||" + p.ChartA.MRN + "^^^PRACTICE^MR||Doe^Jane||" + dob + "|F\r" +
			"ORC|RE|" + order.Number + "|F1\r" +
			"OBR|1|" + order.Number + "|F1|24323-8^Comprehensive metabolic panel^LN|||20261205080000|||||||||||||||20261206042500|||F\r" +
			"OBX|1|NM|2345-7^Glucose^LN||182|mg/dL|70-99|H|||F\r" +
			"NTE|1|L|Fasting specimen \\T\\ repeat advised\r" +
			"OBX|2|NM|2951-2^Sodium^LN||139|mmol/L|136-145|N|||F\r" +
			"OBX|3|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F\r" +
			"OBX|4|NM|2160-0^Creatinine^LN||0.9|mg/dL|0.6-1.2|N|||F\r" +
			"OBX|5|SN|33914-3^eGFR^LN||>^60|mL/min/1.73m2|>60||||F\r" +
			"ZLB|1|internal\r")
	}

	b.Run("stored", func(b *testing.B) {
		srv := &hl7.Server{
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey}}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert},
			Handler: hl7.HandlerFunc(func(ctx context.Context, peer hl7.Peer, msg []byte) []byte {
				return s.Service.ReceiveHL7(ctx, s.Service.LabByCertificate(ctx, peer.Certificate), msg)
			}),
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go srv.Serve(ln)
		defer srv.Close()
		c, err := hl7.Dial(ctx, ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost",
			Certificates: []tls.Certificate{{Certificate: [][]byte{labCert.Raw}, PrivateKey: labKey}}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		msgs := make([][]byte, b.N)
		for i := range msgs {
			msgs[i] = message(i)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			ack, err := c.Send(ctx, msgs[i])
			if err != nil {
				b.Fatal(err)
			}
			if !bytes.Contains(ack, []byte("MSA|AA|")) {
				b.Fatalf("answered %q", ack)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("baseline", func(b *testing.B) {
		msg := message(0)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			m, err := hl7.Parse(msg)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := hl7.ReadORU(m); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

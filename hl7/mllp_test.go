package hl7_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"haven/hl7"
)

// testCA issues certificates for one test: a lab's client certificate,
// Haven's server certificate.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t testing.TB, name string, client bool) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, DNSNames: []string{name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// mllpPair starts a Server answering with handler and returns its address
// and a client configuration carrying a lab's certificate.
func mllpPair(t *testing.T, handler hl7.HandlerFunc) (addr string, client *tls.Config, ca *testCA) {
	t.Helper()
	ca = newCA(t)
	srv := &hl7.Server{
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{ca.issue(t, "localhost", false)},
			ClientCAs:    ca.pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
		},
		Handler: handler,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, hl7.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), &tls.Config{
		RootCAs:      ca.pool,
		ServerName:   "localhost",
		Certificates: []tls.Certificate{ca.issue(t, "acme-lab", true)},
	}, ca
}

func TestMLLPOverMutualTLS(t *testing.T) {
	var peers []string
	addr, cfg, _ := mllpPair(t, func(ctx context.Context, peer hl7.Peer, msg []byte) []byte {
		peers = append(peers, peer.Certificate.Subject.CommonName)
		m, err := hl7.Parse(msg)
		code := hl7.Accept
		if err == nil {
			_, err = hl7.ReadORU(m)
		}
		if err != nil {
			code = hl7.ErrorAck
		}
		return hl7.AckFor(m, code, err, "HVN", "2026").Encode()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := hl7.Dial(ctx, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := c.ConnectionState()
	if st.Version != tls.VersionTLS13 || st.CurveID != tls.X25519MLKEM768 {
		t.Fatalf("negotiated version %x, key exchange %v; want TLS 1.3 with X25519MLKEM768", st.Version, st.CurveID)
	}
	for i, raw := range [][]byte{sample(t, "oru_cmp.hl7"), []byte("MSH|^~\\&|L|F|H|R|2026||ORU^R01|C2|P|2.5.1\rPID|1\r")} {
		answer, err := c.Send(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		m, err := hl7.Parse(answer)
		if err != nil {
			t.Fatal(err)
		}
		a, err := hl7.ReadAck(m)
		if err != nil {
			t.Fatal(err)
		}
		want := []hl7.AckCode{hl7.Accept, hl7.ErrorAck}[i]
		if a.Code != want {
			t.Fatalf("message %d: %s, want %s", i, a.Code, want)
		}
	}
	if len(peers) != 2 || peers[0] != "acme-lab" {
		t.Fatalf("the handler saw peers %q", peers)
	}
}

func TestMLLPRefusesClientsWithoutALabCertificate(t *testing.T) {
	addr, cfg, _ := mllpPair(t, func(ctx context.Context, peer hl7.Peer, msg []byte) []byte {
		t.Error("a message reached the handler")
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	try := func(name string, cfg *tls.Config) {
		c, err := hl7.Dial(ctx, addr, cfg)
		if err == nil {
			// TLS 1.3 clients learn of a refused certificate on first read.
			_, err = c.Send(ctx, sample(t, "oru_cmp.hl7"))
			c.Close()
		}
		if err == nil {
			t.Errorf("%s: a message was answered", name)
		}
	}
	none := cfg.Clone()
	none.Certificates = nil
	try("no certificate", none)

	other := cfg.Clone()
	other.Certificates = []tls.Certificate{newCA(t).issue(t, "stranger", true)}
	try("certificate from another CA", other)

	// TLS 1.2 is refused outright.
	old := cfg.Clone()
	old.MaxVersion = tls.VersionTLS12
	conn, err := tls.Dial("tcp", addr, old)
	if err == nil {
		err = conn.Handshake()
		conn.Close()
	}
	if err == nil {
		t.Error("a TLS 1.2 handshake succeeded")
	}
}

func TestServeRequiresClientCertificates(t *testing.T) {
	ca := newCA(t)
	srv := &hl7.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "localhost", false)}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := srv.Serve(ln); err == nil || errors.Is(err, hl7.ErrServerClosed) {
		t.Fatalf("Serve without client certificates: %v", err)
	}
}

func TestReadFrame(t *testing.T) {
	frame := func(s string) string { return "\x0b" + s + "\x1c\r" }
	cases := []struct {
		name, in string
		want     []string
		err      error
	}{
		{"one", frame("MSH|a"), []string{"MSH|a"}, io.EOF},
		{"two with line breaks between", frame("a") + "\r\n" + frame("b"), []string{"a", "b"}, io.EOF},
		{"end block inside", frame("a\x1cb"), []string{"a\x1cb"}, io.EOF},
		{"garbage before", "x" + frame("a"), nil, hl7.ErrNotFramed},
		{"start inside", "\x0ba\x0bb\x1c\r", nil, hl7.ErrNotFramed},
		{"cut short", "\x0babc", nil, io.ErrUnexpectedEOF},
		{"cut after end block", "\x0babc\x1c", nil, io.ErrUnexpectedEOF},
		{"too large", frame(strings.Repeat("x", 17)), nil, hl7.ErrFrameTooLarge},
		{"exactly the limit", frame(strings.Repeat("x", 16)), []string{strings.Repeat("x", 16)}, io.EOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(c.in), 16)
			var got []string
			for {
				m, err := hl7.ReadFrame(r, 16)
				if err != nil {
					if !errors.Is(err, c.err) {
						t.Fatalf("error %v, want %v", err, c.err)
					}
					break
				}
				got = append(got, string(m))
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("frames %q, want %q", got, c.want)
			}
		})
	}
	var b bytes.Buffer
	if err := hl7.WriteFrame(&b, []byte("MSH")); err != nil || b.String() != frame("MSH") {
		t.Fatalf("WriteFrame %q", b.String())
	}
}

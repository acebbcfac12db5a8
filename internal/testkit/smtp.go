package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// SMTPRelay is a real SMTP server (go-smtp) on loopback, standing in for a
// practice's mail relay: STARTTLS (or implicit TLS) with a certificate of
// its own, AUTH PLAIN for User and Password, and a record of every
// message it accepted and how it arrived.
type SMTPRelay struct {
	Addr     string         // host:port
	Roots    *x509.CertPool // trusts the relay's certificate, and nothing else
	CertPEM  []byte         // that certificate, for a CA file
	User     string
	Password string

	srv        *gosmtp.Server
	ln         net.Listener
	rejectTo   string
	rejectFrom bool
	mu         sync.Mutex
	delivered  []SMTPDelivery
}

// SMTPDelivery is one message the relay accepted for one recipient.
type SMTPDelivery struct {
	From, To string
	Data     string // the message as received
	TLS      bool   // it arrived inside TLS
	Authed   bool   // the client had authenticated
}

// SMTPRelayOptions vary the relay.
type SMTPRelayOptions struct {
	NoTLS       bool   // offer no STARTTLS: a downgraded or misconfigured relay
	ImplicitTLS bool   // TLS from the first byte (smtps)
	RejectTo    string // answer 550 to this recipient, repeating the address as relays do
	RejectFrom  bool   // answer 553 5.1.8 to every sender: a relay set up for someone else
	Addr        string // listen here, to restart on a known port; default any loopback port
}

// StartSMTPRelay starts a relay that stops when the test ends.
func StartSMTPRelay(tb testing.TB, o SMTPRelayOptions) *SMTPRelay {
	tb.Helper()
	cert, roots, certPEM := selfSignedLocalhost(tb)
	r := &SMTPRelay{Roots: roots, CertPEM: certPEM, User: "haven", Password: "relay-secret-Ø", rejectTo: o.RejectTo, rejectFrom: o.RejectFrom}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &relaySession{r: r, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	if !o.NoTLS {
		srv.TLSConfig = tlsConfig
	}
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	if o.ImplicitTLS {
		ln = tls.NewListener(ln, tlsConfig)
	}
	r.Addr, r.srv, r.ln = ln.Addr().String(), srv, ln
	go srv.Serve(ln)
	tb.Cleanup(r.Stop)
	return r
}

// Stop closes the relay, as an outage would. The listener is closed here
// too: Serve may not have registered it with the server yet.
func (r *SMTPRelay) Stop() {
	r.ln.Close()
	r.srv.Close()
}

// Deliveries returns what the relay has accepted so far.
func (r *SMTPRelay) Deliveries() []SMTPDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]SMTPDelivery(nil), r.delivered...)
}

// WaitDeliveries waits up to a minute for at least n deliveries (mail is
// sent in the background) and returns them; it fails the test otherwise.
func (r *SMTPRelay) WaitDeliveries(tb testing.TB, n int) []SMTPDelivery {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := r.Deliveries()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the relay received %d messages, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type relaySession struct {
	r      *SMTPRelay
	conn   *gosmtp.Conn
	authed bool
	from   string
	to     []string
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.r.User || pass != s.r.Password {
			return errors.New("invalid credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.r.rejectFrom {
		return &gosmtp.SMTPError{Code: 553, EnhancedCode: gosmtp.EnhancedCode{5, 1, 8}, Message: "sender <" + from + "> domain unknown here"}
	}
	s.from = from
	return nil
}

func (s *relaySession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if to == s.r.rejectTo {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: no such user"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *relaySession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, to := range s.to {
		s.r.delivered = append(s.r.delivered, SMTPDelivery{From: s.from, To: to, Data: string(b), TLS: isTLS, Authed: s.authed})
	}
	return nil
}

func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }

// selfSignedLocalhost returns a certificate for localhost and 127.0.0.1, a
// pool trusting only it, and its PEM.
func selfSignedLocalhost(tb testing.TB) (tls.Certificate, *x509.CertPool, []byte) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool,
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

package outbox

import (
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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// relay is a real SMTP server (go-smtp) on loopback with a certificate of
// its own, recording what it accepted and whether it came over TLS.
type relay struct {
	addr  string
	roots *x509.CertPool
	srv   *gosmtp.Server

	mu        sync.Mutex
	delivered []delivery
	rejectTo  string // RCPT TO this address gets 550
	user      string
	pass      string
	authed    bool
}

type delivery struct {
	from, to string
	data     string
	tls      bool
	authed   bool
}

type relayOptions struct {
	noTLS    bool   // advertise no STARTTLS
	implicit bool   // TLS from the first byte (smtps)
	rejectTo string // answer 550 to this recipient
	addr     string // listen here (to restart on the same port)
}

func startRelay(t *testing.T, o relayOptions) *relay {
	t.Helper()
	cert, roots := selfSigned(t)
	r := &relay{roots: roots, rejectTo: o.rejectTo, user: "haven", pass: "relay-secret-Ø"}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &relaySession{r: r, tls: isTLS, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	if !o.noTLS {
		srv.TLSConfig = tlsConfig
	}
	addr := o.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if o.implicit {
		ln = tls.NewListener(ln, tlsConfig)
	}
	r.addr, r.srv = ln.Addr().String(), srv
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *relay) stop() { r.srv.Close() }

func (r *relay) got() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.delivered...)
}

type relaySession struct {
	r      *relay
	conn   *gosmtp.Conn
	tls    bool
	authed bool
	from   string
	to     []string
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.r.user || pass != s.r.pass {
			return errors.New("invalid credentials")
		}
		s.authed = true
		return nil
	}), nil
}
func (s *relaySession) Mail(from string, _ *gosmtp.MailOptions) error { s.from = from; return nil }
func (s *relaySession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if to == s.r.rejectTo {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
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
		s.r.delivered = append(s.r.delivered, delivery{from: s.from, to: to, data: string(b), tls: isTLS || s.tls, authed: s.authed})
	}
	return nil
}
func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }

// selfSigned returns a certificate for localhost and 127.0.0.1 and a pool
// trusting only it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func (r *relay) client(t *testing.T, scheme string) *SMTP {
	t.Helper()
	s, err := ParseSMTPURL(scheme + "://" + r.user + "@" + r.addr)
	if err != nil {
		t.Fatal(err)
	}
	s.Password, s.From, s.RootCAs, s.Timeout = r.pass, "no-reply@clinic.example", r.roots, 10*time.Second
	return s
}

func newSpool(t *testing.T, relay *SMTP) (*Spool, string) {
	dir := filepath.Join(t.TempDir(), "outbox")
	return NewSpool(&Dir{Path: dir, From: "Riverside via Haven <no-reply@clinic.example>"}, relay, nil), dir
}

func spooled(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".eml") {
			names = append(names, e.Name())
		}
	}
	return names
}

var resetMessage = Message{To: "pat@example.org", Subject: "Reset your Haven password",
	Text: "Use this link within one hour:\nhttps://clinic.example/reset#tok-XYZ\n"}

func TestSpoolDeliversOverSTARTTLSWithAuthAndForgetsTheFile(t *testing.T) {
	r := startRelay(t, relayOptions{})
	sp, dir := newSpool(t, r.client(t, "smtp"))
	if err := sp.Send(t.Context(), resetMessage); err != nil {
		t.Fatal(err)
	}
	if err := sp.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := r.got()
	if len(got) != 1 {
		t.Fatalf("relay accepted %d messages, want 1", len(got))
	}
	d := got[0]
	if !d.tls || !d.authed {
		t.Fatalf("delivery tls=%v authed=%v; want both", d.tls, d.authed)
	}
	if d.from != "no-reply@clinic.example" || d.to != "pat@example.org" {
		t.Fatalf("envelope %q -> %q", d.from, d.to)
	}
	if !strings.Contains(d.data, "From: Riverside via Haven <no-reply@clinic.example>") || !strings.Contains(d.data, "tok-XYZ") {
		t.Fatalf("relay received:\n%s", d.data)
	}
	if left := spooled(t, dir); len(left) != 0 {
		t.Fatalf("delivered message still spooled: %v", left)
	}
}

func TestImplicitTLSRelay(t *testing.T) {
	r := startRelay(t, relayOptions{implicit: true})
	c := r.client(t, "smtps")
	if !c.ImplicitTLS {
		t.Fatal("smtps:// did not select implicit TLS")
	}
	raw, _ := Encode(resetMessage, From, time.Now())
	if err := c.Deliver(t.Context(), "pat@example.org", raw); err != nil {
		t.Fatal(err)
	}
	if got := r.got(); len(got) != 1 || !got[0].tls {
		t.Fatalf("relay got %+v", got)
	}
}

// A relay (or a man in the middle) that offers no STARTTLS gets nothing:
// not the password, not the link. The message stays spooled.
func TestRelayWithoutSTARTTLSGetsNothing(t *testing.T) {
	r := startRelay(t, relayOptions{noTLS: true})
	sp, dir := newSpool(t, r.client(t, "smtp"))
	if err := sp.Send(t.Context(), resetMessage); err != nil {
		t.Fatal(err)
	}
	err := sp.Flush(t.Context())
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Flush = %v, want a refusal naming STARTTLS", err)
	}
	if got := r.got(); len(got) != 0 {
		t.Fatalf("relay without TLS received %d messages", len(got))
	}
	if left := spooled(t, dir); len(left) != 1 {
		t.Fatalf("spool holds %v, want the message kept", left)
	}
}

func TestRelayWithAnUntrustedCertificateGetsNothing(t *testing.T) {
	r := startRelay(t, relayOptions{})
	c := r.client(t, "smtp")
	c.RootCAs = x509.NewCertPool() // trusts nothing
	raw, _ := Encode(resetMessage, From, time.Now())
	if err := c.Deliver(t.Context(), "pat@example.org", raw); err == nil {
		t.Fatal("delivered to a relay whose certificate is not trusted")
	}
	if got := r.got(); len(got) != 0 {
		t.Fatalf("relay received %d messages", len(got))
	}
}

func TestWrongRelayPasswordKeepsTheMessageAndNeverLogsThePassword(t *testing.T) {
	r := startRelay(t, relayOptions{})
	c := r.client(t, "smtp")
	c.Password = "wrong-password-123"
	sp, dir := newSpool(t, c)
	sp.Send(t.Context(), resetMessage)
	err := sp.Flush(t.Context())
	if err == nil {
		t.Fatal("Flush succeeded with a wrong password")
	}
	if strings.Contains(err.Error(), "wrong-password-123") || strings.Contains(err.Error(), "pat@example.org") {
		t.Fatalf("error repeats a secret or the recipient: %v", err)
	}
	if len(spooled(t, dir)) != 1 {
		t.Fatal("message lost after an authentication failure")
	}
}

// A message the relay refuses for good moves aside; the others still go.
func TestRejectedMessageMovesToFailedAndTheRestAreDelivered(t *testing.T) {
	r := startRelay(t, relayOptions{rejectTo: "gone@example.org"})
	sp, dir := newSpool(t, r.client(t, "smtp"))
	sp.Send(t.Context(), Message{To: "gone@example.org", Subject: "s", Text: "t"})
	sp.Send(t.Context(), resetMessage)
	if err := sp.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := r.got(); len(got) != 1 || got[0].to != "pat@example.org" {
		t.Fatalf("relay got %+v", got)
	}
	if left := spooled(t, dir); len(left) != 0 {
		t.Fatalf("spool still holds %v", left)
	}
	if failed := spooled(t, filepath.Join(dir, "failed")); len(failed) != 1 {
		t.Fatalf("failed/ holds %v, want the rejected message", failed)
	}
}

// What Send acknowledged survives the relay being down and the process
// going away: a new Spool over the same directory delivers it once the
// relay is back.
func TestSpooledMessagesSurviveARelayOutageAndARestart(t *testing.T) {
	r := startRelay(t, relayOptions{})
	addr := r.addr
	r.stop()
	c := r.client(t, "smtp")
	sp, dir := newSpool(t, c)
	if err := sp.Send(t.Context(), resetMessage); err != nil {
		t.Fatal(err)
	}
	if err := sp.Flush(t.Context()); err == nil {
		t.Fatal("Flush succeeded with the relay down")
	}
	if len(spooled(t, dir)) != 1 {
		t.Fatal("message lost while the relay was down")
	}

	r2 := startRelay(t, relayOptions{addr: addr})
	c.RootCAs = r2.roots
	restarted := NewSpool(&Dir{Path: dir}, c, nil)
	restarted.Retry = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { restarted.Run(ctx); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(r2.got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if got := r2.got(); len(got) != 1 {
		t.Fatalf("after the restart the relay got %d messages, want 1", len(got))
	}
	if left := spooled(t, dir); len(left) != 0 {
		t.Fatalf("spool still holds %v", left)
	}
}

func TestParseSMTPURL(t *testing.T) {
	for _, tc := range []struct {
		in, addr, user string
		implicit       bool
	}{
		{"smtp://mail.example.org", "mail.example.org:587", "", false},
		{"smtp://haven@mail.example.org:2525", "mail.example.org:2525", "haven", false},
		{"smtps://mail.example.org", "mail.example.org:465", "", true},
	} {
		s, err := ParseSMTPURL(tc.in)
		if err != nil || s.Addr != tc.addr || s.Username != tc.user || s.ImplicitTLS != tc.implicit {
			t.Errorf("ParseSMTPURL(%q) = %+v, %v", tc.in, s, err)
		}
	}
	for _, bad := range []string{"", "mail.example.org", "http://mail.example.org", "smtp://mail.example.org:0",
		"smtp://mail.example.org/x", "smtp://u:hunter2@mail.example.org"} {
		_, err := ParseSMTPURL(bad)
		if err == nil {
			t.Errorf("ParseSMTPURL(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error repeats the password: %v", err)
		}
	}
}

package outbox

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"haven/internal/testkit"
)

// client returns an SMTP client of relay r over scheme.
func client(t *testing.T, r *testkit.SMTPRelay, scheme string) *SMTP {
	t.Helper()
	s, err := ParseSMTPURL(scheme + "://" + r.User + "@" + r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	s.Password, s.From, s.RootCAs, s.Timeout = r.Password, "no-reply@clinic.example", r.Roots, 10*time.Second
	return s
}

// testKey is the outbox key of the spools in these tests.
var testKey = []byte("0123456789abcdef0123456789abcdef")

func newSpool(t *testing.T, relay *SMTP) (*Spool, string) {
	dir := filepath.Join(t.TempDir(), "outbox")
	return NewSpool(&Dir{Path: dir, Key: testKey, From: "Riverside via Haven <no-reply@clinic.example>"}, relay, nil), dir
}

func spooled(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sealed") {
			names = append(names, e.Name())
		}
	}
	return names
}

var resetMessage = Message{To: "pat@example.org", Subject: "Reset your Haven password",
	Text: "Use this link within one hour:\nhttps://clinic.example/reset#tok-XYZ\n"}

func TestSpoolDeliversOverSTARTTLSWithAuthAndForgetsTheFile(t *testing.T) {
	r := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{})
	sp, dir := newSpool(t, client(t, r, "smtp"))
	if err := sp.Send(t.Context(), resetMessage); err != nil {
		t.Fatal(err)
	}
	if err := sp.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := r.Deliveries()
	if len(got) != 1 {
		t.Fatalf("relay accepted %d messages, want 1", len(got))
	}
	d := got[0]
	if !d.TLS || !d.Authed {
		t.Fatalf("delivery tls=%v authed=%v; want both", d.TLS, d.Authed)
	}
	if d.From != "no-reply@clinic.example" || d.To != "pat@example.org" {
		t.Fatalf("envelope %q -> %q", d.From, d.To)
	}
	if !strings.Contains(d.Data, "From: Riverside via Haven <no-reply@clinic.example>") || !strings.Contains(d.Data, "tok-XYZ") {
		t.Fatalf("relay received:\n%s", d.Data)
	}
	if left := spooled(t, dir); len(left) != 0 {
		t.Fatalf("delivered message still spooled: %v", left)
	}
}

func TestImplicitTLSRelay(t *testing.T) {
	r := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{ImplicitTLS: true})
	c := client(t, r, "smtps")
	if !c.ImplicitTLS {
		t.Fatal("smtps:// did not select implicit TLS")
	}
	raw, _ := Encode(resetMessage, From, time.Now())
	if err := c.Deliver(t.Context(), "pat@example.org", raw); err != nil {
		t.Fatal(err)
	}
	if got := r.Deliveries(); len(got) != 1 || !got[0].TLS {
		t.Fatalf("relay got %+v", got)
	}
}

// A relay (or a man in the middle) that offers no STARTTLS gets nothing:
// not the password, not the link. The message stays spooled.
func TestRelayWithoutSTARTTLSGetsNothing(t *testing.T) {
	r := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{NoTLS: true})
	sp, dir := newSpool(t, client(t, r, "smtp"))
	if err := sp.Send(t.Context(), resetMessage); err != nil {
		t.Fatal(err)
	}
	err := sp.Flush(t.Context())
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Flush = %v, want a refusal naming STARTTLS", err)
	}
	if got := r.Deliveries(); len(got) != 0 {
		t.Fatalf("relay without TLS received %d messages", len(got))
	}
	if left := spooled(t, dir); len(left) != 1 {
		t.Fatalf("spool holds %v, want the message kept", left)
	}
}

func TestRelayWithAnUntrustedCertificateGetsNothing(t *testing.T) {
	r := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{})
	c := client(t, r, "smtp")
	c.RootCAs = x509.NewCertPool() // trusts nothing
	raw, _ := Encode(resetMessage, From, time.Now())
	if err := c.Deliver(t.Context(), "pat@example.org", raw); err == nil {
		t.Fatal("delivered to a relay whose certificate is not trusted")
	}
	if got := r.Deliveries(); len(got) != 0 {
		t.Fatalf("relay received %d messages", len(got))
	}
}

func TestWrongRelayPasswordKeepsTheMessageAndNeverLogsThePassword(t *testing.T) {
	r := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{})
	c := client(t, r, "smtp")
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
	r := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{RejectTo: "gone@example.org"})
	sp, dir := newSpool(t, client(t, r, "smtp"))
	sp.Send(t.Context(), Message{To: "gone@example.org", Subject: "s", Text: "t"})
	sp.Send(t.Context(), resetMessage)
	if err := sp.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := r.Deliveries(); len(got) != 1 || got[0].To != "pat@example.org" {
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
	r := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{})
	addr := r.Addr
	r.Stop()
	c := client(t, r, "smtp")
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

	r2 := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{Addr: addr})
	c.RootCAs = r2.Roots
	restarted := NewSpool(&Dir{Path: dir, Key: testKey}, c, nil)
	restarted.Retry = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { restarted.Run(ctx); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(r2.Deliveries()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if got := r2.Deliveries(); len(got) != 1 {
		t.Fatalf("after the restart the relay got %d messages, want 1", len(got))
	}
	if left := spooled(t, dir); len(left) != 0 {
		t.Fatalf("spool still holds %v", left)
	}
}

// Relays repeat the recipient in their answers; what Haven logs of them is
// the step and the code, never the text.
func TestRelayAnswersAreLoggedWithoutTheirText(t *testing.T) {
	r := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{RejectTo: "gone@example.org"})
	raw, _ := Encode(Message{To: "gone@example.org", Subject: "s", Text: "t"}, From, time.Now())
	err := client(t, r, "smtp").Deliver(t.Context(), "gone@example.org", raw)
	var rejected errRejected
	if !errors.As(err, &rejected) {
		t.Fatalf("Deliver = %v, want a rejection", err)
	}
	if strings.Contains(err.Error(), "gone@example.org") || !strings.Contains(err.Error(), "550") {
		t.Fatalf("the error repeats the relay's text or lacks its code: %v", err)
	}
}

// A relay that refuses Haven's sender refuses every message alike: the
// spool keeps them for when the relay is set up, rather than discarding
// each as rejected.
func TestARelayRefusingTheSenderKeepsEveryMessage(t *testing.T) {
	r := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{RejectFrom: true})
	sp, dir := newSpool(t, client(t, r, "smtp"))
	sp.Send(t.Context(), resetMessage)
	sp.Send(t.Context(), resetMessage)
	if err := sp.Flush(t.Context()); err == nil {
		t.Fatal("Flush succeeded against a relay refusing the sender")
	}
	if left := spooled(t, dir); len(left) != 2 {
		t.Fatalf("spool holds %v, want both messages kept", left)
	}
	if failed := spooled(t, filepath.Join(dir, "failed")); len(failed) != 0 {
		t.Fatalf("messages discarded as rejected: %v", failed)
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

// A spooled file that does not open under the spool's key (written with
// another key, or edited) goes to failed/ and the rest is delivered.
func TestSpoolSetsAsideMailItCannotOpen(t *testing.T) {
	r := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{})
	sp, dir := newSpool(t, client(t, r, "smtp"))
	stranger := &Dir{Path: dir, Key: []byte("not the spool's key, 32 bytes...")}
	if err := stranger.Send(t.Context(), resetMessage); err != nil {
		t.Fatal(err)
	}
	if err := sp.Send(t.Context(), resetMessage); err != nil {
		t.Fatal(err)
	}
	if err := sp.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := r.Deliveries(); len(got) != 1 || got[0].To != resetMessage.To {
		t.Fatalf("delivered %+v", got)
	}
	if left := spooled(t, dir); len(left) != 0 {
		t.Fatalf("spool still holds %v", left)
	}
	if failed := spooled(t, filepath.Join(dir, "failed")); len(failed) != 1 {
		t.Fatalf("failed/ holds %v, want the unreadable message", failed)
	}
}

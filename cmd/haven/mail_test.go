package main_test

import (
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"haven/internal/testkit"
)

// With --smtp-url, a password-reset email reaches the practice's relay over
// TLS, authenticated, from --mail-from, and leaves nothing in the spool.
func TestServeSendsMailThroughTheRelay(t *testing.T) {
	relay := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{})
	dir := t.TempDir()
	ca := filepath.Join(dir, "relay-ca.pem")
	if err := os.WriteFile(ca, relay.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	s := startServe(t, dataDir, "--demo", "--smtp-url", "smtp://"+relay.User+"@"+relay.Addr,
		"--smtp-password", relay.Password, "--smtp-ca", ca, "--mail-from", "no-reply@clinic.example")

	const who = "frontdesk@riverside.example"
	resp, err := insecureClient.PostForm(s.URL+"/reset", url.Values{"email": {who}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /reset: %d", resp.StatusCode)
	}
	got := relay.WaitDeliveries(t, 1)
	d := got[0]
	if d.To != who || d.From != "no-reply@clinic.example" || !d.TLS || !d.Authed {
		t.Fatalf("delivery to %q from %q tls=%v authed=%v", d.To, d.From, d.TLS, d.Authed)
	}
	if !strings.Contains(d.Data, "/reset/") || !strings.Contains(d.Data, "no-reply@clinic.example") {
		t.Fatalf("the relay received:\n%s", d.Data)
	}
	// Delivered mail is removed from the spool.
	deadline := time.Now().Add(time.Minute)
	for {
		entries, _ := filepath.Glob(filepath.Join(dataDir, "outbox", "*.sealed"))
		if len(entries) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered mail still spooled: %v", entries)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Without a relay, email waits in <data-dir>/outbox: sealed, so the
// patient's address and the link are nowhere on disk in the clear, and
// readable by the operator with `haven outbox`.
func TestSpooledMailHoldsNoAddressInTheClear(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServe(t, dataDir, "--demo")
	const who = "maria.lopez@patients.example"
	resp, err := insecureClient.PostForm(s.URL+"/reset", url.Values{"email": {who}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var files []string
	deadline := time.Now().Add(time.Minute)
	for len(files) == 0 && time.Now().Before(deadline) {
		files, _ = filepath.Glob(filepath.Join(dataDir, "outbox", "*.sealed"))
		time.Sleep(20 * time.Millisecond)
	}
	if len(files) == 0 {
		t.Fatal("no reset email spooled")
	}
	// Every file of the data dir outside the database: the outbox, its
	// temporary files, anything else written beside it.
	filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || strings.HasPrefix(d.Name(), "haven.db") {
			return nil
		}
		b, _ := os.ReadFile(p)
		if strings.Contains(strings.ToLower(string(b)), "maria.lopez") {
			t.Errorf("%s holds the patient's address in the clear", p)
		}
		return nil
	})
	code, out, errOut := runHaven(t, nil, "outbox", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "To: <"+who+">") || !strings.Contains(out, "/reset/") {
		t.Fatalf("haven outbox: %d\n%s%s", code, out, errOut)
	}
	// Links lead to the address the server announced, so a reader lands
	// on the same origin (signed in, where they were), not on another
	// name for the same machine; so do the demo's registration pages.
	if !strings.Contains(out, s.URL+"/reset/") {
		t.Errorf("the emailed link is not on the announced %s:\n%s", s.URL, out)
	}
	if printed := s.out.String(); !strings.Contains(printed, s.URL+"/register/") {
		t.Errorf("the demo's registration pages are not on the announced %s:\n%s", s.URL, printed)
	}
}

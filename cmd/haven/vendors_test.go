package main_test

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"haven/internal/testkit"
)

// An operator keeps the platform's vendor registry from the command line:
// add, list, update (a renewed agreement), retire, each audited (the
// audit log still verifies); a wrong kind is refused with one line.
func TestVendorsCommandKeepsTheRegistry(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	code, out, errOut := runHaven(t, nil, "vendors", "add", "--data-dir", dataDir, "--name", "Object store West", "--kind", "object_storage",
		"--endpoint", "s3.west.example:443", "--phi", "full", "--baa-signed", "2026-01-05", "--baa-expires", "2026-02-01",
		"--baa-document", "contracts/s3-west.pdf", "--contact", "legal@west.example")
	if code != 0 {
		t.Fatalf("vendors add: exit %d\n%s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`vendor ([a-z0-9]+) registered`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no id printed:\n%s", out)
	}
	id := m[1]
	if !strings.Contains(out, "warning: agreement ended 2026-02-01") {
		t.Fatalf("an ended agreement was not called out:\n%s", out)
	}
	code, out, _ = runHaven(t, nil, "vendors", "list", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "receives nothing") {
		t.Fatalf("vendors list: exit %d\n%s", code, out)
	}
	code, out, errOut = runHaven(t, nil, "vendors", "update", "--data-dir", dataDir, "--id", id, "--baa-expires", "2099-12-31")
	if code != 0 || !strings.Contains(out, "updated") || strings.Contains(out, "warning") {
		t.Fatalf("vendors update: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runHaven(t, nil, "vendors", "list", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "agreement until 2099-12-31") {
		t.Fatalf("after renewal: exit %d\n%s", code, out)
	}
	code, _, errOut = runHaven(t, nil, "vendors", "add", "--data-dir", dataDir, "--name", "Fax", "--kind", "fax", "--endpoint", "fax.example:25", "--phi", "none")
	if code != 1 || !strings.Contains(errOut, "kind") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("an unknown kind: exit %d, %q", code, errOut)
	}
	if code, out, errOut = runHaven(t, nil, "vendors", "retire", "--data-dir", dataDir, "--id", id); code != 0 {
		t.Fatalf("vendors retire: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runHaven(t, nil, "vendors", "list", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "[retired]") {
		t.Fatalf("after retiring: exit %d\n%s", code, out)
	}
	code, out, errOut = runHaven(t, nil, "audit", "export", "--data-dir", dataDir)
	for _, act := range []string{"vendor.add", "vendor.update", "vendor.retire"} {
		if code != 0 || !strings.Contains(out, `"`+act+`"`) {
			t.Fatalf("audit export lacks %s: exit %d %s", act, code, errOut)
		}
	}
	if code, out, errOut = runHaven(t, nil, "audit", "verify", "--data-dir", dataDir); code != 0 {
		t.Fatalf("audit verify: exit %d\n%s%s", code, out, errOut)
	}
}

// `haven serve` registers the mail relay it is configured with and says
// it has no agreement on file (it receives no PHI, so mail still goes);
// once the operator retires it, the relay gets nothing and mail stays
// spooled.
func TestServeRecognizesItsRelayAndARetiredOneGetsNothing(t *testing.T) {
	relay := testkit.StartSMTPRelay(t, testkit.SMTPRelayOptions{})
	dir := t.TempDir()
	ca := filepath.Join(dir, "relay-ca.pem")
	if err := os.WriteFile(ca, relay.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	args := []string{"--demo", "--smtp-url", "smtp://" + relay.User + "@" + relay.Addr,
		"--smtp-password", relay.Password, "--smtp-ca", ca, "--mail-from", "no-reply@clinic.example"}
	s := startServe(t, dataDir, args...)
	m := regexp.MustCompile(`vendor without a current business associate agreement: Email relay (\S+) .*--id ([a-z0-9]+)`).FindStringSubmatch(s.out.String())
	if m == nil || m[1] != relay.Addr {
		t.Fatalf("serve did not name its relay as lacking an agreement:\n%s", s.out)
	}
	relayID := m[2]
	reset := func(url0 string) {
		resp, err := insecureClient.PostForm(url0+"/reset", url.Values{"email": {"frontdesk@riverside.example"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	reset(s.URL)
	relay.WaitDeliveries(t, 1)
	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done

	if code, out, errOut := runHaven(t, nil, "vendors", "retire", "--data-dir", dataDir, "--id", relayID); code != 0 {
		t.Fatalf("vendors retire: exit %d\n%s%s", code, out, errOut)
	}
	s = startServe(t, dataDir, args...)
	if !strings.Contains(s.out.String(), "retired") {
		t.Fatalf("serve did not say its relay is retired:\n%s", s.out)
	}
	reset(s.URL)
	deadline := time.Now().Add(time.Minute)
	for {
		if entries, _ := filepath.Glob(filepath.Join(dataDir, "outbox", "*.sealed")); len(entries) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reset email never reached the spool")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the delivery loop has run
	if n := len(relay.Deliveries()); n != 1 {
		t.Fatalf("the retired relay received %d messages, want only the first", n)
	}
	if entries, _ := filepath.Glob(filepath.Join(dataDir, "outbox", "*.sealed")); len(entries) == 0 {
		t.Fatal("mail for a retired relay left the spool")
	}
}

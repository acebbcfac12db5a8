package main_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An operator brings a clinic onto a fresh server: `haven practice create`
// makes the practice and an invitation for its administrator, the
// invitation works once on the running server, and the audit log records
// the provisioning and still verifies.
func TestPracticeCreateInvitesTheFirstAdministrator(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	code, out, errOut := runHaven(t, nil, "practice", "create", "--data-dir", dataDir,
		"--name", "Lakeside Family Medicine", "--admin-email", "Admin@Lakeside.example", "--public-url", "https://clinic.example")
	if code != 0 {
		t.Fatalf("practice create: exit %d\n%s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`https://clinic\.example(/invite/[A-Za-z0-9_-]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no invitation link printed:\n%s", out)
	}
	invite := m[1]

	// The same link went to the outbox, addressed to the administrator,
	// sealed on disk: `haven outbox` reads it.
	mails, _ := filepath.Glob(filepath.Join(dataDir, "outbox", "*"))
	if len(mails) != 1 {
		t.Fatalf("outbox holds %v, want one invitation", mails)
	}
	if raw, _ := os.ReadFile(mails[0]); strings.Contains(strings.ToLower(string(raw)), "lakeside.example") {
		t.Fatalf("the spooled invitation holds the address in the clear")
	}
	code, raw, errOut := runHaven(t, nil, "outbox", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(raw, "To: <admin@lakeside.example>") || !strings.Contains(strings.ReplaceAll(raw, "=\r\n", ""), invite) {
		t.Fatalf("haven outbox: %d\n%s%s", code, raw, errOut)
	}

	code, out, _ = runHaven(t, nil, "practice", "list", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "Lakeside Family Medicine") {
		t.Fatalf("practice list: exit %d\n%s", code, out)
	}

	s := startServe(t, dataDir)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: insecureClient.Transport, Timeout: insecureClient.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(s.URL + invite)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", "the invitation", resp.StatusCode)
	}
	accept := func() int {
		resp, err := c.PostForm(s.URL+invite, url.Values{"name": {"Ada Admin"}, "password": {"lakeside-harbor-admin-2026"},
			"confirm": {"lakeside-harbor-admin-2026"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := accept(); got != http.StatusSeeOther {
		t.Fatalf("accepting the invitation: %d, want 303 to enrolment", got)
	}
	if got := accept(); got == http.StatusSeeOther || got == 200 {
		t.Fatalf("the invitation worked twice (%d)", got)
	}
	forged, _ := c.Get(s.URL + "/invite/" + strings.Repeat("A", 43))
	forged.Body.Close()
	if forged.StatusCode == 200 {
		t.Fatal("a forged invitation token opened the page")
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after SIGTERM")
	}

	code, out, errOut = runHaven(t, nil, "audit", "verify", "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("audit verify after provisioning: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runHaven(t, nil, "audit", "export", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "practice.provision") {
		t.Fatalf("audit export has no practice.provision event (exit %d)", code)
	}
}

func TestPracticeCreateRefusesBadInputAndCreatesNothing(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	for _, args := range [][]string{
		{"--name", "Lakeside", "--admin-email", "not-an-email"},
		{"--name", "   ", "--admin-email", "admin@lakeside.example"},
		{"--name", "Lakeside", "--admin-email", "admin@lakeside.example", "--public-url", "http://clinic.example"},
		{"--admin-email", "admin@lakeside.example"},
	} {
		code, out, errOut := runHaven(t, nil, append([]string{"practice", "create", "--data-dir", dataDir}, args...)...)
		if code == 0 {
			t.Fatalf("practice create %v: exit 0\n%s", args, out)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "haven.db")); err == nil {
			t.Fatalf("practice create %v: refused, yet a database was created", args)
		}
		if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) != 1 {
			t.Fatalf("practice create %v: want one line of error, got:\n%s", args, errOut)
		}
	}
	code, out, _ := runHaven(t, nil, "practice", "list", "--data-dir", dataDir)
	if code != 0 || strings.Contains(out, "Lakeside") {
		t.Fatalf("after refused creates, practice list: exit %d\n%s", code, out)
	}
}

// TestPracticeNetworksUnlockAPracticeOnARunningServer: a workforce network
// list set from the command line that leaves out every address the
// practice uses locks its clinician out on the running server at once;
// a list that does not parse is refused naming it and changes nothing;
// `--clear` lets her in again on the very next request; and each change
// is an operator event in the practice's audit log that still verifies.
func TestPracticeNetworksUnlockAPracticeOnARunningServer(t *testing.T) {
	for name, dbArgs := range databaseArgs(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			s := startServe(t, dataDir, append([]string{"--demo"}, dbArgs...)...)
			doc := newAPIClient(t, s.URL)
			doc.signInWorkforce("rivera@riverside.example")
			networks := func(extra ...string) (int, string, string) {
				t.Helper()
				args := append([]string{"practice", "networks", "--practice", "riverside family clinic", "--data-dir", dataDir}, dbArgs...)
				return runHaven(t, nil, append(args, extra...)...)
			}
			if code, _ := doc.patients(); code != http.StatusOK {
				t.Fatalf("before any list: %d", code)
			}
			if code, out, errOut := networks(); code != 0 || !strings.Contains(out, "any network") {
				t.Fatalf("showing no list: %d\n%s%s", code, out, errOut)
			}

			code, out, errOut := networks("--set", "10.20.0.0/16, 192.0.2.7")
			if code != 0 || !strings.Contains(out, "only from 10.20.0.0/16, 192.0.2.7") {
				t.Fatalf("--set: %d\n%s%s", code, out, errOut)
			}
			if code, _ := doc.patients(); code != http.StatusForbidden {
				t.Fatalf("from outside the list the clinician got %d", code)
			}

			code, out, errOut = networks("--set", "10.0.0.0/33")
			if code == 0 || !strings.Contains(errOut, `"10.0.0.0/33" is not a network`) {
				t.Fatalf("a bad network: %d\n%s%s", code, out, errOut)
			}
			if code, out, _ := networks(); code != 0 || !strings.Contains(out, "only from 10.20.0.0/16, 192.0.2.7") {
				t.Fatalf("a refused list changed the stored one: %s", out)
			}
			if code, _, errOut := networks("--set", "10.0.0.0/8", "--clear"); code == 0 || !strings.Contains(errOut, "not both") {
				t.Fatalf("--set with --clear: %d %s", code, errOut)
			}

			if code, out, errOut := networks("--clear"); code != 0 || !strings.Contains(out, "any network") {
				t.Fatalf("--clear: %d\n%s%s", code, out, errOut)
			}
			if code, _ := doc.patients(); code != http.StatusOK {
				t.Fatalf("after --clear the clinician got %d", code)
			}

			code, out, errOut = runHaven(t, nil, append([]string{"audit", "export", "--data-dir", dataDir}, dbArgs...)...)
			if code != 0 || strings.Count(out, "settings.networks_by_operator") != 2 {
				t.Fatalf("the operator's two changes in the audit log: %d\n%s", code, errOut)
			}
			if code, out, errOut := runHaven(t, nil, append([]string{"audit", "verify", "--data-dir", dataDir}, dbArgs...)...); code != 0 {
				t.Fatalf("audit verify: %d\n%s%s", code, out, errOut)
			}
		})
	}
}

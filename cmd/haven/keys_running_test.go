package main_test

import (
	"io"
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

	"haven/demo"
	"haven/internal/testkit"
)

// databaseArgs returns, per database the tests run on, the flags that
// select it: SQLite under the data dir always, PostgreSQL when available.
func databaseArgs(t *testing.T) map[string][]string {
	dbs := map[string][]string{"sqlite": nil}
	if !testkit.SQLiteOnly() && (os.Getenv("HAVEN_TEST_POSTGRES") != "" || testkit.InCI()) {
		dbs["postgres"] = []string{"--db", testkit.Postgres(t)}
	}
	return dbs
}

type patientLine struct {
	PatientID string `json:"patient_id"`
	Name      string `json:"name"`
	Erased    bool   `json:"erased"`
	ErasedAt  string `json:"erased_at"`
}

func (c *apiClient) patients() (int, []patientLine) {
	c.t.Helper()
	var out struct{ Patients []patientLine }
	code, err := c.call("GET", "/api/v1/patients", nil, &out)
	if err != nil {
		c.t.Fatal(err)
	}
	return code, out.Patients
}

// signInPatient signs a demo patient in through the JSON API (patients
// have no second factor unless they add one).
func (c *apiClient) signInPatient(email string) int {
	c.t.Helper()
	var res struct{ Stage, Token string }
	code, err := c.call("POST", "/api/v1/session", map[string]string{"email": email, "password": demo.Password}, &res)
	if err != nil {
		c.t.Fatal(err)
	}
	c.token = res.Token
	return code
}

// TestShredOnARunningServerIsInForceBeforeTheCommandReturns erases a
// patient with `haven keys shred` while a server that has just opened her
// chart is running: the server's very next request cannot open it, and the
// patient lists keep answering, with her as an erased line for the front
// desk and gone from her clinician's list, before and after a restart.
func TestShredOnARunningServerIsInForceBeforeTheCommandReturns(t *testing.T) {
	for name, dbArgs := range databaseArgs(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			s := startServe(t, dataDir, append([]string{"--demo"}, dbArgs...)...)
			desk := newAPIClient(t, s.URL)
			desk.signInWorkforce("frontdesk@riverside.example")
			doc := newAPIClient(t, s.URL)
			doc.signInWorkforce("rivera@riverside.example")
			_, before := desk.patients()
			var maria string
			for _, p := range before {
				if p.Name == "Maria Lopez" {
					maria = p.PatientID
				}
			}
			if maria == "" {
				t.Fatalf("no demo patient in %+v", before)
			}
			if code, _ := desk.call("GET", "/api/v1/patients/"+maria, nil, nil); code != http.StatusOK {
				t.Fatalf("chart before the shred: %d", code)
			}
			if _, l := doc.patients(); len(l) != 2 {
				t.Fatalf("clinician's list before the shred: %+v", l)
			}

			code, out, errOut := runHaven(t, nil, append([]string{"keys", "shred", "--patient", maria, "--data-dir", dataDir}, dbArgs...)...)
			if code != 0 {
				t.Fatalf("keys shred: %d\n%s%s", code, out, errOut)
			}
			today := time.Now().UTC().Format("2006-01-02")
			check := func(s *server) {
				t.Helper()
				if code, _ := desk.call("GET", "/api/v1/patients/"+maria, nil, nil); code != http.StatusNotFound {
					t.Fatalf("the running server still serves the erased chart: %d", code)
				}
				code, l := desk.patients()
				if code != http.StatusOK || len(l) != len(before) {
					t.Fatalf("front desk list after the shred: %d %+v", code, l)
				}
				for _, p := range l {
					if p.PatientID == maria && (!p.Erased || p.Name != "" || !strings.HasPrefix(p.ErasedAt, today)) {
						t.Fatalf("erased patient's line: %+v", p)
					}
					if p.PatientID != maria && (p.Erased || p.Name == "") {
						t.Fatalf("another patient's line: %+v", p)
					}
				}
				code, l = doc.patients()
				if code != http.StatusOK || len(l) != 1 || l[0].PatientID == maria {
					t.Fatalf("clinician's list after the shred: %d %+v", code, l)
				}
			}
			check(s)
			s.cmd.Process.Signal(syscall.SIGTERM)
			<-s.done
			s = startServe(t, dataDir, dbArgs...)
			desk.base, doc.base = s.URL, s.URL
			check(s)
		})
	}
}

var invitePathRE = regexp.MustCompile(`(/invite/[A-Za-z0-9_-]+)`)

// TestRootRotationOnARunningServerKeepsItWorking rotates the root with
// `haven keys rotate --root` while a server runs that has not unwrapped
// any key yet: with no restart it signs people in, lists and creates
// patients, all under keys now wrapped by the new root. Then a root it
// cannot find (the file removed before it loaded it) fails requests with
// an internal error whose root ids are in the log, never in the response.
func TestRootRotationOnARunningServerKeepsItWorking(t *testing.T) {
	for name, dbArgs := range databaseArgs(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			s := startServe(t, dataDir, append([]string{"--demo"}, dbArgs...)...)
			s.cmd.Process.Signal(syscall.SIGTERM)
			<-s.done
			s = startServe(t, dataDir, dbArgs...) // nothing unwrapped yet
			rotate := func() {
				t.Helper()
				code, out, errOut := runHaven(t, nil, append([]string{"keys", "rotate", "--root", "--data-dir", dataDir}, dbArgs...)...)
				if code != 0 || !strings.Contains(out, "root rotated") {
					t.Fatalf("rotate --root: %d\n%s%s", code, out, errOut)
				}
			}
			rotate()

			pat := newAPIClient(t, s.URL)
			if code := pat.signInPatient("maria.lopez@patients.example"); code != http.StatusOK || pat.token == "" {
				t.Fatalf("patient sign-in after the rotation: %d\n%s", code, s.errOut.String())
			}
			desk := newAPIClient(t, s.URL)
			desk.signInWorkforce("frontdesk@lakeshore.example")
			if code, l := desk.patients(); code != http.StatusOK || len(l) != 2 {
				t.Fatalf("patient list after the rotation: %d %+v", code, l)
			}
			var created struct {
				PatientID string `json:"patient_id"`
			}
			code, err := desk.call("POST", "/api/v1/patients", map[string]any{"mrn": "ROT-1",
				"demographics": map[string]string{"name": "Rotated Root", "date_of_birth": "1990-01-01"},
				"contact":      map[string]string{"email": "rotated@patients.example"}}, &created)
			if err != nil || code != http.StatusCreated {
				t.Fatalf("creating a patient after the rotation: %d %v", code, err)
			}
			if code, _ := desk.call("GET", "/api/v1/patients/"+created.PatientID, nil, nil); code != http.StatusOK {
				t.Fatalf("reading the new patient: %d", code)
			}
			code, out, _ := runHaven(t, nil, append([]string{"keys", "status", "--data-dir", dataDir}, dbArgs...)...)
			if code != 0 || strings.Contains(out, "old root") {
				t.Fatalf("status after the rotation:\n%s", out)
			}

			// Rotate again, make a practice whose keys the server has never
			// held, and take the new root file away before the server
			// loads it.
			rotate()
			code, out, errOut := runHaven(t, nil, append([]string{"practice", "create", "--data-dir", dataDir, "--name", "Hillside Clinic",
				"--admin-email", "admin@hillside.example", "--public-url", "https://clinic.example"}, dbArgs...)...)
			m := invitePathRE.FindStringSubmatch(out)
			if code != 0 || m == nil {
				t.Fatalf("practice create: %d\n%s%s", code, out, errOut)
			}
			rootKey := filepath.Join(dataDir, "keys", "root.key")
			raw, _ := os.ReadFile(rootKey)
			newRootID := rootIDOf(t, dataDir, dbArgs)
			if err := os.Remove(rootKey); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.WriteFile(rootKey, raw, 0o600) })
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, Transport: insecureClient.Transport, Timeout: insecureClient.Timeout,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			var resp *http.Response
			for _, step := range []func() (*http.Response, error){
				func() (*http.Response, error) { return c.Get(s.URL + m[1]) },
				func() (*http.Response, error) {
					return c.PostForm(s.URL+m[1], url.Values{"name": {"Hana Hill"}, "password": {"hillside-harbor-admin-2026"},
						"confirm": {"hillside-harbor-admin-2026"}})
				},
			} {
				if resp, err = step(); err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode >= 500 {
					break
				}
				resp.Body.Close()
			}
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("a key under a root the server cannot find: %d\n%s", resp.StatusCode, body)
			}
			if strings.Contains(body, "local:") || strings.Contains(body, strings.TrimPrefix(newRootID, "local:")) || !strings.Contains(body, "Internal error.") {
				t.Fatalf("the response names a root or says more than 'Internal error.':\n%s", body)
			}
			// The server writes its log line beside the response, through a
			// pipe this test reads: wait for it rather than race it.
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(s.errOut.String(), newRootID) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if log := s.errOut.String(); !strings.Contains(log, newRootID) {
				t.Fatalf("the log does not name the missing root %s:\n%s", newRootID, log)
			}
		})
	}
}

// rootIDOf returns the current root's id from `haven keys status`.
func rootIDOf(t *testing.T, dataDir string, dbArgs []string) string {
	t.Helper()
	code, out, errOut := runHaven(t, nil, append([]string{"keys", "status", "--data-dir", dataDir}, dbArgs...)...)
	m := regexp.MustCompile(`(?m)^root (local:\S+)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("keys status: %d\n%s%s", code, out, errOut)
	}
	return m[1]
}

func readBody(t *testing.T, r *http.Response) string {
	t.Helper()
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// copyFile copies a key file with owner-only permissions.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRootRotationReachesAnotherNodeWithItsOwnKeyFiles is the procedure
// the README gives for several nodes on one database, each with its own
// copy of the keys: prepare the new root on one node, copy it beside the
// other node's root key, rotate; the other node keeps working without a
// restart, then swaps its own files with the same command and restarts
// on the new root alone.
func TestRootRotationReachesAnotherNodeWithItsOwnKeyFiles(t *testing.T) {
	for name, dbArgs := range databaseArgs(t) {
		t.Run(name, func(t *testing.T) {
			dir1, dir2 := t.TempDir(), t.TempDir()
			node1 := startServe(t, dir1, append([]string{"--demo"}, dbArgs...)...)
			shared := dbArgs
			if shared == nil {
				shared = []string{"--db", filepath.Join(dir1, "haven.db")}
			}
			for _, f := range []string{"root.key", "audit.key", "audit.pub", "video.key"} {
				copyFile(t, filepath.Join(dir1, "keys", f), filepath.Join(dir2, "keys", f))
			}
			node2Args := append([]string{"--audit-witness", filepath.Join(dir1, "witness")}, shared...)
			node2 := startServe(t, dir2, node2Args...)

			code, out, errOut := runHaven(t, nil, append([]string{"keys", "rotate", "--root", "--prepare", "--data-dir", dir1}, shared...)...)
			if code != 0 || !strings.Contains(out, "ready at") {
				t.Fatalf("rotate --root --prepare: %d\n%s%s", code, out, errOut)
			}
			if code, out, _ := runHaven(t, nil, append([]string{"keys", "status", "--data-dir", dir1}, shared...)...); code != 0 || strings.Contains(out, "old root") {
				t.Fatalf("--prepare moved keys:\n%s", out)
			}
			copyFile(t, filepath.Join(dir1, "keys", "root.key.new"), filepath.Join(dir2, "keys", "root.key.new"))
			code, out, errOut = runHaven(t, nil, append([]string{"keys", "rotate", "--root", "--data-dir", dir1}, shared...)...)
			if code != 0 || !strings.Contains(out, "root rotated") {
				t.Fatalf("rotate --root: %d\n%s%s", code, out, errOut)
			}

			// node2 never held a key before the rotation: everything it
			// opens now is under the new root, found in its root.key.new.
			for _, node := range []*server{node2, node1} {
				pat := newAPIClient(t, node.URL)
				if code := pat.signInPatient("ava.johnson@patients.example"); code != http.StatusOK {
					t.Fatalf("patient sign-in: %d\n%s", code, node.errOut.String())
				}
			}
			desk := newAPIClient(t, node2.URL)
			desk.signInWorkforce("frontdesk@lakeshore.example")
			if code, l := desk.patients(); code != http.StatusOK || len(l) != 2 {
				t.Fatalf("node2's patient list: %d %+v", code, l)
			}
			code, err := desk.call("POST", "/api/v1/patients", map[string]any{"mrn": "ROT-2",
				"demographics": map[string]string{"name": "Second Node", "date_of_birth": "1990-01-01"},
				"contact":      map[string]string{"email": "second.node@patients.example"}}, nil)
			if err != nil || code != http.StatusCreated {
				t.Fatalf("node2 creating a patient: %d %v", code, err)
			}

			// node2's operator finishes: nothing left to re-wrap, the files swap.
			code, out, errOut = runHaven(t, nil, append([]string{"keys", "rotate", "--root", "--data-dir", dir2}, shared...)...)
			if code != 0 || !strings.Contains(out, "root rotated") {
				t.Fatalf("finishing on node2: %d\n%s%s", code, out, errOut)
			}
			b1, _ := os.ReadFile(filepath.Join(dir1, "keys", "root.key"))
			b2, _ := os.ReadFile(filepath.Join(dir2, "keys", "root.key"))
			if string(b1) != string(b2) {
				t.Fatal("node2's root.key is not the new root")
			}
			node2.cmd.Process.Signal(syscall.SIGTERM)
			<-node2.done
			node2 = startServe(t, dir2, node2Args...)
			desk.base = node2.URL
			if code, l := desk.patients(); code != http.StatusOK || len(l) != 3 {
				t.Fatalf("node2 after its restart: %d %+v", code, l)
			}
		})
	}
}

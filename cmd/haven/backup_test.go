package main_test

import (
	"archive/tar"
	"bytes"
	"crypto/fips140"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"filippo.io/age"

	"haven/internal/testkit"
)

// backupMarker is seeded into an uploaded file; with the demo's names,
// emails and record numbers, it must never be found in a backup file.
const backupMarker = "BACKUP-PHI-MARKER-7Q3Z"

var demoPHI = []string{"Maria Lopez", "maria.lopez@patients.example", "RFC-10001", "John Chen", "john.chen@patients.example", "RFC-10002", "555-0102", backupMarker}

// upload sends a file of the patient's through the JSON API and returns its id.
func (c *apiClient) upload(patientID, name string, body []byte) string {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.base+"/api/v1/patients/"+patientID+"/files", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Haven-File-Name", url.PathEscape(name))
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b := readBody(c.t, resp)
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	var id string
	if i := strings.Index(b, `"id":"`); i >= 0 {
		id = b[i+6:]
		id = id[:strings.IndexByte(id, '"')]
	}
	return id
}

// get returns a GET's status and body.
func (c *apiClient) get(path string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, readBody(c.t, resp)
}

// patientView is what one demo patient sees of her own record: her chart,
// her files and one file's content.
func patientView(t *testing.T, base, email, patientID string) string {
	t.Helper()
	c := newAPIClient(t, base)
	if code := c.signInPatient(email); code != http.StatusOK {
		t.Fatalf("patient sign-in: %d", code)
	}
	var b strings.Builder
	for _, p := range []string{"/api/v1/patients/" + patientID, "/api/v1/patients/" + patientID + "/files"} {
		code, body := c.get(p)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, code, body)
		}
		b.WriteString(body)
		if i := strings.Index(body, `"id":"`); i >= 0 && strings.HasSuffix(p, "/files") {
			id := body[i+6:]
			id = id[:strings.IndexByte(id, '"')]
			code, content := c.get("/api/v1/files/" + id)
			if code != http.StatusOK {
				t.Fatalf("file download: %d", code)
			}
			b.WriteString(content)
		}
	}
	return b.String()
}

// copyKeys copies what a restore needs from the old data dir and what
// backups never hold: the root key, the audit keys and the erasure ledger.
func copyKeys(t *testing.T, from, to string, ledger bool) {
	t.Helper()
	names := []string{"root.key", "audit.key", "audit.pub"}
	if ledger {
		names = append(names, "erasures")
	}
	for _, n := range names {
		copyFile(t, filepath.Join(from, "keys", n), filepath.Join(to, "keys", n))
	}
}

// needAge stops a backup test in FIPS 140-3 mode (make test-fips), after
// checking that haven backup keygen is refused there with a clear line:
// backups use age, which is outside the FIPS module.
func needAge(t *testing.T) {
	t.Helper()
	if !fips140.Enabled() {
		return
	}
	code, _, stderr := runHaven(t, nil, "backup", "keygen", "--data-dir", t.TempDir(), "--identity", filepath.Join(t.TempDir(), "id"))
	if code == 0 || !strings.Contains(stderr, "not FIPS 140-3 approved") {
		t.Fatalf("backup keygen in FIPS mode: exit %d, %q", code, stderr)
	}
	t.Skip("backups are refused in FIPS 140-3 mode (refusal checked)")
}

func stop(s *server) {
	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done
}

// TestBackupRestoreServesTheSameDataAndNeverRevivesAnErasure makes a
// backup of a demo install with a patient's file, checks the file holds no
// PHI in the clear, erases another patient after the backup, restores into
// an empty data dir (and database), and serves: the first patient sees
// exactly what she saw before, the erased patient stays erased, the audit
// log verifies, and a second restore over the restored data is refused.
func TestBackupRestoreServesTheSameDataAndNeverRevivesAnErasure(t *testing.T) {
	needAge(t)
	for name, dbArgs := range databaseArgs(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			s := startServe(t, dataDir, append([]string{"--demo"}, dbArgs...)...)
			desk := newAPIClient(t, s.URL)
			desk.signInWorkforce("frontdesk@riverside.example")
			_, all := desk.patients()
			var maria, johnID string
			for _, p := range all {
				switch p.Name {
				case "Maria Lopez":
					maria = p.PatientID
				case "John Chen":
					johnID = p.PatientID
				}
			}
			john := newAPIClient(t, s.URL)
			john.signInPatient("john.chen@patients.example")
			john.upload(johnID, "lab letter.pdf", []byte("%PDF-1.4\n% "+backupMarker+"\n%%EOF\n"))
			before := patientView(t, s.URL, "john.chen@patients.example", johnID)
			stop(s)

			idFile := filepath.Join(t.TempDir(), "backup-identity.txt")
			run := func(want int, args ...string) string {
				t.Helper()
				code, out, errOut := runHaven(t, nil, args...)
				if code != want {
					t.Fatalf("haven %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
				}
				return out + errOut
			}
			run(0, append([]string{"backup", "keygen", "--data-dir", dataDir, "--identity", idFile}, dbArgs...)...)
			bak := filepath.Join(t.TempDir(), "haven.backup")
			out := run(0, append([]string{"backup", "create", "--data-dir", dataDir, "--out", bak}, dbArgs...)...)
			if !strings.Contains(out, "backup [==============================] 100%") || !strings.Contains(out, "1 blobs") {
				t.Fatalf("create showed no progress or missed the file:\n%s", out)
			}
			verifier := filepath.Join(dataDir, "keys", "backup.pub")
			out = run(0, "backup", "verify", "--in", bak, "--identity", idFile, "--verifier", verifier)
			if !strings.Contains(out, "OK") {
				t.Fatalf("verify: %s", out)
			}
			raw, err := os.ReadFile(bak)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range demoPHI {
				if bytes.Contains(raw, []byte(m)) {
					t.Fatalf("the backup file holds %q in the clear", m)
				}
			}

			// Erased after the backup was made.
			run(0, append([]string{"keys", "shred", "--patient", maria, "--data-dir", dataDir}, dbArgs...)...)

			restoreTo := func(ledger bool) (string, []string) {
				dir := t.TempDir()
				copyKeys(t, dataDir, dir, ledger)
				var args []string
				if name == "postgres" {
					args = []string{"--db", testkit.Postgres(t)}
				}
				out := run(0, append([]string{"backup", "restore", "--data-dir", dir, "--in", bak, "--identity", idFile, "--verifier", verifier}, args...)...)
				want := "0 erased patients shredded again"
				if ledger {
					want = "1 erased patients shredded again"
				}
				if !strings.Contains(out, want) {
					t.Fatalf("restore: want %q:\n%s", want, out)
				}
				return dir, args
			}
			// Without the root key, the restore fails and takes back what
			// it loaded, on both databases, so the same command succeeds
			// once the key is in place.
			{
				noRoot := t.TempDir()
				var args []string
				if name == "postgres" {
					args = []string{"--db", testkit.Postgres(t)}
				}
				out := run(1, append([]string{"backup", "restore", "--data-dir", noRoot, "--in", bak, "--identity", idFile, "--verifier", verifier,
					"--root-key", filepath.Join(t.TempDir(), "missing.key")}, args...)...)
				if !strings.Contains(out, "nothing of the backup was left in place") {
					t.Fatalf("restore without the root key: %s", out)
				}
				copyKeys(t, dataDir, noRoot, true)
				run(0, append([]string{"backup", "restore", "--data-dir", noRoot, "--in", bak, "--identity", idFile, "--verifier", verifier}, args...)...)
			}
			dir, args := restoreTo(true)
			out = run(1, append([]string{"backup", "restore", "--data-dir", dir, "--in", bak, "--identity", idFile, "--verifier", verifier}, args...)...)
			if !strings.Contains(out, "already holds data") {
				t.Fatalf("restore over data: %s", out)
			}
			run(0, append([]string{"audit", "verify", "--data-dir", dir}, args...)...)
			// The restored log holds the backup's own making and the
			// erasure re-applied on restore.
			events := run(0, append([]string{"audit", "export", "--data-dir", dir}, args...)...)
			for _, action := range []string{`"backup.create"`, `"patient.erase_reapplied"`} {
				if !strings.Contains(events, action) {
					t.Errorf("the restored audit log has no %s event", action)
				}
			}

			s = startServe(t, dir, args...)
			if after := patientView(t, s.URL, "john.chen@patients.example", johnID); after != before {
				t.Fatalf("the restored server shows other data:\nbefore %s\nafter  %s", before, after)
			}
			// The clinician had not signed in before the backup: her first
			// sign-in enrols a factor, as on the original.
			doc := newAPIClient(t, s.URL)
			doc.signInWorkforce("rivera@riverside.example")
			if code, _ := doc.get("/api/v1/patients/" + maria); code != http.StatusNotFound {
				t.Fatalf("the patient erased after the backup is served again: %d", code)
			}
			stop(s)

			// The drill restores the newest backup of the directory into a
			// scratch place, verifies, opens charts and records its time in
			// the live instance.
			drillArgs := []string{"backup", "drill", "--data-dir", dataDir, "--in", filepath.Dir(bak), "--identity", idFile}
			if name == "postgres" {
				drillArgs = append(drillArgs, "--scratch-db", testkit.Postgres(t))
			}
			out = run(0, append(drillArgs, dbArgs...)...)
			if !strings.Contains(out, "restore drill OK") || !strings.Contains(out, "4 records opened") || strings.Contains(out, " 0 audit logs") {
				t.Fatalf("drill: %s", out)
			}

			// Without the ledger the same backup revives her: the ledger,
			// not luck, is what keeps her erased.
			if name == "sqlite" {
				dir, _ := restoreTo(false)
				s = startServe(t, dir)
				doc := newAPIClient(t, s.URL)
				doc.signInWorkforce("rivera@riverside.example")
				if code, _ := doc.get("/api/v1/patients/" + maria); code != http.StatusOK {
					t.Fatalf("control: without the ledger the chart answers %d", code)
				}
				stop(s)
			}
		})
	}
}

// TestTamperedBackupIsRefused edits one byte of a backup, truncates it,
// and opens it with another identity and another verifier key: verify and
// restore refuse each, and restore leaves the target empty.
func TestTamperedBackupIsRefused(t *testing.T) {
	needAge(t)
	dataDir := t.TempDir()
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := runHaven(t, nil, args...)
		if code != want {
			t.Fatalf("haven %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out + errOut
	}
	run(0, "keys", "status", "--data-dir", dataDir)
	keys := t.TempDir()
	idFile, otherID := filepath.Join(keys, "id"), filepath.Join(keys, "other-id")
	run(0, "backup", "keygen", "--data-dir", dataDir, "--identity", idFile)
	other := t.TempDir()
	run(0, "backup", "keygen", "--data-dir", other, "--identity", otherID)
	bak := filepath.Join(keys, "b")
	run(0, "backup", "create", "--data-dir", dataDir, "--out", bak)
	verifier := filepath.Join(dataDir, "keys", "backup.pub")
	run(0, "backup", "verify", "--in", bak, "--identity", idFile, "--verifier", verifier)
	run(1, "backup", "create", "--data-dir", dataDir, "--out", bak) // never overwrites

	// A drill that cannot open the backup fails, and the failure is
	// recorded as evidence like a success.
	out := run(1, "backup", "drill", "--data-dir", dataDir, "--in", bak, "--identity", otherID)
	if !strings.Contains(out, "restore drill FAILED") || !strings.Contains(out, "(recorded)") || !strings.Contains(out, "wrong key") {
		t.Fatalf("a failing drill: %s", out)
	}
	if events := run(0, "audit", "export", "--data-dir", dataDir); !strings.Contains(events, `"backup.drill"`) {
		t.Fatal("the failed drill is not in the audit log")
	}

	// A part swapped for the same part of another backup (here the
	// database of a later one, under the first one's signed manifest),
	// re-encrypted to the public recipient as anyone can.
	later := filepath.Join(keys, "later")
	run(0, "backup", "create", "--data-dir", dataDir, "--out", later)
	swapped := swapDatabase(t, bak, later, idFile, filepath.Join(dataDir, "keys", "backup.recipient"))
	os.WriteFile(bak+".swapped", swapped, 0o600)

	raw, _ := os.ReadFile(bak)
	edited := bytes.Clone(raw)
	edited[len(edited)/2] ^= 0x40
	os.WriteFile(bak+".edited", edited, 0o600)
	os.WriteFile(bak+".short", raw[:len(raw)-100], 0o600)
	for _, c := range []struct{ name, in, id, verifier string }{
		{"a byte edited", bak + ".edited", idFile, verifier},
		{"truncated", bak + ".short", idFile, verifier},
		{"a part swapped", bak + ".swapped", idFile, verifier},
		{"another identity", bak, otherID, verifier},
		{"another verifier key", bak, idFile, filepath.Join(other, "keys", "backup.pub")},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := run(1, "backup", "verify", "--in", c.in, "--identity", c.id, "--verifier", c.verifier)
			if !strings.Contains(out, "backup refused") {
				t.Fatalf("verify: %s", out)
			}
			if c.name == "a part swapped" && !strings.Contains(out, "does not match its hash") {
				t.Fatalf("the swapped part was refused for another reason: %s", out)
			}
			target := t.TempDir()
			copyKeys(t, dataDir, target, false)
			out = run(1, "backup", "restore", "--data-dir", target, "--in", c.in, "--identity", c.id, "--verifier", c.verifier)
			if !strings.Contains(out, "backup refused") {
				t.Fatalf("restore: %s", out)
			}
			if _, err := os.Stat(filepath.Join(target, "haven.db")); err == nil {
				if b, _ := os.ReadFile(filepath.Join(target, "haven.db")); len(b) > 0 {
					t.Fatal("a refused restore left a database behind")
				}
			}
		})
	}
}

// entries decrypts a backup file with the identity and returns its
// archive entries in order.
func entries(t *testing.T, file, identity string) ([]string, [][]byte) {
	t.Helper()
	idf, _ := os.Open(identity)
	defer idf.Close()
	ids, err := age.ParseIdentities(idf)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(file)
	defer f.Close()
	dec, err := age.Decrypt(f, ids...)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(dec)
	var names []string
	var bodies [][]byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, bodies
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names, bodies = append(names, h.Name), append(bodies, b)
	}
}

// swapDatabase returns backup a with its database part replaced by b's,
// a's signed manifest kept, encrypted again to the recipient.
func swapDatabase(t *testing.T, a, b, identity, recipientFile string) []byte {
	t.Helper()
	names, bodies := entries(t, a, identity)
	bNames, bBodies := entries(t, b, identity)
	if names[0] != bNames[0] || bytes.Equal(bodies[0], bBodies[0]) {
		t.Fatalf("the two backups' databases do not differ: %v %v", names, bNames)
	}
	bodies[0] = bBodies[0]
	rf, _ := os.ReadFile(recipientFile)
	rs, err := age.ParseRecipients(bytes.NewReader(rf))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	enc, _ := age.Encrypt(&out, rs...)
	tw := tar.NewWriter(enc)
	for i := range names {
		tw.WriteHeader(&tar.Header{Name: names[i], Size: int64(len(bodies[i])), Mode: 0o600, Typeflag: tar.TypeReg})
		tw.Write(bodies[i])
	}
	tw.Close()
	enc.Close()
	return out.Bytes()
}

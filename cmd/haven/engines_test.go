package main_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"haven/blob/blobtest"
	"haven/keyring/keyringtest"
)

// engines is a Vault server whose transit key holds the root, and a MinIO
// server holding the blobs, both real programs run by the test.
type engines struct {
	vault *keyringtest.Vault
	minio *blobtest.MinIO
	env   []string // for every haven process: where Vault is, and MinIO's CA
	args  []string // the data flags naming them
}

// startMinIO starts MinIO with a bucket and returns the engines naming it.
func startMinIO(t *testing.T) *engines {
	t.Helper()
	m := blobtest.StartMinIO(t)
	m.MakeBucket(t, "haven-blobs")
	return &engines{
		minio: m,
		// Haven reaches S3 over TLS only; MinIO's test certificate is
		// trusted the way an operator trusts a private CA.
		env: []string{"SSL_CERT_FILE=" + m.CAFile, "HAVEN_S3_SECRET_ACCESS_KEY=" + m.SecretKey},
		args: []string{"--blob-store", "s3://haven-blobs/clinic-1",
			"--s3-endpoint", m.Endpoint, "--s3-region", "us-east-1", "--s3-access-key-id", m.AccessKey},
	}
}

// startEngines starts MinIO and Vault, whose transit key haven-root is
// the root.
func startEngines(t *testing.T) *engines {
	t.Helper()
	v := keyringtest.StartVault(t)
	v.CreateTransitKey("haven-root")
	e := startMinIO(t)
	e.vault = v
	e.env = append(e.env, v.Env()...)
	e.args = append(e.args, "--kms", "hashivault://haven-root")
	return e
}

// startWithAgreements starts serve and records a current agreement for
// each vendor it registered (MinIO, Vault): files reach the object store
// only under one.
func startWithAgreements(t *testing.T, e *engines, dataDir string, dbArgs, args []string) *server {
	t.Helper()
	s := startServeEnv(t, e.env, dataDir, args...)
	ids := regexp.MustCompile(`haven vendors update --id (\S+)`).FindAllStringSubmatch(s.out.String(), -1)
	if len(ids) == 0 {
		t.Fatalf("serve did not ask for the new vendors' agreements:\n%s", s.out.String())
	}
	for _, m := range ids {
		code, out, errOut := runHaven(t, e.env, append(append([]string{"vendors", "update", "--data-dir", dataDir, "--id", m[1],
			"--baa-signed", "2026-01-05", "--baa-expires", "2099-12-31"}, e.args...), dbArgs...)...)
		if code != 0 {
			t.Fatalf("vendors update: %d\n%s%s", code, out, errOut)
		}
	}
	return s
}

// uploadReferral finds Maria Lopez, uploads a file to her chart as her
// clinician, checks it reads back and that MinIO holds it under the
// deployment's prefix as ciphertext only. It returns the clinician,
// her id, the file's id and its content.
func uploadReferral(t *testing.T, e *engines, s *server) (*apiClient, string, string, []byte) {
	t.Helper()
	desk := newAPIClient(t, s.URL)
	desk.signInWorkforce("frontdesk@riverside.example")
	_, patients := desk.patients()
	var maria string
	for _, p := range patients {
		if p.Name == "Maria Lopez" {
			maria = p.PatientID
		}
	}
	if maria == "" {
		t.Fatalf("no demo patient in %+v", patients)
	}
	doc := newAPIClient(t, s.URL)
	doc.signInWorkforce("rivera@riverside.example")
	content := []byte("%PDF-1.4 referral letter for Maria Lopez, unmistakable-marker-5d1c")
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/patients/"+maria+"/files", bytes.NewReader(content))
	req.Header.Set("Authorization", "Bearer "+doc.token)
	req.Header.Set("Content-Type", "application/pdf")
	req.Header.Set("Haven-File-Name", url.PathEscape("referral.pdf"))
	resp, err := doc.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var up struct {
		ID string `json:"id"`
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s\n%s", resp.StatusCode, body, s.errOut.String())
	}
	if err := json.Unmarshal(body, &up); err != nil || up.ID == "" {
		t.Fatalf("upload answered %s (%v)", body, err)
	}
	chartAndFile(t, s, doc, maria, up.ID, content)
	// Storage sees ciphertext only: MinIO holds the blob under the
	// deployment's prefix, and no byte run of what was uploaded.
	if _, err := os.Stat(filepath.Join(e.minio.DataDir, "haven-blobs", "clinic-1")); err != nil {
		t.Fatal("no object under s3://haven-blobs/clinic-1/ in MinIO: the blob went elsewhere")
	}
	if hits := e.minio.FilesContaining(t, []byte("unmistakable-marker-5d1c")); len(hits) != 0 {
		t.Fatalf("MinIO holds the uploaded plaintext in %v", hits)
	}
	return doc, maria, up.ID, content
}

// TestServeStoresFilesInMinIO runs `haven serve` with its blobs in a real
// MinIO over TLS: a file uploaded to a chart reads back, survives a
// restart, and MinIO holds only its ciphertext.
func TestServeStoresFilesInMinIO(t *testing.T) {
	for name, dbArgs := range databaseArgs(t) {
		t.Run(name, func(t *testing.T) {
			e := startMinIO(t)
			dataDir := t.TempDir()
			args := append(append([]string{"--demo"}, e.args...), dbArgs...)
			s := startWithAgreements(t, e, dataDir, dbArgs, args)
			doc, maria, file, content := uploadReferral(t, e, s)
			stopServe(t, s)
			s = startServeEnv(t, e.env, dataDir, args...)
			chartAndFile(t, s, doc, maria, file, content)
		})
	}
}

// chartAndFile reads a patient's chart and downloads the file uploaded
// earlier (fileID) through s as the signed-in clinician doc (sessions
// outlive a restart), failing the test on any error.
func chartAndFile(t *testing.T, s *server, doc *apiClient, patientID, fileID string, want []byte) {
	t.Helper()
	doc.base = s.URL
	if code, _ := doc.call("GET", "/api/v1/patients/"+patientID, nil, nil); code != http.StatusOK {
		t.Fatalf("chart: %d\n%s", code, s.errOut.String())
	}
	req, _ := http.NewRequest("GET", s.URL+"/api/v1/files/"+fileID, nil)
	req.Header.Set("Authorization", "Bearer "+doc.token)
	resp, err := doc.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		t.Fatalf("file download: %d, %d bytes (want %d)\n%s", resp.StatusCode, len(got), len(want), s.errOut.String())
	}
}

func stopServe(t *testing.T, s *server) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("no shutdown after SIGTERM")
	}
}

// TestServeOnVaultTransitAndMinIO runs `haven serve` with its root key in
// a real Vault's transit engine and its blobs in a real MinIO: a chart and
// a file round-trip and only ciphertext reaches MinIO; the transit key is
// rotated and Haven's keys re-wrapped under it (`haven keys rotate --root`)
// so that the old version can be switched off; with Vault down a node
// cannot start and says why, writing no key material; with Vault back it
// serves again.
func TestServeOnVaultTransitAndMinIO(t *testing.T) {
	for name, dbArgs := range databaseArgs(t) {
		t.Run(name, func(t *testing.T) {
			e := startEngines(t)
			dataDir := t.TempDir()
			args := append(append([]string{"--demo"}, e.args...), dbArgs...)
			s := startWithAgreements(t, e, dataDir, dbArgs, args)
			doc, maria, fileID, content := uploadReferral(t, e, s)
			// The root is Vault's: no root key file is ever made.
			if _, err := os.Stat(filepath.Join(dataDir, "keys", "root.key")); err == nil {
				t.Fatal("a root key file was written although the root is in Vault")
			}

			// Rotation: a new transit key version, then every key re-wrapped
			// by Haven while the server runs, then the old version off.
			e.vault.RotateTransitKey("haven-root")
			code, out, errOut := runHaven(t, e.env, append(append([]string{"keys", "rotate", "--root", "--data-dir", dataDir}, e.args...), dbArgs...)...)
			if code != 0 || !strings.Contains(out, "newest key version") {
				t.Fatalf("keys rotate --root with --kms: %d\n%s%s", code, out, errOut)
			}
			e.vault.SetMinDecryptionVersion("haven-root", 2)
			stopServe(t, s)
			s = startServeEnv(t, e.env, dataDir, args...)
			chartAndFile(t, s, doc, maria, fileID, content)
			stopServe(t, s)

			// Outage: Vault killed. A node cannot start; it names the KMS
			// in one clear line and shows no chart data.
			e.vault.Stop()
			code, out, errOut = runHaven(t, e.env, append([]string{"serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0", "--turn-addr", "127.0.0.1:0"}, args...)...)
			if code == 0 {
				t.Fatalf("serve started with Vault down:\n%s%s", out, errOut)
			}
			if !strings.Contains(out+errOut, "kms:hashivault://haven-root") {
				t.Fatalf("serve with Vault down does not name the KMS:\n%s%s", out, errOut)
			}
			for _, phi := range []string{"Maria", "Lopez", "unmistakable-marker", e.vault.Token} {
				if strings.Contains(out+errOut, phi) {
					t.Fatalf("serve with Vault down printed %q:\n%s%s", phi, out, errOut)
				}
			}
			t.Logf("with Vault down: %s", strings.TrimSpace(lastLine(errOut)))
			if _, err := os.Stat(filepath.Join(dataDir, "keys", "root.key")); err == nil {
				t.Fatal("a root key file was written while Vault was down")
			}

			// Recovery.
			e.vault.Start()
			s = startServeEnv(t, e.env, dataDir, args...)
			chartAndFile(t, s, doc, maria, fileID, content)
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

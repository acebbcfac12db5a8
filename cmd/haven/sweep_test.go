package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// blobPath is where the blob directory keeps key (see blob/dir: a fan-out
// directory named by the first byte of SHA-256(key), "/" turned into ".").
func blobPath(dataDir, key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(dataDir, "blobs", hex.EncodeToString(sum[:1]), strings.ReplaceAll(key, "/", "."))
}

// TestServeSweepsOrphanBlobs plants what crashes leave in the blob
// directory (an encrypted blob whose row was never written, a temporary
// file of a write that died) beside a real file's blob, all aged past the
// sweep's hour, and a young orphan (an upload whose row is about to be
// committed): a starting server removes the old leftovers and keeps the
// rest, and the real file still downloads.
func TestServeSweepsOrphanBlobs(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir, "--demo")
	desk := newAPIClient(t, s.URL)
	desk.signInWorkforce("frontdesk@riverside.example")
	_, ps := desk.patients()
	var maria string
	for _, p := range ps {
		if p.Name == "Maria Lopez" {
			maria = p.PatientID
		}
	}
	c := newAPIClient(t, s.URL)
	if code := c.signInPatient("maria.lopez@patients.example"); code != http.StatusOK {
		t.Fatalf("patient sign-in: %d", code)
	}
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/patients/"+maria+"/files", strings.NewReader("%PDF-1.4 a referral letter"))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Haven-File-Name", "referral.pdf")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done

	var real string
	filepath.WalkDir(filepath.Join(dataDir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasPrefix(d.Name(), "files.") {
			real = p
		}
		return nil
	})
	if real == "" {
		t.Fatal("no blob for the uploaded file")
	}
	practice := strings.Split(filepath.Base(real), ".")[1]
	sealed, _ := os.ReadFile(real)
	old := time.Now().Add(-2 * time.Hour)
	plant := func(path string, at time.Time) string {
		t.Helper()
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, sealed, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(path, at, at)
		return path
	}
	orphan := plant(blobPath(dataDir, "files/"+practice+"/crashbeforerow"), old)
	young := plant(blobPath(dataDir, "files/"+practice+"/rowcomingnow"), time.Now())
	temp := plant(filepath.Join(filepath.Dir(real), ".tmp-diedmidway"), old)
	os.Chtimes(real, old, old)

	s = startServe(t, dataDir)
	deadline := time.Now().Add(time.Minute)
	for {
		_, err1 := os.Stat(orphan)
		_, err2 := os.Stat(temp)
		if errors.Is(err1, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the orphan blob (%v) or the dead write's temporary file (%v) is still there\n%s", err1, err2, s.errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range []string{real, young} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the sweep removed %s: %v", filepath.Base(p), err)
		}
	}
	c.base = s.URL
	var files struct {
		Files []struct{ ID string }
	}
	if code, err := c.call("GET", "/api/v1/patients/"+maria+"/files", nil, &files); err != nil || code != 200 || len(files.Files) != 1 {
		t.Fatalf("files after the sweep: %d %v %+v", code, err, files)
	}
	req, _ = http.NewRequest("GET", s.URL+"/api/v1/files/"+files.Files[0].ID, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err = c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "%PDF-1.4 a referral letter" {
		t.Fatalf("the file after the sweep: %d %q", resp.StatusCode, body)
	}
}

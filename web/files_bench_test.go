package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"haven/blob/dir"
)

// uploadBenchSize is the file each iteration uploads: a scanned document's
// size, incompressible.
const uploadBenchSize = 8 << 20

// BenchmarkUploadHTTPS measures a file upload through Haven's real HTTPS
// server (TLS 1.3, the session, the gate and its audit append, the type
// decided from the content, chunked sealing under the patient's key, the
// blob directory's durable write, the row) against the same bytes written
// to the same kind of blob directory directly, in the same run: the ratio
// is what everything Haven does on the way costs. MB/s is the upload rate.
//
//	go test -run '^$' -bench UploadHTTPS ./web
func BenchmarkUploadHTTPS(b *testing.B) {
	content := make([]byte, uploadBenchSize)
	rand.Read(content)
	copy(content, "%PDF-1.4\n")

	b.Run("https", func(b *testing.B) {
		st := newVideoStack(b, true)
		st.seedPractice("Riverside Family Clinic", doctor, desk, patientEmail, "Maria Lopez")
		hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		login, _ := json.Marshal(map[string]string{"email": patientEmail, "password": stackPassword})
		resp, err := hc.Post(st.base+"/api/v1/session", "application/json", bytes.NewReader(login))
		if err != nil {
			b.Fatal(err)
		}
		var session struct{ Token string }
		json.NewDecoder(resp.Body).Decode(&session)
		resp.Body.Close()
		if session.Token == "" {
			b.Fatalf("no session: %s", resp.Status)
		}
		url := st.base + "/api/v1/patients/" + st.users[patientEmail] + "/files"
		b.SetBytes(uploadBenchSize)
		i := 0
		for b.Loop() {
			i++
			req, _ := http.NewRequest("POST", url, bytes.NewReader(content))
			req.Header.Set("Authorization", "Bearer "+session.Token)
			req.Header.Set("Haven-File-Name", fmt.Sprintf("scan-%d.pdf", i))
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Fatalf("upload: %s", resp.Status)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		root := filepath.Join(b.TempDir(), "blobs")
		if err := os.Mkdir(root, 0o700); err != nil {
			b.Fatal(err)
		}
		store, err := dir.Open(root)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(uploadBenchSize)
		i := 0
		for b.Loop() {
			i++
			if _, err := store.Put(context.Background(), fmt.Sprintf("files/bench/%d", i), bytes.NewReader(content)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

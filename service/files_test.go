package service_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"haven"
)

// blobFiles returns the paths of the stored blobs.
func (e *env) blobFiles() []string {
	var out []string
	filepath.Walk(filepath.Join(e.dataDir, "blobs"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.HasPrefix(info.Name(), ".") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestFileRoundTripAndTypeCheck(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "f1")
		body := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("lab results line\n"), 10000)...) // 170 KB: several chunks
		info, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "results.pdf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != int64(len(body)) || info.ContentType != "application/pdf" {
			t.Fatalf("info %+v", info)
		}
		got, rc, err := e.svc.OpenFile(e.as(p.clinician), info.ID)
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(content, body) || got.Name != "results.pdf" {
			t.Fatalf("round trip: %v name %q", err, got.Name)
		}
		list, err := e.svc.Files(e.as(p.patientA), p.chartA.PatientID)
		if err != nil || len(list) != 1 {
			t.Fatalf("list %v %v", list, err)
		}
		exe := append([]byte("MZ\x90\x00"), make([]byte, 600)...)
		if _, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "setup.exe", bytes.NewReader(exe)); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("executable accepted: %v", err)
		}
	})
}

func TestAnotherPatientCannotReadAFile(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "f2")
		q := e.seed("lakeshore", "g2")
		info, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "photo.txt", strings.NewReader("%PDF-1.4 rash on left arm"))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []haven.Actor{p.patientB, p.otherClinician, q.patientA, q.clinician, p.admin} {
			if _, rc, err := e.svc.OpenFile(e.as(a), info.ID); err == nil {
				rc.Close()
				t.Fatalf("%s %s read another patient's file", a.Role, a.UserID)
			}
		}
		if _, err := e.svc.UploadFile(e.as(p.patientB), p.chartA.PatientID, "x.txt", strings.NewReader("%PDF-1.4 planted")); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("upload into another patient's chart: %v", err)
		}
	})
}

// TestTamperedBlobFailsToOpen flips one byte of the stored ciphertext and
// truncates another copy: reading must fail, never return altered content.
func TestTamperedBlobFailsToOpen(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "f3")
		body := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("x-ray report "), 20000)...)
		info, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "report.txt", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		files := e.blobFiles()
		if len(files) != 1 {
			t.Fatalf("blobs %v", files)
		}
		orig, _ := os.ReadFile(files[0])
		read := func() error {
			_, rc, err := e.svc.OpenFile(e.as(p.clinician), info.ID)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.ReadAll(rc)
			return err
		}
		flipped := bytes.Clone(orig)
		flipped[len(flipped)/2] ^= 1
		os.WriteFile(files[0], flipped, 0o600)
		if err := read(); err == nil {
			t.Fatal("a flipped bit went unnoticed")
		}
		os.WriteFile(files[0], orig[:len(orig)-70000], 0o600)
		if err := read(); err == nil {
			t.Fatal("a truncated blob went unnoticed")
		}
		os.WriteFile(files[0], orig, 0o600)
		if err := read(); err != nil {
			t.Fatalf("restored blob: %v", err)
		}
	})
}

func TestErasePatientShredsOnlyThatPatientAndRespectsLegalHold(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "f4")
		ctx := e.as(p.staff)
		info, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "a.txt", strings.NewReader("%PDF-1.4 patient A's document"))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SetLegalHold(ctx, p.chartA.PatientID, true); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ErasePatient(ctx, p.chartA.PatientID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("erased under legal hold: %v", err)
		}
		if _, err := e.svc.Chart(ctx, p.chartA.PatientID); err != nil {
			t.Fatalf("refused erasure changed something: %v", err)
		}
		if err := e.svc.SetLegalHold(ctx, p.chartA.PatientID, false); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ErasePatient(ctx, p.chartA.PatientID); err != nil {
			t.Fatal(err)
		}
		if c, err := e.svc.Chart(ctx, p.chartA.PatientID); err == nil {
			t.Fatalf("erased chart opened: %+v", c)
		}
		if _, rc, err := e.svc.OpenFile(e.as(p.clinician), info.ID); err == nil {
			if _, err := io.ReadAll(rc); err == nil {
				t.Fatal("erased file opened")
			}
			rc.Close()
		}
		if c, err := e.svc.Chart(ctx, p.chartB.PatientID); err != nil || c.Demographics.Name != "Namef4B" {
			t.Fatalf("other patient harmed: %v", err)
		}
	})
}

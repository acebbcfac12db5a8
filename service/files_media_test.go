package service_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"haven"
	"haven/media"
	"haven/media/mediatest"
	"haven/service"
)

// readAllOf drains a file or rendition stream.
func readAllOf(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPhotoIsStoredWithoutItsMetadata: a phone's JPEG carrying a GPS
// position, a camera and comments goes in; what the clinician opens, and
// its thumbnail and preview, hold none of it (exiftool, a reader we did
// not write, agrees), and the photo's size is in its details.
func TestPhotoIsStoredWithoutItsMetadata(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m1")
		jpg := mediatest.JPEG(mediatest.Pattern(120, 80), mediatest.PhotoMarkers{Comment: "ExifMk1", GPS: true, Orientation: 6})
		info, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "rash.jpg", bytes.NewReader(jpg))
		if err != nil {
			t.Fatal(err)
		}
		if info.ContentType != media.JPEG || info.Details == nil || info.Details.Width != 80 || info.Details.Height != 120 {
			t.Fatalf("info %+v details %+v", info, info.Details)
		}
		if !info.Has(haven.RenditionThumbnail) || !info.Has(haven.RenditionPreview) || info.Has(haven.RenditionDeidentified) {
			t.Fatalf("renditions %v", info.Renditions)
		}
		_, rc, err := e.svc.OpenFile(e.as(p.clinician), info.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored := readAllOf(t, rc)
		if found := mediatest.HasAny(stored, "ExifMk1"); len(found) > 0 || len(media.Metadata(stored)) > 0 {
			t.Fatalf("the stored photo keeps %v %v", found, media.Metadata(stored))
		}
		for _, kind := range []string{haven.RenditionThumbnail, haven.RenditionPreview} {
			_, rd, rc, err := e.svc.OpenRendition(e.as(p.clinician), info.ID, kind)
			if err != nil {
				t.Fatal(err)
			}
			b := readAllOf(t, rc)
			if rd.ContentType != media.JPEG || int64(len(b)) != rd.Size || len(mediatest.HasAny(b, "ExifMk1")) > 0 {
				t.Fatalf("%s: %+v", kind, rd)
			}
		}
		tags := mediatest.ExifTool(t, stored)
		for k := range tags {
			if strings.HasPrefix(k, "GPS") || strings.Contains(k, "Comment") || strings.Contains(k, "Artist") {
				t.Errorf("exiftool finds %s in the stored photo", k)
			}
		}
		list, err := e.svc.Files(e.as(p.patientA), p.chartA.PatientID)
		if err != nil || len(list) != 1 || !list[0].Has(haven.RenditionThumbnail) || list[0].Details == nil {
			t.Fatalf("list %+v %v", list, err)
		}
		if _, _, _, err := e.svc.OpenRendition(e.as(p.clinician), info.ID, "original"); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("an unknown rendition: %v", err)
		}
		if _, _, _, err := e.svc.OpenRendition(e.as(p.clinician), info.ID, haven.RenditionDeidentified); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("a photo's de-identified copy: %v", err)
		}
	})
}

// TestDICOMImageIsReadPreviewedAndDeidentified: a DICOM image's study is
// in its details (the patient it names too, sealed), its first frame is
// a PNG preview, and its de-identified copy holds no marker of the
// patient's.
func TestDICOMImageIsReadPreviewedAndDeidentified(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m2")
		dcm := mediatest.DICOM(mediatest.DICOMOptions{Marker: "DcmMk2"})
		info, err := e.svc.UploadFile(e.as(p.clinician), p.chartA.PatientID, "chest.dcm", bytes.NewReader(dcm))
		if err != nil {
			t.Fatal(err)
		}
		v, err := e.svc.File(e.as(p.patientA), info.ID)
		if err != nil {
			t.Fatal(err)
		}
		st := v.Details.Study
		if !v.IsDICOM() || st == nil || !st.Previewable || !st.Deidentifiable || st.Modality == "" || !strings.Contains(st.PatientName, "DcmMk2") {
			t.Fatalf("study %+v", st)
		}
		for _, k := range haven.Renditions {
			if !v.Has(k) {
				t.Fatalf("no %s: %v", k, v.Renditions)
			}
		}
		_, rd, rc, err := e.svc.OpenRendition(e.as(p.patientA), info.ID, haven.RenditionPreview)
		if err != nil || rd.ContentType != media.PNG || !bytes.HasPrefix(readAllOf(t, rc), []byte("\x89PNG")) {
			t.Fatalf("preview %+v %v", rd, err)
		}
		_, rd, rc, err = e.svc.OpenRendition(e.as(p.clinician), info.ID, haven.RenditionDeidentified)
		if err != nil || rd.ContentType != media.DICOM {
			t.Fatalf("copy %+v %v", rd, err)
		}
		if found := mediatest.HasAny(readAllOf(t, rc), "DcmMk2"); len(found) > 0 {
			t.Fatalf("the de-identified copy holds %v", found)
		}
		// A compressed image is stored and said not previewable.
		jp := mediatest.DICOM(mediatest.DICOMOptions{Marker: "DcmMk2", Compressed: true})
		c, err := e.svc.UploadFile(e.as(p.clinician), p.chartA.PatientID, "knee.dcm", bytes.NewReader(jp))
		if err != nil {
			t.Fatal(err)
		}
		if c.Details.Study.Previewable || c.Details.Study.NotPreviewable == "" || c.Has(haven.RenditionPreview) {
			t.Fatalf("compressed: %+v", c.Details.Study)
		}
	})
}

// TestFilesOfOthersAreRefused: another patient, a clinician outside the
// care team and another practice's people cannot describe a file, open
// it or any rendition; each refusal in the practice is in its audit log;
// a patient, like another practice, learns nothing of whether it exists.
func TestFilesOfOthersAreRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m3")
		q := e.seed("lakeshore", "n3")
		jpg := mediatest.JPEG(mediatest.Pattern(40, 40), mediatest.PhotoMarkers{Comment: "c"})
		info, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "mine.jpg", bytes.NewReader(jpg))
		if err != nil {
			t.Fatal(err)
		}
		for who, c := range map[string]struct {
			a    haven.Actor
			code string
		}{
			"another patient":              {p.patientB, haven.ENOTFOUND},
			"a clinician not on her team":  {p.otherClinician, haven.EFORBIDDEN},
			"another practice's clinician": {q.clinician, haven.ENOTFOUND},
			"another practice's patient":   {q.patientA, haven.ENOTFOUND},
		} {
			e.svc.Wait() // an earlier case's probe lands in p's log before this case's events
			if _, err := e.svc.File(e.as(c.a), info.ID); haven.ErrorCode(err) != c.code {
				t.Errorf("%s described it: %v", who, err)
			}
			if _, _, err := e.svc.OpenFile(e.as(c.a), info.ID); haven.ErrorCode(err) != c.code {
				t.Errorf("%s opened it: %v", who, err)
			}
			if _, _, _, err := e.svc.OpenRendition(e.as(c.a), info.ID, haven.RenditionThumbnail); haven.ErrorCode(err) != c.code {
				t.Errorf("%s opened its thumbnail: %v", who, err)
			}
			if ev := e.lastEvent(p.id); c.a.PracticeID == p.id && (ev.Decision != haven.DecisionDeny || ev.ActorID != c.a.UserID) {
				t.Errorf("%s: last event %+v", who, ev)
			}
		}
		// Nor can anyone put a file in another practice's chart.
		if _, err := e.svc.UploadFile(e.as(q.clinician), p.chartA.PatientID, "x.pdf", strings.NewReader("%PDF-1.4 planted")); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice's upload: %v", err)
		}
	})
}

// TestUploadLimitIsThePractices: a practice's own limit refuses a larger
// file with a message that says the limit, and leaves no blob behind;
// content that is none of the accepted types is refused by what it is,
// whatever its name.
func TestUploadLimitIsThePractices(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m4")
		st := service.DefaultSettings()
		st.MaxUploadMiB = 1
		if err := e.svc.UpdateSettings(e.as(p.admin), st); err != nil {
			t.Fatal(err)
		}
		before := len(e.blobFiles())
		big := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("x"), 1<<20)...)
		_, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "scan.pdf", bytes.NewReader(big))
		if haven.ErrorCode(err) != haven.EINVALID || !strings.Contains(haven.ErrorMessage(err), "at most 1 MiB") {
			t.Fatalf("over the limit: %v", err)
		}
		bigPhoto := append(mediatest.JPEG(mediatest.Pattern(8, 8), mediatest.PhotoMarkers{}), make([]byte, 1<<20)...)
		if _, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "big.jpg", bytes.NewReader(bigPhoto)); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("a photo over the limit: %v", err)
		}
		if n := len(e.blobFiles()); n != before {
			t.Fatalf("%d blobs after refusals, want %d", n, before)
		}
		if _, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "ok.pdf", bytes.NewReader(big[:1<<20])); err != nil {
			t.Fatalf("at the limit: %v", err)
		}
		if _, err := e.svc.UploadFile(e.as(p.patientA), p.chartA.PatientID, "notes.pdf", strings.NewReader("just some text")); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("text named .pdf: %v", err)
		}
		st.MaxUploadMiB = service.MaxFileSize>>20 + 1
		if err := e.svc.UpdateSettings(e.as(p.admin), st); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("a limit over the platform's: %v", err)
		}
	})
}

// TestPhotoSentInAThreadIsReadByItsParticipantsOnly: a patient sends a
// photo in her conversation with her care team; it is in her record,
// cleaned, and the message carries it with a thumbnail. Her clinician
// opens it; a clinician outside her care team, the front desk (which
// sees only that a file is there), another patient and another
// practice's clinician cannot. Another patient cannot send a file into
// her conversation.
func TestPhotoSentInAThreadIsReadByItsParticipantsOnly(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m5")
		q := e.seed("lakeshore", "n5")
		tv := e.write(p.patientA, haven.AudienceCareTeam, "Rash", "It spread since Monday.")
		jpg := mediatest.JPEG(mediatest.Pattern(90, 60), mediatest.PhotoMarkers{Comment: "ExifMk5", GPS: true})
		m, err := e.svc.UploadToThread(e.as(p.patientA), tv.ID, "Here it is today.", nil, "rash.jpg", bytes.NewReader(jpg))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Attachments) != 1 {
			t.Fatalf("message %+v", m)
		}
		fileID := m.Attachments[0].FileID
		page, err := e.svc.ReadThread(e.as(p.clinician), tv.ID)
		if err != nil || len(page.Messages) != 2 {
			t.Fatalf("%+v %v", page, err)
		}
		if a := page.Messages[1].Attachments[0]; a.FileID != fileID || a.Name != "rash.jpg" || !a.Thumbnail || a.Hidden {
			t.Fatalf("the clinician sees %+v", a)
		}
		_, rc, err := e.svc.OpenFile(e.as(p.clinician), fileID)
		if err != nil {
			t.Fatal(err)
		}
		if b := readAllOf(t, rc); len(mediatest.HasAny(b, "ExifMk5")) > 0 || len(media.Metadata(b)) > 0 {
			t.Fatal("the photo sent keeps its metadata")
		}
		page, err = e.svc.ReadThread(e.as(p.staff), tv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a := page.Messages[1].Attachments[0]; !a.Hidden || a.Name != "" || a.Thumbnail {
			t.Fatalf("the front desk sees %+v", a)
		}
		for who, c := range map[string]struct {
			a    haven.Actor
			code string
		}{
			"the front desk":               {p.staff, haven.EFORBIDDEN},
			"a clinician not on her team":  {p.otherClinician, haven.EFORBIDDEN},
			"another patient":              {p.patientB, haven.ENOTFOUND},
			"another practice's clinician": {q.clinician, haven.ENOTFOUND},
		} {
			if _, _, err := e.svc.OpenFile(e.as(c.a), fileID); haven.ErrorCode(err) != c.code {
				t.Errorf("%s opened it: %v", who, err)
			}
			if _, _, _, err := e.svc.OpenRendition(e.as(c.a), fileID, haven.RenditionThumbnail); haven.ErrorCode(err) != c.code {
				t.Errorf("%s opened its thumbnail: %v", who, err)
			}
		}
		before, err := e.svc.Files(e.as(p.patientA), p.chartA.PatientID)
		if err != nil || len(before) != 1 {
			t.Fatalf("her files %v %v", before, err)
		}
		if _, err := e.svc.UploadToThread(e.as(p.patientB), tv.ID, "planted", nil, "x.jpg", bytes.NewReader(jpg)); haven.ErrorCode(err) == "" {
			t.Fatal("another patient sent a file into her conversation")
		}
		if _, err := e.svc.UploadToThread(e.as(q.clinician), tv.ID, "planted", nil, "x.jpg", bytes.NewReader(jpg)); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice sent a file into her conversation: %v", err)
		}
		if after, _ := e.svc.Files(e.as(p.patientA), p.chartA.PatientID); len(after) != 1 {
			t.Fatalf("%d files in her record after the refusals", len(after))
		}
	})
}

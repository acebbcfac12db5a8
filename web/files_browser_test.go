package web_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"haven/media/mediatest"
)

// imagesShown is true once every image matching sel has loaded.
func imagesShown(sel string) string {
	return `(() => { const is = Array.from(document.querySelectorAll('` + sel + `')); return is.length > 0 && is.every((i) => i.complete && i.naturalWidth > 0) ? 1 : 0; })()`
}

// TestBrowserPatientPhotographsARashAndSendsIt: Maria Lopez, on a phone
// (390×844), adds a photo from her home page's "Your files" (a JPEG
// straight from a camera: GPS position, camera, comments), sees its
// thumbnail in her gallery and its preview on its page, then writes to
// her care team and sends another photo with her reply, shown in the
// conversation as a thumbnail. Dr. Rosa Rivera opens the conversation from
// her inbox and the photo from it; its download is an attachment, never
// cached, of the stored type, and holds none of the camera's metadata.
// The front desk's view of the conversation names no file. Every page is
// walked by links, at its width, with axe-core.
func TestBrowserPatientPhotographsARashAndSendsIt(t *testing.T) {
	st := newDemoStack(t)
	dir := t.TempDir()
	photo := filepath.Join(dir, "rash.jpg")
	const marker = "CamMk9"
	if err := os.WriteFile(photo, mediatest.JPEG(mediatest.Pattern(640, 480), mediatest.PhotoMarkers{Comment: marker, GPS: true, Orientation: 6}), 0o600); err != nil {
		t.Fatal(err)
	}

	pat := newWalker(t, st.base)
	pat.use(phone)
	pat.start()
	pat.signIn(patientEmail, "")
	pat.follow("#home-files")
	if err := chromedp.Do(pat.ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{photo})); err != nil {
		t.Fatal(err)
	}
	pat.press("#upload")
	if !strings.Contains(pat.text(".flash"), "added") {
		t.Errorf("the upload says %q", pat.text("main"))
	}
	waitFor(t, pat.ctx, "the thumbnail shown", imagesShown("#files img.thumb"))
	if got := pat.text("#files .name"); got != "rash.jpg" {
		t.Errorf("the gallery names %q", got)
	}
	pat.follow("#files a.tile")
	waitFor(t, pat.ctx, "the preview shown", imagesShown("#file-preview"))
	// Turned as the camera meant it (EXIF orientation 6: a quarter turn).
	if tall, err := chromedp.Run(pat.ctx, chromedp.Evaluate[bool](`(() => { const i = document.getElementById('file-preview'); return i.naturalHeight > i.naturalWidth; })()`)); err != nil || !tall {
		t.Errorf("the preview is not turned as the camera meant it (%v)", err)
	}

	pat.follow("#nav-messages")
	pat.follow("#write-care-team")
	pat.fill(map[string]string{"subject": "Rash on my arm", "body": "It started on Monday."})
	pat.press("#send")
	pat.fill(map[string]string{"reply-body": "Here is how it looks today."})
	if err := chromedp.Do(pat.ctx, chromedp.SetUploadFiles(chromedp.CSS("#reply-photo"), []string{photo})); err != nil {
		t.Fatal(err)
	}
	pat.press("#send-reply")
	waitFor(t, pat.ctx, "the photo in the conversation", imagesShown("#thread-messages .attachments img.thumb"))
	if got := pat.text("#thread-messages li:last-child .attachments a"); got != "rash.jpg" {
		t.Errorf("the attachment reads %q", got)
	}

	doc := newWalker(t, st.base)
	doc.start()
	doc.signIn(doctor, "")
	doc.follow("#home-inbox")
	doc.follow("#thread-rows a")
	waitFor(t, doc.ctx, "the photo in the conversation", imagesShown("#thread-messages .attachments img.thumb"))
	doc.follow("#thread-messages .attachments a.attachment")
	waitFor(t, doc.ctx, "the preview shown", imagesShown("#file-preview"))
	if !doc.has("#download") || doc.has("#download-deidentified") {
		t.Error("a photo's page offers the wrong downloads")
	}
	// The download, as the browser fetches it.
	type answer struct {
		Disposition, Cache, Type string
		Marker, Exif             bool
	}
	got, err := chromedp.Run(doc.ctx, chromedp.Evaluate[answer](`fetch(document.getElementById('download').href).then(async (r) => {
		const b = new Uint8Array(await r.arrayBuffer());
		const s = Array.from(b, (c) => String.fromCharCode(c)).join('');
		return {Disposition: r.headers.get('Content-Disposition'), Cache: r.headers.get('Cache-Control'), Type: r.headers.get('Content-Type'),
			Marker: s.includes('`+marker+`'), Exif: s.includes('Exif\u0000')};
	})`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Disposition, "attachment;") || !strings.Contains(got.Disposition, "rash.jpg") || got.Cache != "no-store" || got.Type != "image/jpeg" || got.Marker || got.Exif {
		t.Errorf("the download: %+v", got)
	}
	doc.follow("#back-to-files")
	if n, err := chromedp.Run(doc.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#files li').length`)); err != nil || n != 2 {
		t.Errorf("the chart's gallery shows %d files (%v), want her 2", n, err)
	}

	fd := newWalker(t, st.base)
	fd.use(phone)
	fd.start()
	fd.signIn(desk, "")
	fd.follow("#nav-inbox")
	fd.follow("#thread-rows a")
	if fd.has("#thread-messages .attachments a") || strings.Contains(fd.text("#thread-messages"), "rash.jpg") {
		t.Error("the front desk sees the photo")
	}
	if fd.has("#add-file") {
		t.Error("the front desk is offered to add a file")
	}
}

// TestBrowserUploadLimitAndDICOMImage: the administrator lowers the
// practice's upload limit to 1 MiB from her home page's settings; Dr.
// Rosa Rivera opens Maria Lopez's chart from her patients, adds a DICOM
// image to her files from the chart's gallery, sees its study in the
// gallery and on its page with its first frame, and downloads its
// de-identified copy, which names no one; a 2 MiB PDF is refused with a
// message naming the limit.
func TestBrowserUploadLimitAndDICOMImage(t *testing.T) {
	st := newDemoStack(t)
	dir := t.TempDir()
	const marker = "DcmMk8"
	scan := filepath.Join(dir, "chest.dcm")
	big := filepath.Join(dir, "scan.pdf")
	if err := os.WriteFile(scan, mediatest.DICOM(mediatest.DICOMOptions{Marker: marker}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, append([]byte("%PDF-1.4\n"), make([]byte, 2<<20)...), 0o600); err != nil {
		t.Fatal(err)
	}

	adm := newWalker(t, st.base)
	adm.start()
	adm.signIn(admin, "")
	adm.follow("#home-settings")
	adm.fill(map[string]string{"max-upload": "1"})
	adm.press("#save-settings")
	if !strings.Contains(adm.text(".flash"), "saved") {
		t.Fatalf("saving the settings says %q", adm.text("main"))
	}

	doc := newWalker(t, st.base)
	doc.use(phone)
	doc.start()
	doc.signIn(doctor, "")
	doc.follow("#nav-patients")
	if err := chromedp.Do(doc.ctx, chromedp.Evaluate[chromedp.Void](`Array.from(document.querySelectorAll('main table a')).find((a) => a.textContent.includes('Maria Lopez')).id = 'maria'`)); err != nil {
		t.Fatal(err)
	}
	doc.follow("#maria")
	doc.follow("#patient-files")
	if err := chromedp.Do(doc.ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{scan})); err != nil {
		t.Fatal(err)
	}
	doc.press("#upload")
	waitFor(t, doc.ctx, "the image's thumbnail", imagesShown("#files img.thumb"))
	if got := doc.text("#files .study"); !strings.Contains(got, "CT") {
		t.Errorf("the gallery's study details: %q", got)
	}
	doc.follow("#files a.tile")
	waitFor(t, doc.ctx, "the first frame", imagesShown("#file-preview"))
	if got := doc.text("#study-patient"); !strings.Contains(got, marker) {
		t.Errorf("the study names %q", got)
	}
	if got := doc.text("#study-modality"); got != "CT" {
		t.Errorf("modality %q", got)
	}
	type answer struct {
		Disposition, Cache, Type string
		Marker, DICM             bool
	}
	got, err := chromedp.Run(doc.ctx, chromedp.Evaluate[answer](`fetch(document.getElementById('download-deidentified').href).then(async (r) => {
		const b = new Uint8Array(await r.arrayBuffer());
		const s = Array.from(b, (c) => String.fromCharCode(c)).join('');
		return {Disposition: r.headers.get('Content-Disposition'), Cache: r.headers.get('Cache-Control'), Type: r.headers.get('Content-Type'),
			Marker: s.toLowerCase().includes('`+strings.ToLower(marker)+`'), DICM: s.substring(128, 132) === 'DICM'};
	})`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Disposition, "attachment;") || !strings.Contains(got.Disposition, "chest-deidentified.dcm") || got.Cache != "no-store" ||
		got.Type != "application/dicom" || got.Marker || !got.DICM {
		t.Errorf("the de-identified copy: %+v", got)
	}

	doc.follow("#back-to-files")
	if err := chromedp.Do(doc.ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{big})); err != nil {
		t.Fatal(err)
	}
	// The refusal is a 400 page the walker would report; expected here.
	click(t, doc.ctx, "#upload")
	waitFor(t, doc.ctx, "the refusal", `(document.querySelector('.error') || {textContent: ''}).textContent.includes('at most 1 MiB') ? 1 : 0`)
	doc.mu.Lock()
	doc.refused = nil
	doc.mu.Unlock()
	doc.check()
	if n, err := chromedp.Run(doc.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#files li').length`)); err != nil || n != 1 {
		t.Errorf("%d files after the refusal (%v), want 1", n, err)
	}
}

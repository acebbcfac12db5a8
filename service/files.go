package service

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"haven"
	"haven/keyring"
	"haven/media"
	"haven/policy"
)

// MaxFileSize bounds one upload whatever a practice's setting (see
// PracticeSettings.MaxUploadMiB). Content streams through in chunks, so
// memory does not grow with it; photos and DICOM images are read whole
// to be cleaned and previewed, and are bounded by media.MaxDecodedBytes.
const MaxFileSize = 2 << 30

func fileAD(practiceID, patientID, fileID, field string) keyring.AD {
	return keyring.AD{PracticeID: practiceID, PatientID: patientID, Kind: "file", RecordID: fileID, Field: field}
}

// renditionField is the associated-data field a rendition's content is
// sealed under: a rendition moved to stand for another fails to open.
func renditionField(kind string) string { return "rendition/" + kind }

// derived is what an upload keeps: the content stored as the file (a
// photo re-encoded, anything else as it came), its renditions and the
// details read from it.
type derived struct {
	content    io.Reader
	renditions []rendition
	details    *haven.FileDetails
}

type rendition struct {
	kind, contentType string
	content           []byte
}

// UploadFile stores a file in a patient's chart. Its type is decided from
// its content (media.Sniff), never its name or the client's claim; a
// photo is re-encoded without its metadata (GPS position, camera, owner,
// comments) before anything is sealed, and a thumbnail and a preview are
// made of it; a DICOM image is read for its study, a preview of its first
// frame and a de-identified copy. Content and renditions are sealed in
// chunks under the patient's data key on their way to the blob store, so
// no plaintext touches disk. The practice's upload limit applies
// (PracticeSettings.MaxUploadMiB).
func (s *Service) UploadFile(ctx context.Context, patientID, name string, content io.Reader) (*haven.FileView, error) {
	if s.blobs == nil {
		return nil, haven.Errorf(haven.EUNAVAILABLE, "file storage is not configured")
	}
	if err := fileName(name); err != nil {
		return nil, err
	}
	row, err := s.patientRow(ctx, policy.FileUpload, policy.KindFile, patientID)
	if err != nil {
		return nil, err
	}
	id := haven.NewID()
	res := chartResource(policy.KindFile, row)
	res.ID = id
	a, _, err := s.authorizeRecord(ctx, policy.FileUpload, res, patientID)
	if err != nil {
		return nil, err
	}
	return s.storeFile(ctx, a, row, id, name, content)
}

// storeFile does UploadFile's work once the gate has let a upload file id
// into row's chart.
func (s *Service) storeFile(ctx context.Context, a haven.Actor, row *haven.Patient, id, name string, content io.Reader) (*haven.FileView, error) {
	ps, err := s.settings(ctx, row.PracticeID)
	if err != nil {
		return nil, err
	}
	limit := ps.MaxUpload()
	br := bufio.NewReaderSize(content, media.SniffLen)
	head, _ := br.Peek(media.SniffLen)
	ctype, err := media.Sniff(head)
	if err != nil {
		return nil, err
	}
	counted := &countingReader{r: io.LimitReader(br, limit+1)}
	tooLarge := haven.Errorf(haven.EINVALID, "this file is too large: this practice accepts files of at most %s", mib(limit))
	d := &derived{content: counted}
	if ctype != media.PDF {
		buf, err := io.ReadAll(io.LimitReader(counted, media.MaxDecodedBytes+1))
		switch {
		case err != nil:
			return nil, haven.Wrap(haven.EINVALID, err, "the upload was cut short")
		case counted.n > limit:
			return nil, tooLarge
		case len(buf) > media.MaxDecodedBytes:
			return nil, haven.Errorf(haven.EINVALID, "photos and DICOM images may be at most %s", mib(media.MaxDecodedBytes))
		}
		if d, err = s.derive(ctx, row.PracticeID, ctype, buf); err != nil {
			return nil, err
		}
	}
	f := &haven.File{ID: id, PracticeID: row.PracticeID, PatientID: row.ID, UploadedBy: a.UserID, ContentType: ctype,
		BlobKey: "files/" + strings.ToLower(row.PracticeID) + "/" + id}
	if f.Name, err = s.keys.Seal(ctx, fileAD(f.PracticeID, f.PatientID, id, "name"), []byte(name)); err != nil {
		return nil, err
	}
	if d.details != nil {
		b, _ := json.Marshal(d.details)
		if f.Details, err = s.keys.Seal(ctx, fileAD(f.PracticeID, f.PatientID, id, "details"), b); err != nil {
			return nil, err
		}
	}
	var stored []string
	undo := func() {
		for _, k := range stored {
			s.blobs.Delete(context.WithoutCancel(ctx), k)
		}
	}
	stored = append(stored, f.BlobKey)
	if f.Size, err = s.putSealed(ctx, f.BlobKey, fileAD(f.PracticeID, f.PatientID, id, "content"), d.content); err != nil {
		undo()
		return nil, err
	}
	if counted.n > limit {
		undo()
		return nil, tooLarge
	}
	var rows []*haven.FileRendition
	for _, r := range d.renditions {
		fr := &haven.FileRendition{Kind: r.kind, ContentType: r.contentType, BlobKey: f.BlobKey + "-" + r.kind}
		stored = append(stored, fr.BlobKey)
		if fr.Size, err = s.putSealed(ctx, fr.BlobKey, fileAD(f.PracticeID, f.PatientID, id, renditionField(r.kind)), bytes.NewReader(r.content)); err != nil {
			undo()
			return nil, err
		}
		rows = append(rows, fr)
	}
	if err := s.db.CreateFile(ctx, f, rows...); err != nil {
		undo()
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "the file could not be recorded")
	}
	v := &haven.FileView{ID: id, PatientID: f.PatientID, Name: name, ContentType: ctype, Size: f.Size, UploadedBy: a.UserID, CreatedAt: f.CreatedAt,
		Details: d.details, Renditions: []string{}}
	for _, r := range rows {
		v.Renditions = append(v.Renditions, r.Kind)
	}
	return v, nil
}

// derive cleans a photo or reads a DICOM image (buf is its whole
// plaintext), for what UploadFile stores of it.
func (s *Service) derive(ctx context.Context, practiceID, ctype string, buf []byte) (*derived, error) {
	if ctype == media.DICOM {
		var uidErr error
		img, err := media.ReadDICOM(buf, func(u string) string {
			h, err := s.keys.BlindIndex(ctx, practiceID, "dicom-uid", []byte(u))
			if err != nil || len(h) < 16 {
				uidErr = cmp.Or(err, errors.New("short index"))
				return "2.25.0"
			}
			return "2.25." + new(big.Int).SetBytes(h[:16]).String()
		})
		if err != nil {
			return nil, err
		}
		if uidErr != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, uidErr, "the de-identified copy could not be made")
		}
		d := &derived{content: bytes.NewReader(buf), details: &haven.FileDetails{Width: img.Study.Columns, Height: img.Study.Rows, Study: &img.Study}}
		if img.Thumbnail != nil {
			d.renditions = append(d.renditions, rendition{haven.RenditionThumbnail, media.JPEG, img.Thumbnail})
		}
		if img.Preview != nil {
			d.renditions = append(d.renditions, rendition{haven.RenditionPreview, media.PNG, img.Preview})
		}
		if img.Deidentified != nil {
			d.renditions = append(d.renditions, rendition{haven.RenditionDeidentified, media.DICOM, img.Deidentified})
		}
		return d, nil
	}
	p, err := media.CleanPhoto(buf, ctype)
	if err != nil {
		return nil, err
	}
	return &derived{content: bytes.NewReader(p.Clean), details: &haven.FileDetails{Width: p.Width, Height: p.Height},
		renditions: []rendition{{haven.RenditionThumbnail, media.JPEG, p.Thumbnail}, {haven.RenditionPreview, media.JPEG, p.Preview}}}, nil
}

// putSealed seals content in chunks under ad on its way to the blob
// store at key, and returns how many plaintext bytes it held.
func (s *Service) putSealed(ctx context.Context, key string, ad keyring.AD, content io.Reader) (int64, error) {
	pr, pw := io.Pipe()
	counted := &countingReader{r: content}
	go func() {
		w, err := s.keys.SealStream(ctx, pw, ad)
		if err == nil {
			_, err = io.Copy(w, counted)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		pw.CloseWithError(err)
	}()
	if _, err := s.blobs.Put(ctx, key, pr); err != nil {
		pr.CloseWithError(err)
		var he *haven.Error
		if errors.As(err, &he) {
			return 0, err
		}
		return 0, haven.Wrap(haven.EUNAVAILABLE, err, "the file could not be stored")
	}
	return counted.n, nil
}

// mib says n bytes in whole MiB.
func mib(n int64) string { return strconv.FormatInt(n>>20, 10) + " MiB" }

// fileName checks the name a file is stored and later downloaded under: 1
// to 255 characters, not "." or "..", without slashes, control characters
// (a NUL, a line break) or invisible format characters (a right-to-left
// override makes "report\u202efdp.exe" read as "reportexe.pdf"). It
// travels in a Content-Disposition header and into the patient's files.
func fileName(name string) error {
	bad := text("file name", name, 1, 255) != nil || strings.ContainsAny(name, "/\\")
	if t := strings.TrimSpace(name); t == "." || t == ".." {
		bad = true
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			bad = true
		}
	}
	if bad {
		return haven.Errorf(haven.EINVALID, `file name must be 1 to 255 characters, not "." or "..", without slashes or control characters`)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Files lists the files in a patient's chart, newest first, each with
// its details and the renditions it has.
func (s *Service) Files(ctx context.Context, patientID string) ([]haven.FileView, error) {
	row, _, _, _, err := s.gatePatient(ctx, policy.FileRead, policy.KindFile, patientID)
	if err != nil {
		return nil, err
	}
	fs, err := s.db.PatientFiles(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list files")
	}
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
	}
	rs, err := s.db.FileRenditions(ctx, ids...)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list files")
	}
	out := make([]haven.FileView, 0, len(fs))
	for _, f := range fs {
		v, err := s.fileView(ctx, f, rs[f.ID])
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, nil
}

// MayReadFiles reports whether policy would let the signed-in reader
// open the patient's files, asked without a record: for a page choosing
// which links and controls to show. Nothing is opened, and every opening
// is still decided and audited on its own.
func (s *Service) MayReadFiles(ctx context.Context, patientID string) (bool, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return false, err
	}
	if s.blobs == nil || !haven.PlausibleID(patientID) {
		return false, nil
	}
	row, err := s.db.FindPatient(ctx, patientID)
	if err != nil || row.PracticeID != a.PracticeID {
		return false, nil // the gate would refuse it; here nothing is offered
	}
	res := chartResource(policy.KindFile, row)
	facts, _, err := s.loadFacts(ctx, a, res)
	if err != nil {
		return false, err
	}
	return policy.Decide(a, policy.FileRead, res, facts).Allow, nil
}

// fileView opens a file's name and details for a reader the gate let
// through.
func (s *Service) fileView(ctx context.Context, f *haven.File, rs []*haven.FileRendition) (*haven.FileView, error) {
	name, err := s.keys.Open(ctx, fileAD(f.PracticeID, f.PatientID, f.ID, "name"), f.Name)
	if err != nil {
		return nil, err
	}
	v := &haven.FileView{ID: f.ID, PatientID: f.PatientID, Name: string(name), ContentType: f.ContentType, Size: f.Size, UploadedBy: f.UploadedBy, CreatedAt: f.CreatedAt, Renditions: []string{}}
	if len(f.Details) > 0 {
		b, err := s.keys.Open(ctx, fileAD(f.PracticeID, f.PatientID, f.ID, "details"), f.Details)
		if err != nil {
			return nil, err
		}
		v.Details = &haven.FileDetails{}
		if err := json.Unmarshal(b, v.Details); err != nil {
			return nil, haven.Wrap(haven.EINTERNAL, err, "the file's details are unreadable")
		}
	}
	for _, k := range haven.Renditions {
		for _, r := range rs {
			if r.Kind == k {
				v.Renditions = append(v.Renditions, k)
			}
		}
	}
	return v, nil
}

// fileFor loads a file and passes the gate for reading it. An unknown id,
// or one of another practice, is "not found" and audited as such.
func (s *Service) fileFor(ctx context.Context, fileID string) (*haven.File, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if !haven.PlausibleID(fileID) {
		return nil, s.refuseUnknown(ctx, a, policy.FileRead, policy.KindFile, fileID)
	}
	f, err := s.db.FindFile(ctx, fileID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, s.refuseUnknown(ctx, a, policy.FileRead, policy.KindFile, fileID)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the file")
	}
	if _, _, err := s.authorizeRecord(ctx, policy.FileRead, policy.Resource{Kind: policy.KindFile, ID: f.ID, PracticeID: f.PracticeID, PatientID: f.PatientID}, fileID); err != nil {
		return nil, err
	}
	return f, nil
}

// File describes one file of a chart: its name, details and renditions.
func (s *Service) File(ctx context.Context, fileID string) (*haven.FileView, error) {
	f, err := s.fileFor(ctx, fileID)
	if err != nil {
		return nil, err
	}
	rs, err := s.db.FileRenditions(ctx, f.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the file")
	}
	return s.fileView(ctx, f, rs[f.ID])
}

// OpenFile returns a file's description and its decrypted content as a
// stream; a truncated, reordered or edited chunk makes the stream fail.
func (s *Service) OpenFile(ctx context.Context, fileID string) (*haven.FileView, io.ReadCloser, error) {
	f, err := s.fileFor(ctx, fileID)
	if err != nil {
		return nil, nil, err
	}
	info, err := s.fileView(ctx, f, nil)
	if err != nil {
		return nil, nil, err
	}
	rc, err := s.openSealed(ctx, f.BlobKey, fileAD(f.PracticeID, f.PatientID, f.ID, "content"))
	if err != nil {
		return nil, nil, err
	}
	return info, rc, nil
}

// OpenRendition returns one rendition of a file (of haven.Renditions) as
// a stream, with its type and size, under the same gate as the file.
func (s *Service) OpenRendition(ctx context.Context, fileID, kind string) (*haven.FileView, *haven.FileRendition, io.ReadCloser, error) {
	if !slices.Contains(haven.Renditions, kind) {
		return nil, nil, nil, haven.Errorf(haven.EINVALID, "a rendition is one of %s", strings.Join(haven.Renditions, ", "))
	}
	f, err := s.fileFor(ctx, fileID)
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := s.db.FindRendition(ctx, f.ID, kind)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, nil, nil, haven.Errorf(haven.ENOTFOUND, "this file has no %s", kind)
	}
	if err != nil {
		return nil, nil, nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the file")
	}
	info, err := s.fileView(ctx, f, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	rc, err := s.openSealed(ctx, r.BlobKey, fileAD(f.PracticeID, f.PatientID, f.ID, renditionField(kind)))
	if err != nil {
		return nil, nil, nil, err
	}
	return info, r, rc, nil
}

// openSealed opens a sealed blob as a plaintext stream.
func (s *Service) openSealed(ctx context.Context, key string, ad keyring.AD) (io.ReadCloser, error) {
	sealed, err := s.blobs.Get(ctx, key)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "the file content is unavailable")
	}
	plain, err := s.keys.OpenStream(ctx, sealed, ad)
	if err != nil {
		sealed.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{plain, sealed}, nil
}

package service

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode"

	"haven"
	"haven/keyring"
	"haven/policy"
)

// MaxFileSize bounds one upload. Content streams through in chunks, so
// memory does not grow with it.
const MaxFileSize = 2 << 30

// allowedTypes are the file types a chart accepts, by their sniffed
// content (never the client's claim): photos, PDFs, plain text and DICOM.
var allowedTypes = map[string]bool{
	"image/jpeg": true, "image/png": true, "image/webp": true, "application/pdf": true,
	"text/plain; charset=utf-8": true, "application/dicom": true,
}

func fileAD(practiceID, patientID, fileID, field string) keyring.AD {
	return keyring.AD{PracticeID: practiceID, PatientID: patientID, Kind: "file", RecordID: fileID, Field: field}
}

// sniff returns the content type of a file from its first bytes.
func sniff(head []byte) string {
	if len(head) >= 132 && string(head[128:132]) == "DICM" {
		return "application/dicom"
	}
	return http.DetectContentType(head)
}

// UploadFile stores a file in a patient's chart: its type is sniffed and
// checked, its content sealed in chunks under the patient's data key on its
// way to the blob store, so the plaintext never touches disk and memory
// stays flat whatever the size.
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
	br := bufio.NewReaderSize(content, 4096)
	head, _ := br.Peek(512)
	ctype := sniff(head)
	if !allowedTypes[ctype] {
		return nil, haven.Errorf(haven.EINVALID, "files of type %s are not accepted", ctype)
	}
	f := &haven.File{ID: id, PracticeID: row.PracticeID, PatientID: row.ID, UploadedBy: a.UserID, ContentType: ctype,
		BlobKey: "files/" + strings.ToLower(row.PracticeID) + "/" + id}
	if f.Name, err = s.keys.Seal(ctx, fileAD(f.PracticeID, f.PatientID, id, "name"), []byte(name)); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	counted := &countingReader{r: io.LimitReader(br, MaxFileSize+1)}
	go func() {
		w, err := s.keys.SealStream(ctx, pw, fileAD(f.PracticeID, f.PatientID, id, "content"))
		if err == nil {
			_, err = io.Copy(w, counted)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		pw.CloseWithError(err)
	}()
	if _, err := s.blobs.Put(ctx, f.BlobKey, pr); err != nil {
		pr.CloseWithError(err)
		s.blobs.Delete(context.WithoutCancel(ctx), f.BlobKey)
		var he *haven.Error
		if errors.As(err, &he) {
			return nil, err
		}
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "the file could not be stored")
	}
	if counted.n > MaxFileSize {
		s.blobs.Delete(context.WithoutCancel(ctx), f.BlobKey)
		return nil, haven.Errorf(haven.EINVALID, "files may be at most %d MiB", MaxFileSize>>20)
	}
	f.Size = counted.n
	if err := s.db.CreateFile(ctx, f); err != nil {
		s.blobs.Delete(context.WithoutCancel(ctx), f.BlobKey)
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "the file could not be recorded")
	}
	return &haven.FileView{ID: id, PatientID: f.PatientID, Name: name, ContentType: ctype, Size: f.Size, UploadedBy: a.UserID, CreatedAt: f.CreatedAt}, nil
}

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

// Files lists the files in a patient's chart.
func (s *Service) Files(ctx context.Context, patientID string) ([]haven.FileView, error) {
	row, err := s.patientRow(ctx, policy.FileRead, policy.KindFile, patientID)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.FileRead, chartResource(policy.KindFile, row), patientID); err != nil {
		return nil, err
	}
	fs, err := s.db.PatientFiles(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list files")
	}
	out := make([]haven.FileView, 0, len(fs))
	for _, f := range fs {
		name, err := s.keys.Open(ctx, fileAD(f.PracticeID, f.PatientID, f.ID, "name"), f.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, haven.FileView{ID: f.ID, PatientID: f.PatientID, Name: string(name), ContentType: f.ContentType, Size: f.Size, UploadedBy: f.UploadedBy, CreatedAt: f.CreatedAt})
	}
	return out, nil
}

// OpenFile returns a file's description and its decrypted content as a
// stream; a truncated, reordered or edited chunk makes the stream fail.
func (s *Service) OpenFile(ctx context.Context, fileID string) (*haven.FileView, io.ReadCloser, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, nil, err
	}
	if !haven.PlausibleID(fileID) {
		return nil, nil, s.refuseUnknown(ctx, a, policy.FileRead, policy.KindFile, fileID)
	}
	f, err := s.db.FindFile(ctx, fileID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, nil, s.refuseUnknown(ctx, a, policy.FileRead, policy.KindFile, fileID)
	}
	if err != nil {
		return nil, nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the file")
	}
	if _, _, err := s.authorizeRecord(ctx, policy.FileRead, policy.Resource{Kind: policy.KindFile, ID: f.ID, PracticeID: f.PracticeID, PatientID: f.PatientID}, fileID); err != nil {
		return nil, nil, err
	}
	name, err := s.keys.Open(ctx, fileAD(f.PracticeID, f.PatientID, f.ID, "name"), f.Name)
	if err != nil {
		return nil, nil, err
	}
	sealed, err := s.blobs.Get(ctx, f.BlobKey)
	if err != nil {
		return nil, nil, haven.Wrap(haven.EUNAVAILABLE, err, "the file content is unavailable")
	}
	plain, err := s.keys.OpenStream(ctx, sealed, fileAD(f.PracticeID, f.PatientID, f.ID, "content"))
	if err != nil {
		sealed.Close()
		return nil, nil, err
	}
	info := &haven.FileView{ID: f.ID, PatientID: f.PatientID, Name: string(name), ContentType: f.ContentType, Size: f.Size, UploadedBy: f.UploadedBy, CreatedAt: f.CreatedAt}
	return info, struct {
		io.Reader
		io.Closer
	}{plain, sealed}, nil
}

package web

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"time"

	"haven"
)

// A patient's files as pages: the gallery of one patient's files (her
// own, or a chart's for the care team), one file with its preview and
// study, and the upload form. Each list and each file passes the
// service's gate and is in the patient's access history; thumbnails and
// previews are the renditions API's, shown with <img>.

var fileFlashes = map[string]string{"uploaded": "The file is added to the record."}

// filesPage is the gallery: whose files, whether they are the reader's
// own, and the files.
type filesPage struct {
	PatientID string
	Own       bool
	Files     []haven.FileView
}

// filePage is one file and whose gallery it belongs to.
type filePage struct {
	File *haven.FileView
	Own  bool
}

// pageFiles is a patient's "Files": her own gallery.
func (s *Server) pageFiles(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	if a.Role != haven.RolePatient {
		http.Redirect(w, r, "/app", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/app/patients/"+url.PathEscape(a.UserID)+"/files", http.StatusSeeOther)
}

// pagePatientFiles is the gallery of one patient's files, with the form to
// add one.
func (s *Server) pagePatientFiles(w http.ResponseWriter, r *http.Request) {
	s.renderFiles(w, r, r.PathValue("id"), http.StatusOK, fileFlashes[r.URL.Query().Get("done")], "")
}

func (s *Server) renderFiles(w http.ResponseWriter, r *http.Request, patientID string, status int, flash, msg string) {
	a, _ := haven.ActorFromContext(r.Context())
	fs, err := s.svc.Files(r.Context(), patientID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Files and photos")
	p.Flash, p.Error = flash, msg
	p.Data = filesPage{PatientID: patientID, Own: a.Role == haven.RolePatient && a.UserID == patientID, Files: fs}
	s.render(w, r, status, "record_files.html", p)
}

// pageFile is one file: its preview, what the server read from it and its
// downloads.
func (s *Server) pageFile(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	f, err := s.svc.File(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "File")
	p.Data = filePage{File: f, Own: a.Role == haven.RolePatient && a.UserID == f.PatientID}
	s.render(w, r, http.StatusOK, "record_file.html", p)
}

// pageUpload is the patient's own upload (the form of her gallery before
// it had the chart's address).
func (s *Server) pageUpload(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	s.upload(w, r, a.UserID)
}

// pagePatientUpload takes a gallery's form.
func (s *Server) pagePatientUpload(w http.ResponseWriter, r *http.Request) {
	s.upload(w, r, r.PathValue("id"))
}

// upload streams the form's one file from the multipart body into the
// service, which decides its type, cleans and seals it (nothing is
// buffered whole here). The form has two inputs named "file" (choose a
// file, take a photo); the first one filled is taken.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, patientID string) {
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(TransferTimeout))
	mr, err := r.MultipartReader()
	if err != nil {
		s.renderFiles(w, r, patientID, http.StatusBadRequest, "", "Choose a file to add.")
		return
	}
	for {
		part, err := nextFilePart(mr)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.renderFiles(w, r, patientID, http.StatusBadRequest, "", "The upload was cut short; try again.")
			return
		}
		_, err = s.svc.UploadFile(r.Context(), patientID, partName(part), part)
		part.Close()
		if err != nil {
			if haven.ErrorCode(err) == haven.EINVALID {
				s.renderFiles(w, r, patientID, s.errorStatus(w, r, err), "", haven.ErrorMessage(err))
				return
			}
			s.pageError(w, r, err)
			return
		}
		http.Redirect(w, r, "/app/patients/"+url.PathEscape(patientID)+"/files?done=uploaded", http.StatusSeeOther)
		return
	}
	s.renderFiles(w, r, patientID, http.StatusBadRequest, "", "Choose a file to add.")
}

// nextFilePart returns the form's next part named "file" that carries a
// file (an input left empty sends a part without a name), or io.EOF.
func nextFilePart(mr *multipart.Reader) (*multipart.Part, error) {
	for {
		part, err := mr.NextPart()
		if err != nil {
			return nil, err
		}
		if part.FormName() == "file" && partName(part) != "" {
			return part, nil
		}
		part.Close()
	}
}

// partName is the file name a part was sent with, in full (FileName
// keeps only its last path element, which is what Haven wants too, but
// drops a name it cannot parse).
func partName(part *multipart.Part) string {
	name := part.FileName()
	if _, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		name = params["filename"]
	}
	return name
}

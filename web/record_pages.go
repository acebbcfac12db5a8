package web

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"haven"
)

// A patient's own pages for the parts of her record beyond the chart:
// her files (her messages are messages_pages.go's). Each list and each
// file passes the service's gate and is in her access history.

var fileFlashes = map[string]string{"uploaded": "Your file is added to your record."}

// pageFiles lists the patient's files, with a form to add one.
func (s *Server) pageFiles(w http.ResponseWriter, r *http.Request) {
	if a, _ := haven.ActorFromContext(r.Context()); a.Role != haven.RolePatient {
		http.Redirect(w, r, "/app", http.StatusSeeOther)
		return
	}
	s.renderFiles(w, r, http.StatusOK, fileFlashes[r.URL.Query().Get("done")], "")
}

func (s *Server) renderFiles(w http.ResponseWriter, r *http.Request, status int, flash, msg string) {
	a, _ := haven.ActorFromContext(r.Context())
	fs, err := s.svc.Files(r.Context(), a.UserID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Files")
	p.Flash, p.Error = flash, msg
	p.Data = fs
	s.render(w, r, status, "record_files.html", p)
}

// pageUpload takes the files page's form: one file, streamed from the
// multipart body into the service, which sniffs, checks and seals it
// (nothing is buffered whole here).
func (s *Server) pageUpload(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(TransferTimeout))
	mr, err := r.MultipartReader()
	if err != nil {
		s.renderFiles(w, r, http.StatusBadRequest, "", "Choose a file to add.")
		return
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.renderFiles(w, r, http.StatusBadRequest, "", "The upload was cut short; try again.")
			return
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		name := part.FileName()
		if _, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
			name = params["filename"]
		}
		_, err = s.svc.UploadFile(r.Context(), a.UserID, name, part)
		part.Close()
		if err != nil {
			if c := haven.ErrorCode(err); c == haven.EINVALID {
				s.renderFiles(w, r, s.errorStatus(w, r, err), "", haven.ErrorMessage(err))
				return
			}
			s.pageError(w, r, err)
			return
		}
		http.Redirect(w, r, "/app/files?done=uploaded", http.StatusSeeOther)
		return
	}
	s.renderFiles(w, r, http.StatusBadRequest, "", "Choose a file to add.")
}

package web

import (
	"mime"
	"net/http"
	"strconv"
	"time"

	"haven"
	"haven/service"
)

// A patient's rights over her record (HIPAA 164.524 and 164.528): the
// download of her whole record, and the accounting of where it was sent
// outside the practice, printable with her access history. The export
// needs a recent step-up (policy's export.patient): the page's script
// sends her to it when the API asks, and she comes back here.

// apiExport streams the patient's record as a zip: the service decides
// and records the export, then the zip is written as its files are
// decrypted, so nothing waits for the whole record. X-Record-Size is the
// zip's size, about, for a progress bar: the exact size is known only
// once the files are compressed.
func (s *Server) apiExport(w http.ResponseWriter, r *http.Request) {
	x, err := s.svc.PrepareExport(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.streamExport(w, r, x)
}

// streamExport sends x as the zip download.
func (s *Server) streamExport(w http.ResponseWriter, r *http.Request, x *service.Export) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(TransferTimeout))
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": service.ExportName}))
	w.Header().Set("X-Record-Size", strconv.FormatInt(x.Size, 10))
	w.Header().Set("Cache-Control", "no-store")
	flusher := http.NewResponseController(w)
	if err := x.WriteZip(r.Context(), w, func(int64) { flusher.Flush() }); err != nil {
		// The headers are sent: the client sees a cut-short download,
		// which is not a zip.
		s.Logger.Error("record export stream failed", "request_id", RequestID(r.Context()), "patient", x.PatientID, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// exportView is the download page's data.
type exportView struct {
	PatientID string
}

// pageExport is the patient's "Download my record": what the download
// holds and the button, whose script shows its progress.
func (s *Server) pageExport(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	if a.Role != haven.RolePatient {
		http.Redirect(w, r, "/app", http.StatusSeeOther)
		return
	}
	s.show(w, r, "export.html", "Download my record", exportView{PatientID: a.UserID})
}

func (s *Server) apiDisclosures(w http.ResponseWriter, r *http.Request) {
	ds, err := s.svc.Disclosures(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"disclosures": ds})
}

// disclosuresView is the accounting page: the disclosures, then every
// access of her record in words, for one printout.
type disclosuresView struct {
	Disclosures []haven.Disclosure
	History     []historyRow
}

// pageDisclosures is the patient's accounting of disclosures with her
// access history, made to be printed.
func (s *Server) pageDisclosures(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	ds, err := s.svc.Disclosures(r.Context(), a.UserID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	h, err := s.svc.AccessHistory(r.Context(), a.UserID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := disclosuresView{Disclosures: ds}
	for _, e := range h.Events {
		v.History = append(v.History, historyRow{AccessEvent: e, Line: historyLine(e), Refused: e.Decision != "allow"})
	}
	s.show(w, r, "disclosures.html", "Where my record was sent", v)
}

package web

import (
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"haven"
	"haven/service"
)

// The chart, care-team, break-glass, access-history and compliance
// endpoints. Every handler passes the request's actor to the service,
// which decides, audits and only then opens anything.

// uploadFile takes the raw file as the body and its name in the
// Haven-File-Name header (never in the URL: names can be revealing).
func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request) {
	// A large file outlives the server's read timeout; this route alone
	// gets longer, still bounded.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(TransferTimeout))
	name, err := url.PathUnescape(r.Header.Get("Haven-File-Name"))
	if err != nil {
		s.apiError(w, r, errBadParam("Haven-File-Name"))
		return
	}
	info, err := s.svc.UploadFile(r.Context(), r.PathValue("id"), name, r.Body)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

func (s *Server) listFiles(w http.ResponseWriter, r *http.Request) {
	fs, err := s.svc.Files(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"files": fs})
}

// downloadFile streams a file's decrypted content as an attachment, never
// rendered inline, with the type the server decided at upload.
func (s *Server) downloadFile(w http.ResponseWriter, r *http.Request) {
	info, rc, err := s.svc.OpenFile(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	defer rc.Close()
	s.sendFile(w, r, info.ID, info.Name, info.ContentType, info.Size, rc)
}

// fileRenditions describes a file: its details and the renditions it has.
func (s *Server) fileRenditions(w http.ResponseWriter, r *http.Request) {
	info, err := s.svc.File(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// downloadRendition streams one rendition of a file (a thumbnail, a
// preview, a de-identified DICOM copy) as downloadFile does the file.
// Pages show thumbnails and previews with <img>, which an attachment
// does not stop.
func (s *Server) downloadRendition(w http.ResponseWriter, r *http.Request) {
	info, rd, rc, err := s.svc.OpenRendition(r.Context(), r.PathValue("id"), r.PathValue("kind"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	defer rc.Close()
	s.sendFile(w, r, info.ID, renditionName(info.Name, rd.Kind, rd.ContentType), rd.ContentType, rd.Size, rc)
}

// renditionName names a rendition after its file: "scan.dcm" gives
// "scan-deidentified.dcm", "rash.jpg" gives "rash-thumbnail.jpg".
func renditionName(name, kind, ctype string) string {
	base := strings.TrimSuffix(name, path.Ext(name))
	ext := map[string]string{"image/jpeg": ".jpg", "image/png": ".png", "application/dicom": ".dcm"}[ctype]
	return base + "-" + kind + ext
}

// sendFile streams decrypted content as an attachment with its stored
// type, never cached.
func (s *Server) sendFile(w http.ResponseWriter, r *http.Request, id, name, ctype string, size int64, content io.Reader) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(TransferTimeout))
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Cache-Control", "no-store")
	if _, err := io.Copy(w, content); err != nil {
		// Headers are sent: a tampered chunk can only cut the stream short,
		// which the client sees as a truncated download.
		s.Logger.Error("file stream failed", "request_id", RequestID(r.Context()), "file", id, "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) listPatients(w http.ResponseWriter, r *http.Request) {
	ps, err := s.svc.Patients(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"patients": ps})
}

func (s *Server) registerPatient(w http.ResponseWriter, r *http.Request) {
	var np service.NewPatient
	if err := decodeJSON(r, &np); err != nil {
		s.apiError(w, r, err)
		return
	}
	ch, err := s.svc.RegisterPatient(r.Context(), np)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, ch)
}

func (s *Server) getChart(w http.ResponseWriter, r *http.Request) {
	ch, err := s.svc.Chart(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

func (s *Server) updateChart(w http.ResponseWriter, r *http.Request) {
	var up service.ChartUpdate
	if err := decodeJSON(r, &up); err != nil {
		s.apiError(w, r, err)
		return
	}
	ch, err := s.svc.UpdateChart(r.Context(), r.PathValue("id"), up)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

func (s *Server) getCareTeam(w http.ResponseWriter, r *http.Request) {
	team, err := s.svc.CareTeam(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"care_team": team})
}

func (s *Server) addCareTeam(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UserID string `json:"user_id"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.svc.AddToCareTeam(r.Context(), r.PathValue("id"), body.UserID); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) removeCareTeam(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.RemoveFromCareTeam(r.Context(), r.PathValue("id"), r.PathValue("user")); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) breakGlass(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason  string `json:"reason"`
		Minutes int    `json:"minutes"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	g, err := s.svc.RequestBreakGlass(r.Context(), r.PathValue("id"), body.Reason, time.Duration(body.Minutes)*time.Minute)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, g)
}

func (s *Server) accessHistory(w http.ResponseWriter, r *http.Request) {
	h, err := s.svc.AccessHistory(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// searchAudit takes its filters from the query string. They are ids and
// codes (patient id, actor id, action), never PHI, so they may sit in a URL.
func (s *Server) searchAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq := haven.AuditQuery{PatientID: q.Get("patient"), ActorID: q.Get("actor"), Action: q.Get("action"), Decision: q.Get("decision")}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.apiError(w, r, errBadParam("before"))
			return
		}
		aq.BeforeSeq = n
	}
	rows, err := s.svc.SearchAudit(r.Context(), aq)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": auditEventsJSON(rows)})
}

// auditProofs serves a fresh signed checkpoint with, on request, the
// inclusion proof of entry ?seq= and the consistency proof from size ?from=.
func (s *Server) auditProofs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	seq, from := int64(-1), uint64(0)
	if v := q.Get("seq"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.apiError(w, r, errBadParam("seq"))
			return
		}
		seq = n
	}
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.apiError(w, r, errBadParam("from"))
			return
		}
		from = n
	}
	p, err := s.svc.AuditProofs(r.Context(), seq, from)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// getSettings returns the practice's settings (MFA for patients, session
// timeouts, detection thresholds); they hold no PHI.
func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) {
	ps, err := s.svc.Settings(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

// putSettings replaces them (practice admin, with a recent step-up).
func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) {
	var ps service.PracticeSettings
	if err := decodeJSON(r, &ps); err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.svc.UpdateSettings(r.Context(), ps); err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

func (s *Server) alerts(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all")
	if all != "" && all != "0" && all != "1" {
		s.apiError(w, r, errBadParam("all"))
		return
	}
	as, err := s.svc.Alerts(r.Context(), all == "1")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": alertsJSON(as)})
}

func (s *Server) closeAlert(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.CloseAlert(r.Context(), r.PathValue("id")); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) breakGlassQueue(w http.ResponseWriter, r *http.Request) {
	q, err := s.svc.BreakGlassQueue(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": q})
}

func (s *Server) reviewBreakGlass(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Note string `json:"note"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.svc.ReviewBreakGlass(r.Context(), r.PathValue("id"), body.Note); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

package web

import (
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"haven/service"
)

// chartAPI serves the chart, care-team, break-glass, access-history and
// compliance endpoints. Every handler passes the request's actor to the
// service, which decides, audits and only then opens anything.
type chartAPI struct {
	s   *Server
	svc *service.Service
	// auditKey is the audit checkpoint verifier key, shown with a patient's
	// access history so their browser can check the checkpoint's signature.
	auditKey string
}

// UseChart registers the chart and compliance API and pages.
func (s *Server) UseChart(svc *service.Service, auditVerifierKey string) {
	c := &chartAPI{s: s, svc: svc, auditKey: auditVerifierKey}
	s.Handle("GET /api/v1/patients", http.HandlerFunc(c.listPatients))
	s.Handle("POST /api/v1/patients", http.HandlerFunc(c.registerPatient))
	s.Handle("GET /api/v1/patients/{id}", http.HandlerFunc(c.getChart))
	s.Handle("PATCH /api/v1/patients/{id}", http.HandlerFunc(c.updateChart))
	s.Handle("GET /api/v1/patients/{id}/care-team", http.HandlerFunc(c.getCareTeam))
	s.Handle("POST /api/v1/patients/{id}/care-team", http.HandlerFunc(c.addCareTeam))
	s.Handle("DELETE /api/v1/patients/{id}/care-team/{user}", http.HandlerFunc(c.removeCareTeam))
	s.Handle("POST /api/v1/patients/{id}/break-glass", http.HandlerFunc(c.breakGlass))
	s.Handle("GET /api/v1/patients/{id}/access-history", http.HandlerFunc(c.accessHistory))
	s.Handle("GET /api/v1/audit/events", http.HandlerFunc(c.searchAudit))
	s.Handle("GET /api/v1/audit/proofs", http.HandlerFunc(c.auditProofs))
	s.Handle("GET /api/v1/practice/settings", http.HandlerFunc(c.getSettings))
	s.Handle("PUT /api/v1/practice/settings", http.HandlerFunc(c.putSettings))
	s.Handle("GET /api/v1/alerts", http.HandlerFunc(c.alerts))
	s.Handle("POST /api/v1/alerts/{id}/close", http.HandlerFunc(c.closeAlert))
	s.Handle("GET /api/v1/break-glass/queue", http.HandlerFunc(c.breakGlassQueue))
	s.Handle("POST /api/v1/break-glass/{id}/review", http.HandlerFunc(c.reviewBreakGlass))
	s.HandleUpload("POST /api/v1/patients/{id}/files", service.MaxFileSize, http.HandlerFunc(c.uploadFile))
	s.Handle("GET /api/v1/patients/{id}/files", http.HandlerFunc(c.listFiles))
	s.Handle("GET /api/v1/files/{id}", http.HandlerFunc(c.downloadFile))
	c.registerPages()
}

// uploadFile takes the raw file as the body and its name in the
// Haven-File-Name header (never in the URL: names can be revealing).
func (c *chartAPI) uploadFile(w http.ResponseWriter, r *http.Request) {
	// A large file outlives the server's read timeout; this route alone
	// gets longer, still bounded.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(TransferTimeout))
	name, err := url.PathUnescape(r.Header.Get("Haven-File-Name"))
	if err != nil {
		c.s.Error(w, r, errBadParam("Haven-File-Name"))
		return
	}
	info, err := c.svc.UploadFile(r.Context(), r.PathValue("id"), name, r.Body)
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

func (c *chartAPI) listFiles(w http.ResponseWriter, r *http.Request) {
	fs, err := c.svc.Files(r.Context(), r.PathValue("id"))
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"files": fs})
}

// downloadFile streams a file's decrypted content as an attachment, never
// rendered inline, with the type the server sniffed at upload.
func (c *chartAPI) downloadFile(w http.ResponseWriter, r *http.Request) {
	info, rc, err := c.svc.OpenFile(r.Context(), r.PathValue("id"))
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	defer rc.Close()
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(TransferTimeout))
	w.Header().Set("Content-Type", info.ContentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": info.Name}))
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	if _, err := io.Copy(w, rc); err != nil {
		// Headers are sent: a tampered chunk can only cut the stream short,
		// which the client sees as a truncated download.
		c.s.Logger.Error("file stream failed", "request_id", RequestID(r.Context()), "file", info.ID, "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (c *chartAPI) listPatients(w http.ResponseWriter, r *http.Request) {
	ps, err := c.svc.Patients(r.Context())
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"patients": ps})
}

func (c *chartAPI) registerPatient(w http.ResponseWriter, r *http.Request) {
	var np service.NewPatient
	if err := decodeJSON(r, &np); err != nil {
		c.s.Error(w, r, err)
		return
	}
	ch, err := c.svc.RegisterPatient(r.Context(), np)
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, ch)
}

func (c *chartAPI) getChart(w http.ResponseWriter, r *http.Request) {
	ch, err := c.svc.Chart(r.Context(), r.PathValue("id"))
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

func (c *chartAPI) updateChart(w http.ResponseWriter, r *http.Request) {
	var up service.ChartUpdate
	if err := decodeJSON(r, &up); err != nil {
		c.s.Error(w, r, err)
		return
	}
	ch, err := c.svc.UpdateChart(r.Context(), r.PathValue("id"), up)
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

func (c *chartAPI) getCareTeam(w http.ResponseWriter, r *http.Request) {
	team, err := c.svc.CareTeam(r.Context(), r.PathValue("id"))
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"care_team": team})
}

func (c *chartAPI) addCareTeam(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UserID string `json:"user_id"`
	}
	if err := decodeJSON(r, &body); err != nil {
		c.s.Error(w, r, err)
		return
	}
	if err := c.svc.AddToCareTeam(r.Context(), r.PathValue("id"), body.UserID); err != nil {
		c.s.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *chartAPI) removeCareTeam(w http.ResponseWriter, r *http.Request) {
	if err := c.svc.RemoveFromCareTeam(r.Context(), r.PathValue("id"), r.PathValue("user")); err != nil {
		c.s.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *chartAPI) breakGlass(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason  string `json:"reason"`
		Minutes int    `json:"minutes"`
	}
	if err := decodeJSON(r, &body); err != nil {
		c.s.Error(w, r, err)
		return
	}
	g, err := c.svc.RequestBreakGlass(r.Context(), r.PathValue("id"), body.Reason, time.Duration(body.Minutes)*time.Minute)
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, g)
}

func (c *chartAPI) accessHistory(w http.ResponseWriter, r *http.Request) {
	h, err := c.svc.AccessHistory(r.Context(), r.PathValue("id"))
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// searchAudit takes its filters from the query string. They are ids and
// codes (patient id, actor id, action), never PHI, so they may sit in a URL.
func (c *chartAPI) searchAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq := service.AuditQuery{PatientID: q.Get("patient"), ActorID: q.Get("actor"), Action: q.Get("action"), Decision: q.Get("decision")}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			c.s.Error(w, r, errBadParam("before"))
			return
		}
		aq.BeforeSeq = n
	}
	rows, err := c.svc.SearchAudit(r.Context(), aq)
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": auditEventsJSON(rows)})
}

// auditProofs serves a fresh signed checkpoint with, on request, the
// inclusion proof of entry ?seq= and the consistency proof from size ?from=.
func (c *chartAPI) auditProofs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	seq, from := int64(-1), uint64(0)
	if v := q.Get("seq"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			c.s.Error(w, r, errBadParam("seq"))
			return
		}
		seq = n
	}
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			c.s.Error(w, r, errBadParam("from"))
			return
		}
		from = n
	}
	p, err := c.svc.AuditProofs(r.Context(), seq, from)
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// getSettings returns the practice's settings (MFA for patients, session
// timeouts, detection thresholds); they hold no PHI.
func (c *chartAPI) getSettings(w http.ResponseWriter, r *http.Request) {
	ps, err := c.svc.Settings(r.Context())
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

// putSettings replaces them (practice admin, with a recent step-up).
func (c *chartAPI) putSettings(w http.ResponseWriter, r *http.Request) {
	var ps service.PracticeSettings
	if err := decodeJSON(r, &ps); err != nil {
		c.s.Error(w, r, err)
		return
	}
	if err := c.svc.UpdateSettings(r.Context(), ps); err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

func (c *chartAPI) alerts(w http.ResponseWriter, r *http.Request) {
	as, err := c.svc.Alerts(r.Context(), r.URL.Query().Get("all") == "1")
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": alertsJSON(as)})
}

func (c *chartAPI) closeAlert(w http.ResponseWriter, r *http.Request) {
	if err := c.svc.CloseAlert(r.Context(), r.PathValue("id")); err != nil {
		c.s.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *chartAPI) breakGlassQueue(w http.ResponseWriter, r *http.Request) {
	q, err := c.svc.BreakGlassQueue(r.Context())
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": q})
}

func (c *chartAPI) reviewBreakGlass(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Note string `json:"note"`
	}
	if err := decodeJSON(r, &body); err != nil {
		c.s.Error(w, r, err)
		return
	}
	if err := c.svc.ReviewBreakGlass(r.Context(), r.PathValue("id"), body.Note); err != nil {
		c.s.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

package web

import (
	"mime"
	"net/http"

	"haven/service"
)

// The evidence report (service/compliance_report.go) for the compliance
// officer: shown as a page, downloaded as HTML, Markdown or JSON, and
// answered to the API. Each is one report made, and audited, for the
// officer's own practice: no route names a practice, so there is none of
// another's to ask for.

// reportView is the report page's data: the report, and each control
// with the element id its section has (so the list can link to it).
type reportView struct {
	*service.ComplianceReport
	Sections []reportSection
}

type reportSection struct {
	service.ControlReport
	Anchor string
}

func (s *Server) pageComplianceReport(w http.ResponseWriter, r *http.Request) {
	rep, err := s.svc.ComplianceReport(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Evidence report")
	v := reportView{ComplianceReport: rep}
	for _, c := range rep.Controls {
		v.Sections = append(v.Sections, reportSection{ControlReport: c, Anchor: "control-" + service.ReportAnchor(c.ID)})
	}
	p.Data = v
	s.render(w, r, http.StatusOK, "compliance_report.html", p)
}

// pageDownloadReport sends the report as a file in the format the path
// names (html, md or json).
func (s *Server) pageDownloadReport(w http.ResponseWriter, r *http.Request) {
	format := r.PathValue("format")
	if !validReportFormat(format) {
		s.pageError(w, r, errBadParam("format"))
		return
	}
	rep, err := s.svc.ComplianceReport(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.sendReport(w, r, rep, format)
}

// apiComplianceReport answers the report as JSON.
func (s *Server) apiComplianceReport(w http.ResponseWriter, r *http.Request) {
	rep, err := s.svc.ComplianceReport(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) sendReport(w http.ResponseWriter, r *http.Request, rep *service.ComplianceReport, format string) {
	body, ctype, name, err := rep.Render(format)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func validReportFormat(f string) bool {
	for _, x := range service.ReportFormats {
		if f == x {
			return true
		}
	}
	return false
}

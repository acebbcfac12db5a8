package web

import (
	"net/http"
	"net/url"

	"haven"
	"haven/service"
)

// Lab pages: a clinician orders tests from a patient's record and reviews
// and releases what comes back (critical results first); the front desk
// matches by hand the results that matched no one; the patient reads her
// released results, their ranges, flags in plain words and trends. Every
// decision is the service's.

// labStatusWords say where an order is, in plain words.
var labStatusWords = map[haven.LabOrderStatus]string{
	haven.LabQueued:     "Waiting to be sent to the lab",
	haven.LabSent:       "At the lab",
	haven.LabRejected:   "Refused by the lab",
	haven.LabResulted:   "Result received",
	haven.LabCancelling: "Cancelled; waiting for the lab to confirm",
	haven.LabCancelled:  "Cancelled",
}

// labOrderView is the ordering form's data.
type labOrderView struct {
	PatientID, Patient, Query string
	Tests                     []haven.LabTest
	Labs                      []*haven.Vendor
}

func (s *Server) pageOrderLabs(w http.ResponseWriter, r *http.Request) {
	s.renderOrderLabs(w, r, http.StatusOK, "")
}

func (s *Server) renderOrderLabs(w http.ResponseWriter, r *http.Request, status int, msg string) {
	ctx, id := r.Context(), r.PathValue("id")
	ch, err := s.svc.Chart(ctx, id)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := labOrderView{PatientID: id, Patient: ch.Demographics.Name, Query: r.URL.Query().Get("q")}
	if v.Tests, err = s.svc.SearchLabCatalogue(ctx, v.Query); err != nil {
		s.pageError(w, r, err)
		return
	}
	if v.Labs, err = s.svc.Labs(ctx); err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Order lab tests")
	p.Error, p.Data = msg, v
	s.render(w, r, status, "lab_new.html", p)
}

func (s *Server) pagePlaceLabOrder(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.pageError(w, r, haven.Errorf(haven.EINVALID, "the form is unreadable"))
		return
	}
	id := r.PathValue("id")
	_, err := s.svc.OrderLabs(r.Context(), service.NewLabOrder{PatientID: id, LabID: r.PostFormValue("lab"), Tests: r.PostForm["test"], Note: r.PostFormValue("note")})
	switch haven.ErrorCode(err) {
	case "":
		http.Redirect(w, r, "/app/patients/"+url.PathEscape(id)+"?done=lab-order", http.StatusSeeOther)
	case haven.EINVALID:
		s.renderOrderLabs(w, r, s.errorStatus(w, r, err), haven.ErrorMessage(err))
	default:
		s.pageError(w, r, err)
	}
}

// pageCancelLabOrder cancels a lab order from the patient's record and
// returns there.
func (s *Server) pageCancelLabOrder(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.CancelLabOrder(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/patients/"+url.PathEscape(v.PatientID)+"?done=lab-cancel", http.StatusSeeOther)
}

// resultsView is the results page's data: the patient's own released
// results, or the results waiting for the clinician.
type resultsView struct {
	Patient bool
	Results []*haven.LabResultView
}

func (s *Server) pageResults(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	v := resultsView{Patient: a.Role == haven.RolePatient}
	var err error
	if v.Patient {
		v.Results, err = s.svc.Results(r.Context(), a.UserID)
	} else {
		v.Results, err = s.svc.ResultsToReview(r.Context())
	}
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.show(w, r, "lab_results.html", "Lab results", v)
}

// resultView is one result's page data.
type resultView struct {
	Result   *haven.LabResultView
	Reviewer bool // the reader reviews it
}

func (s *Server) pageResult(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	v, err := s.svc.LabResult(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.show(w, r, "lab_result.html", "Lab result", resultView{Result: v, Reviewer: a.UserID == v.ReviewerID && v.Status == haven.ResultToReview})
}

func (s *Server) pageReviewResult(w http.ResponseWriter, r *http.Request) {
	release := r.PostFormValue("release") == "1"
	_, err := s.svc.ReviewResult(r.Context(), r.PathValue("id"), r.PostFormValue("comment"), release)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	done := "reviewed"
	if release {
		done = "released"
	}
	http.Redirect(w, r, "/app/results?done="+done, http.StatusSeeOther)
}

// unmatchedView is the front desk's queue of results to match by hand.
type unmatchedView struct {
	Unmatched []*haven.LabUnmatchedView
	Orders    []*haven.LabOrderView
}

func (s *Server) pageUnmatched(w http.ResponseWriter, r *http.Request) {
	var v unmatchedView
	var err error
	if v.Unmatched, err = s.svc.UnmatchedResults(r.Context()); err != nil {
		s.pageError(w, r, err)
		return
	}
	if v.Orders, err = s.svc.OpenLabOrders(r.Context()); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.show(w, r, "lab_unmatched.html", "Lab results to match", v)
}

func (s *Server) pageMatchResult(w http.ResponseWriter, r *http.Request) {
	if _, err := s.svc.MatchResult(r.Context(), r.PathValue("id"), r.PostFormValue("order")); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/lab-unmatched?done=matched", http.StatusSeeOther)
}

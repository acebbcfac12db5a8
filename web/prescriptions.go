package web

import (
	"io"
	"net/http"
	"net/url"
	"strconv"

	"haven"
	"haven/service"
)

// Prescriptions, allergies and the formulary: the API and the pages. A
// clinician writes a draft from the chart (or a visit), reviews it with
// its warnings on the prescription's page and signs it there; signing
// asks for a fresh step-up every time (the service answers ESTEPUP, and
// the page goes through the step-up and back to the prescription to sign
// again). The patient sees her prescriptions on her record and asks for a
// renewal from one. Every decision is the service's.

// The API.

func (s *Server) apiFormulary(w http.ResponseWriter, r *http.Request) {
	drugs, err := s.svc.SearchFormulary(r.Context(), r.URL.Query().Get("q"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	type drug struct {
		RxNorm     string `json:"rxnorm"`
		Name       string `json:"name"`
		Controlled bool   `json:"controlled"`
	}
	out := make([]drug, 0, len(drugs))
	for _, g := range drugs {
		out = append(out, drug{g.RxNorm, g.Name, g.Controlled()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"drugs": out})
}

func (s *Server) apiImportFormulary(w http.ResponseWriter, r *http.Request) {
	n, err := s.svc.ImportFormulary(r.Context(), io.LimitReader(r.Body, 4<<20))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"drugs": n})
}

func (s *Server) apiPharmacies(w http.ResponseWriter, r *http.Request) {
	vs, err := s.svc.Pharmacies(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	type pharmacy struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	out := make([]pharmacy, 0, len(vs))
	for _, v := range vs {
		out = append(out, pharmacy{v.ID, v.Name})
	}
	writeJSON(w, http.StatusOK, map[string]any{"pharmacies": out})
}

func (s *Server) apiAllergies(w http.ResponseWriter, r *http.Request) {
	as, err := s.svc.Allergies(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"allergies": as})
}

func (s *Server) apiAddAllergy(w http.ResponseWriter, r *http.Request) {
	var req struct{ Substance, Reaction string }
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	a, err := s.svc.AddAllergy(r.Context(), r.PathValue("id"), req.Substance, req.Reaction)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, a)
}

func (s *Server) apiRemoveAllergy(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.RemoveAllergy(r.Context(), r.PathValue("id"), r.PathValue("allergy")); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiPatientPrescriptions(w http.ResponseWriter, r *http.Request) {
	ps, err := s.svc.PatientPrescriptions(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"prescriptions": ps})
}

// apiDraftPrescription writes a draft: for the patient in the path, or
// (POST /api/v1/prescriptions, from a visit) the one in the body.
func (s *Server) apiDraftPrescription(w http.ResponseWriter, r *http.Request) {
	var np service.NewPrescription
	if err := decodeJSON(r, &np); err != nil {
		s.apiError(w, r, err)
		return
	}
	if id := r.PathValue("id"); id != "" {
		np.PatientID = id
	}
	v, err := s.svc.DraftPrescription(r.Context(), np)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) apiPrescription(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.Prescription(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiSignPrescription(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Acknowledge bool `json:"acknowledge"`
	}
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := s.svc.SignPrescription(r.Context(), r.PathValue("id"), req.Acknowledge)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiCancelPrescription(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.CancelPrescription(r.Context(), r.PathValue("id")); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiRenewalRequest(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Note string `json:"note"`
	}
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	t, err := s.svc.RequestRenewal(r.Context(), r.PathValue("id"), req.Note)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"thread_id": t.ID})
}

func (s *Server) apiRenewPrescription(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.RenewPrescription(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

// The pages.

// rxStatusWords say a prescription's status in plain words.
var rxStatusWords = map[haven.PrescriptionStatus]string{
	haven.RxDraft:     "Draft: not signed, not sent",
	haven.RxQueued:    "Signed, waiting to be sent to the pharmacy",
	haven.RxSent:      "Sent to the pharmacy",
	haven.RxAccepted:  "Accepted by the pharmacy",
	haven.RxRejected:  "Refused by the pharmacy",
	haven.RxCancelled: "Cancelled",
}

var rxFlashes = map[string]string{
	"signed":    "Signed. It goes to the pharmacy now; its status shows here.",
	"cancelled": "Cancelled. The pharmacy is told if it had it.",
	"renewal":   "Your request is sent to your prescriber. The answer comes in your messages.",
	"allergy":   "The allergy list is updated.",
}

// prescribeView is the prescribing form's data.
type prescribeView struct {
	PatientID, Patient, Query string
	Drugs                     []haven.Drug
	Pharmacies                []*haven.Vendor
	VisitID                   string
}

func (s *Server) pagePrescribe(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	ch, err := s.svc.Chart(ctx, id)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := prescribeView{PatientID: id, Patient: ch.Demographics.Name, Query: r.URL.Query().Get("q"), VisitID: r.URL.Query().Get("visit")}
	if v.Drugs, err = s.svc.SearchFormulary(ctx, v.Query); err != nil {
		s.pageError(w, r, err)
		return
	}
	if v.Pharmacies, err = s.svc.Pharmacies(ctx); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.show(w, r, "rx_new.html", "Write a prescription", v)
}

func (s *Server) pageDraftPrescription(w http.ResponseWriter, r *http.Request) {
	num := func(name string) int { n, _ := strconv.Atoi(r.PostFormValue(name)); return n }
	np := service.NewPrescription{PatientID: r.PathValue("id"), VisitID: r.PostFormValue("visit"), RxNorm: r.PostFormValue("rxnorm"),
		Strength: r.PostFormValue("strength"), Form: r.PostFormValue("form"), Directions: r.PostFormValue("directions"),
		Quantity: num("quantity"), DaysSupply: num("days_supply"), Refills: num("refills"), Substitution: r.PostFormValue("substitution") == "1",
		PharmacyID: r.PostFormValue("pharmacy")}
	v, err := s.svc.DraftPrescription(r.Context(), np)
	switch haven.ErrorCode(err) {
	case "":
		http.Redirect(w, r, "/app/prescriptions/"+url.PathEscape(v.ID), http.StatusSeeOther)
	case haven.EINVALID:
		p := s.newPage(r, "Write a prescription")
		p.Error = haven.ErrorMessage(err)
		ctx := r.Context()
		pv := prescribeView{PatientID: np.PatientID, VisitID: np.VisitID}
		if ch, err := s.svc.Chart(ctx, np.PatientID); err == nil {
			pv.Patient = ch.Demographics.Name
		}
		pv.Drugs, _ = s.svc.SearchFormulary(ctx, "")
		pv.Pharmacies, _ = s.svc.Pharmacies(ctx)
		p.Data = pv
		s.render(w, r, s.errorStatus(w, r, err), "rx_new.html", p)
	default:
		s.pageError(w, r, err)
	}
}

// rxView is a prescription page's data.
type rxView struct {
	Rx         *haven.PrescriptionView
	StatusText string
	Mine       bool // the reader wrote it
	Patient    bool // the reader is its patient
}

func (s *Server) pagePrescription(w http.ResponseWriter, r *http.Request) {
	s.renderPrescription(w, r, http.StatusOK, "")
}

func (s *Server) renderPrescription(w http.ResponseWriter, r *http.Request, status int, msg string) {
	v, err := s.svc.Prescription(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	a, _ := haven.ActorFromContext(r.Context())
	p := s.newPage(r, "Prescription")
	p.Flash, p.Error = rxFlashes[r.URL.Query().Get("done")], msg
	if r.URL.Query().Get("confirm") != "" && p.Flash == "" && msg == "" {
		p.Flash = "You have confirmed it is you. Sign it now."
	}
	p.Data = rxView{Rx: v, StatusText: rxStatusWords[v.Status], Mine: a.UserID == v.PrescriberID, Patient: a.UserID == v.PatientID}
	s.render(w, r, status, "rx_view.html", p)
}

func (s *Server) pageSignPrescription(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, err := s.svc.SignPrescription(r.Context(), id, r.PostFormValue("acknowledge") == "1")
	s.rxAnswer(w, r, err, "/app/prescriptions/"+url.PathEscape(id), "signed")
}

func (s *Server) pageCancelPrescription(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := s.svc.CancelPrescription(r.Context(), id)
	s.rxAnswer(w, r, err, "/app/prescriptions/"+url.PathEscape(id), "cancelled")
}

func (s *Server) pageRenewalRequest(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, err := s.svc.RequestRenewal(r.Context(), id, r.PostFormValue("note"))
	s.rxAnswer(w, r, err, "/app/prescriptions/"+url.PathEscape(id), "renewal")
}

func (s *Server) pageRenewPrescription(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.RenewPrescription(r.Context(), r.PathValue("id"))
	if err != nil {
		s.rxAnswer(w, r, err, "", "")
		return
	}
	http.Redirect(w, r, "/app/prescriptions/"+url.PathEscape(v.ID), http.StatusSeeOther)
}

// rxAnswer turns a prescription action's answer into where to go: back
// with done, through the step-up and back (to do it again: a GET never
// signs), or the page again with the message.
func (s *Server) rxAnswer(w http.ResponseWriter, r *http.Request, err error, back, done string) {
	switch haven.ErrorCode(err) {
	case "":
		http.Redirect(w, r, back+"?done="+done, http.StatusSeeOther)
	case haven.ESTEPUP:
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape(back+"?confirm=1"), http.StatusSeeOther)
	case haven.EINVALID, haven.ECONFLICT:
		s.renderPrescription(w, r, s.errorStatus(w, r, err), haven.ErrorMessage(err))
	default:
		s.pageError(w, r, err)
	}
}

func (s *Server) pageAddAllergy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.svc.AddAllergy(r.Context(), id, r.PostFormValue("substance"), r.PostFormValue("reaction")); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/patients/"+url.PathEscape(id)+"?done=allergy#allergies", http.StatusSeeOther)
}

func (s *Server) pageRemoveAllergy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.svc.RemoveAllergy(r.Context(), id, r.PathValue("allergy")); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/patients/"+url.PathEscape(id)+"?done=allergy#allergies", http.StatusSeeOther)
}

// pageMyPrescriptions is a patient's prescriptions, active first.
func (s *Server) pageMyPrescriptions(w http.ResponseWriter, r *http.Request) {
	a, _ := haven.ActorFromContext(r.Context())
	ps, err := s.svc.PatientPrescriptions(r.Context(), a.UserID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	var v struct{ Active, Past []*haven.PrescriptionView }
	for _, p := range ps {
		if p.Status.Active() {
			v.Active = append(v.Active, p)
		} else {
			v.Past = append(v.Past, p)
		}
	}
	s.show(w, r, "rx_list.html", "Prescriptions", v)
}

package web

import (
	"net/http"

	"haven"
	"haven/identity"
	"haven/policy"
)

// patientPage refuses a page that is a patient's own (her checklist, the
// form to check a message) to anyone else, before it is shown: the form
// would be refused when sent.
func patientPage(w http.ResponseWriter, r *http.Request, s *Server) bool {
	if a, _ := haven.ActorFromContext(r.Context()); !policy.Permits(a.Role, policy.ContactVerify) {
		s.pageError(w, r, haven.Errorf(haven.EFORBIDDEN, "this page is for patients"))
		return false
	}
	return true
}

// The patient's security checklist: what she can do to keep her record
// safe, how her practice will and will not contact her, and how to report
// something suspicious, with her own state where Haven knows it (whether
// a second factor is on, with the way to turn it on). Reached from her
// navigation on every page, her home among them.

// checklistView is the checklist's data.
type checklistView struct {
	SecondFactor bool // an authenticator app or a passkey is set up
	Passkey      bool
	Practice     string
}

func (s *Server) pageChecklist(w http.ResponseWriter, r *http.Request) {
	if !patientPage(w, r, s) {
		return
	}
	who, err := s.id.Who(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := checklistView{Practice: who.PracticeName}
	for _, f := range who.Factors {
		v.SecondFactor = v.SecondFactor || f == identity.FactorTOTP || f == identity.FactorWebAuthn
		v.Passkey = v.Passkey || f == identity.FactorWebAuthn
	}
	p := s.newPage(r, "Your security checklist")
	p.Practice = who.PracticeName
	p.Data = v
	s.render(w, r, http.StatusOK, "checklist.html", p)
}

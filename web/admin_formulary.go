package web

import (
	"errors"
	"net/http"
	"net/url"

	"haven"
	"haven/policy"
)

// The practice's formulary as a page, for its administrator: what
// prescribers may choose from, and a CSV upload that replaces it (RxNorm
// code, name, and a DEA schedule for a controlled drug). Importing needs a
// recent step-up, as the API does; a file the service refuses is named by
// its line, and the formulary stays as it was.

// maxFormularyUpload bounds the form's body: the service reads at most
// 4 MiB of CSV.
const maxFormularyUpload = 4<<20 + 64<<10

// formularyPage is what the page shows.
type formularyPage struct {
	Query string
	Drugs []haven.Drug
	Again bool // back from the step-up an import asked for
}

func (s *Server) pageFormulary(w http.ResponseWriter, r *http.Request) {
	flash := ""
	if r.URL.Query().Get("done") == "imported" {
		flash = "The formulary is replaced. Prescribers choose from it at once."
	}
	s.renderFormulary(w, r, http.StatusOK, flash, "")
}

func (s *Server) renderFormulary(w http.ResponseWriter, r *http.Request, status int, flash, msg string) {
	if a, _ := haven.ActorFromContext(r.Context()); !policy.Permits(a.Role, policy.PracticeSettings) {
		s.pageError(w, r, haven.Errorf(haven.EFORBIDDEN, "the formulary is kept by the practice's administrator"))
		return
	}
	q := r.URL.Query().Get("q")
	drugs, err := s.svc.SearchFormulary(r.Context(), q)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Formulary")
	p.Flash, p.Error = flash, msg
	p.Data = formularyPage{Query: q, Drugs: drugs, Again: r.URL.Query().Get("again") == "1"}
	s.render(w, r, status, "admin_formulary.html", p)
}

// pageImportFormulary replaces the formulary with the uploaded CSV.
func (s *Server) pageImportFormulary(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseMultipartForm(maxFormularyUpload); err != nil {
		s.renderFormulary(w, r, http.StatusBadRequest, "", "Choose the formulary's CSV file to import (at most 4 MiB).")
		return
	}
	defer r.MultipartForm.RemoveAll()
	f, _, err := r.FormFile("formulary")
	if errors.Is(err, http.ErrMissingFile) || err != nil {
		s.renderFormulary(w, r, http.StatusBadRequest, "", "Choose the formulary's CSV file to import.")
		return
	}
	defer f.Close()
	_, err = s.svc.ImportFormulary(r.Context(), f)
	switch haven.ErrorCode(err) {
	case "":
		http.Redirect(w, r, "/app/admin/formulary?done=imported", http.StatusSeeOther)
	case haven.ESTEPUP:
		// The file does not survive the step-up: the page asks for it again.
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape("/app/admin/formulary?again=1"), http.StatusSeeOther)
	case haven.EINVALID:
		s.renderFormulary(w, r, http.StatusBadRequest, "", "The formulary was not changed: "+haven.ErrorMessage(err)+".")
	default:
		s.pageError(w, r, err)
	}
}

package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"haven"
	"haven/policy"
	"haven/service"
)

// The practice's settings as a page, for its administrator. Only what an
// administrator changes by hand is here (the upload limit, and how many
// days after signing a visit note its patient may read it); the
// rest stays in the settings API. Saving needs a recent step-up, as the
// API does: the service answers ESTEPUP and pageError sends the admin to
// the step-up page, which returns here.

// settingsPage is what the page shows.
type settingsPage struct {
	MaxUploadMiB     int // the practice's, 0 for the default
	DefaultUploadMiB int
	LimitMiB         int // the platform's bound
	NoteReleaseDays  int // 0: a signed note is the patient's at once
	MaxReleaseDays   int

	TrainingRequired  bool
	TrainingGraceDays int
	MaxGraceDays      int

	Networks string // the workforce networks, one a line
	YourAddr string // the address the admin is connected from
}

func (s *Server) pageSettings(w http.ResponseWriter, r *http.Request) {
	flash := ""
	if r.URL.Query().Get("done") == "saved" {
		flash = "The settings are saved."
	}
	s.renderSettings(w, r, http.StatusOK, flash, "")
}

func (s *Server) renderSettings(w http.ResponseWriter, r *http.Request, status int, flash, msg string) {
	// The workforce may read the settings (the API serves them), but this
	// page is a form only an administrator can send: others are told so
	// rather than shown controls that would be refused.
	if a, _ := haven.ActorFromContext(r.Context()); !policy.Permits(a.Role, policy.PracticeSettings) {
		s.pageError(w, r, haven.Errorf(haven.EFORBIDDEN, "the practice's settings are changed by its administrator"))
		return
	}
	ps, err := s.svc.Settings(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, "Practice settings")
	p.Flash, p.Error = flash, msg
	data := settingsPage{MaxUploadMiB: ps.MaxUploadMiB, DefaultUploadMiB: service.DefaultMaxUploadMiB, LimitMiB: service.MaxFileSize >> 20,
		NoteReleaseDays: ps.NoteReleaseDays, MaxReleaseDays: service.MaxNoteReleaseDays,
		TrainingRequired: ps.TrainingRequired, TrainingGraceDays: int(time.Duration(ps.TrainingGrace) / (24 * time.Hour)),
		MaxGraceDays: int(service.MaxTrainingGrace / (24 * time.Hour)),
		Networks:     strings.Join(ps.WorkforceNetworks, "\n"), YourAddr: clientAddr(r)}
	if r.Method == http.MethodPost && r.PostForm.Has("workforce_networks") {
		data.Networks = r.PostFormValue("workforce_networks") // a refused list, shown to correct
	}
	p.Data = data
	s.render(w, r, status, "admin_settings.html", p)
}

// pageSaveSettings changes the upload limit and the notes' release and
// keeps every other setting as it is.
func (s *Server) pageSaveSettings(w http.ResponseWriter, r *http.Request) {
	ps, err := s.svc.Settings(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := strings.TrimSpace(r.PostFormValue("max_upload_mib"))
	n, err := strconv.Atoi(v)
	if v == "" {
		n, err = 0, nil
	}
	if err != nil {
		s.renderSettings(w, r, http.StatusBadRequest, "", "The upload limit is a whole number of MiB.")
		return
	}
	ps.MaxUploadMiB = n
	v = strings.TrimSpace(r.PostFormValue("note_release_days"))
	days, err := strconv.Atoi(v)
	if v == "" {
		days, err = 0, nil
	}
	if err != nil {
		s.renderSettings(w, r, http.StatusBadRequest, "", "The notes' release is a whole number of days.")
		return
	}
	ps.NoteReleaseDays = days
	// The training fields are new to the form: a form without them (an
	// old page still open) keeps what is set.
	if r.PostForm.Has("training_grace_days") {
		v = strings.TrimSpace(r.PostFormValue("training_grace_days"))
		grace, err := strconv.Atoi(v)
		if v == "" {
			grace, err = 0, nil
		}
		if err != nil || grace < 0 || grace > int(service.MaxTrainingGrace/(24*time.Hour)) {
			s.renderSettings(w, r, http.StatusBadRequest, "", "The training grace period is a whole number of days, 0 to "+strconv.Itoa(int(service.MaxTrainingGrace/(24*time.Hour)))+".")
			return
		}
		ps.TrainingGrace = service.Duration(time.Duration(grace) * 24 * time.Hour)
		ps.TrainingRequired = r.PostFormValue("training_required") == "1"
	}
	if r.PostForm.Has("workforce_networks") {
		ps.WorkforceNetworks = networkLines(r.PostFormValue("workforce_networks"))
	}
	if err := s.svc.UpdateSettings(r.Context(), ps); err != nil {
		if haven.ErrorCode(err) == haven.EINVALID {
			s.renderSettings(w, r, http.StatusBadRequest, "", haven.ErrorMessage(err))
			return
		}
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/admin/settings?done=saved", http.StatusSeeOther)
}

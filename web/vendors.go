package web

import (
	"net/http"
	"net/url"
	"time"

	"haven"
)

// The vendor registry, API and admin page: the outside systems the
// practice's data may go to (pharmacies, labs, payment processors) and
// the platform's own (mail relay, file storage, KMS, read-only here), each
// with its business associate agreement. Registering, changing and
// retiring need the admin's recent step-up (the service answers ESTEPUP,
// and the page sends the admin through the step-up and back); every look
// and change is audited by the service.

// vendorJSON is a vendor as the API shows and takes it. Dates are
// YYYY-MM-DD; status says in one word whether it may receive PHI today.
type vendorJSON struct {
	ID          string           `json:"id,omitempty"`
	Platform    bool             `json:"platform,omitempty"` // one of the server's own systems
	Name        string           `json:"name"`
	Kind        haven.VendorKind `json:"kind"`
	Endpoint    string           `json:"endpoint"`
	PHI         haven.PHILevel   `json:"phi"`
	BAASigned   string           `json:"baa_signed,omitempty"`
	BAAExpires  string           `json:"baa_expires,omitempty"`
	BAADocument string           `json:"baa_document,omitempty"`
	Contact     string           `json:"contact,omitempty"`
	Status      string           `json:"status,omitempty"` // current, no_baa, expired, retired
	Retired     *time.Time       `json:"retired,omitempty"`
}

func dateString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.DateOnly)
}

// vendorStatus is v's standing today: current, no_baa, expired or retired.
func vendorStatus(v *haven.Vendor, now time.Time) string {
	switch v.EgressRefusal(v.PHI, now) {
	case "":
		return "current"
	case haven.EgressRetired:
		return "retired"
	case haven.EgressExpired:
		return "expired"
	}
	return "no_baa"
}

func toVendorJSON(v *haven.Vendor, now time.Time) vendorJSON {
	j := vendorJSON{ID: v.ID, Platform: v.PracticeID == "", Name: v.Name, Kind: v.Kind, Endpoint: v.Endpoint, PHI: v.PHI,
		BAASigned: dateString(v.BAASigned), BAAExpires: dateString(v.BAAExpires), BAADocument: v.BAADocument, Contact: v.Contact,
		Status: vendorStatus(v, now)}
	if !v.Retired.IsZero() {
		t := v.Retired
		j.Retired = &t
	}
	return j
}

// vendor turns the request's fields into a vendor, or EINVALID naming the
// date that is not one.
func (j vendorJSON) vendor() (*haven.Vendor, error) {
	v := &haven.Vendor{Name: j.Name, Kind: j.Kind, Endpoint: j.Endpoint, PHI: j.PHI, BAADocument: j.BAADocument, Contact: j.Contact}
	var err error
	if v.BAASigned, err = haven.ParseDate(j.BAASigned); err != nil {
		return nil, haven.Errorf(haven.EINVALID, "the signing date must be written YYYY-MM-DD")
	}
	if v.BAAExpires, err = haven.ParseDate(j.BAAExpires); err != nil {
		return nil, haven.Errorf(haven.EINVALID, "the end date must be written YYYY-MM-DD")
	}
	return v, nil
}

func (s *Server) apiVendors(w http.ResponseWriter, r *http.Request) {
	vs, err := s.svc.Vendors(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	now := time.Now()
	out := make([]vendorJSON, 0, len(vs))
	for _, v := range vs {
		out = append(out, toVendorJSON(v, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"vendors": out})
}

func (s *Server) apiVendor(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.Vendor(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toVendorJSON(v, time.Now()))
}

func (s *Server) apiAddVendor(w http.ResponseWriter, r *http.Request) {
	var j vendorJSON
	if err := decodeJSON(r, &j); err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := j.vendor()
	if err == nil {
		err = s.svc.AddVendor(r.Context(), v)
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toVendorJSON(v, time.Now()))
}

func (s *Server) apiUpdateVendor(w http.ResponseWriter, r *http.Request) {
	var j vendorJSON
	if err := decodeJSON(r, &j); err != nil {
		s.apiError(w, r, err)
		return
	}
	v, err := j.vendor()
	if err == nil {
		v.ID = r.PathValue("id")
		err = s.svc.UpdateVendor(r.Context(), v)
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toVendorJSON(v, time.Now()))
}

func (s *Server) apiRetireVendor(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.RetireVendor(r.Context(), r.PathValue("id")); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// vendorsView is the admin page's data.
type vendorsView struct {
	Vendors   []vendorJSON
	Kinds     []haven.VendorKind
	Levels    []haven.PHILevel
	FormToken string
	Edit      *vendorJSON // the vendor being changed, from ?edit=
	Confirm   bool        // back from the step-up a change asked for
}

var vendorFlash = map[string]string{
	"added":   "The vendor is registered.",
	"updated": "The vendor is updated.",
	"retired": "The vendor is retired. Nothing more is sent to it.",
}

func (s *Server) pageVendors(w http.ResponseWriter, r *http.Request) {
	s.renderVendors(w, r, http.StatusOK, vendorFlash[r.URL.Query().Get("done")], "", nil)
}

// renderVendors shows the registry; form, when set, is what the admin
// sent and is shown again (with msg saying what to fix).
func (s *Server) renderVendors(w http.ResponseWriter, r *http.Request, status int, flash, msg string, form *vendorJSON) {
	vs, err := s.svc.Vendors(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	now := time.Now()
	v := vendorsView{Kinds: haven.VendorKinds, Levels: haven.PHILevels, FormToken: formToken(w, r), Confirm: r.URL.Query().Get("confirm") != ""}
	edit := r.URL.Query().Get("edit")
	for _, x := range vs {
		j := toVendorJSON(x, now)
		v.Vendors = append(v.Vendors, j)
		if x.ID == edit && !j.Platform && j.Retired == nil {
			v.Edit = &j
		}
	}
	if form != nil {
		v.Edit = form
	}
	p := s.newPage(r, "Vendors")
	p.Flash, p.Error, p.Data = flash, msg, v
	if v.Confirm && flash == "" && msg == "" {
		p.Flash = "You have confirmed it is you. Send the form again."
	}
	s.render(w, r, status, "admin_vendors.html", p)
}

// vendorForm reads the page's form.
func vendorForm(r *http.Request) vendorJSON {
	return vendorJSON{ID: r.PostFormValue("id"), Name: r.PostFormValue("name"), Kind: haven.VendorKind(r.PostFormValue("kind")),
		Endpoint: r.PostFormValue("endpoint"), PHI: haven.PHILevel(r.PostFormValue("phi")), BAASigned: r.PostFormValue("baa_signed"),
		BAAExpires: r.PostFormValue("baa_expires"), BAADocument: r.PostFormValue("baa_document"), Contact: r.PostFormValue("contact")}
}

// pageSaveVendor registers (no id) or changes (an id) a vendor.
func (s *Server) pageSaveVendor(w http.ResponseWriter, r *http.Request) {
	if !s.checkFormToken(w, r) {
		return
	}
	j := vendorForm(r)
	v, err := j.vendor()
	done := "added"
	if err == nil {
		if j.ID != "" {
			v.ID, done = j.ID, "updated"
			err = s.svc.UpdateVendor(r.Context(), v)
		} else {
			err = s.svc.AddVendor(r.Context(), v)
		}
	}
	s.vendorAnswer(w, r, err, done, &j)
}

func (s *Server) pageRetireVendor(w http.ResponseWriter, r *http.Request) {
	if !s.checkFormToken(w, r) {
		return
	}
	s.vendorAnswer(w, r, s.svc.RetireVendor(r.Context(), r.PathValue("id")), "retired", nil)
}

func (s *Server) vendorAnswer(w http.ResponseWriter, r *http.Request, err error, done string, form *vendorJSON) {
	back := "/app/admin/vendors"
	switch haven.ErrorCode(err) {
	case "":
		http.Redirect(w, r, back+"?done="+done, http.StatusSeeOther)
	case haven.ESTEPUP:
		// Through the step-up and back to the form, to send it again: a
		// GET never changes the registry.
		q := "?confirm=1"
		if form != nil && form.ID != "" {
			q += "&edit=" + url.QueryEscape(form.ID)
		}
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape(back+q), http.StatusSeeOther)
	case haven.EINVALID, haven.ECONFLICT:
		s.renderVendors(w, r, s.errorStatus(w, r, err), "", haven.ErrorMessage(err), form)
	default:
		s.pageError(w, r, err)
	}
}

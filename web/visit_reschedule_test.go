package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// slotAt is today's h:m on the visit stack's clock, as the pages and the
// API write a start.
func (st *visitStack) slotAt(h, m int) string {
	return st.clock.Now().Truncate(24 * time.Hour).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute).Format(time.RFC3339)
}

// visitStart reads where a visit stands in the database.
func (st *visitStack) visitStart(id string) string {
	st.t.Helper()
	v, err := st.db.FindVisit(context.Background(), id)
	if err != nil {
		st.t.Fatal(err)
	}
	return v.Start.Format(time.RFC3339)
}

// TestPatientReschedulesThroughTheAPIAndThePage: the patient moves a
// booked visit over the API, then from the visit list (the list offers
// "Reschedule", which shows the clinician's free times and a form), and
// each refused time (not a slot, held, past, malformed) is an error that
// leaves the visit where it was. Once the patient has checked in the list
// no longer offers it and the API refuses.
func TestPatientReschedulesThroughTheAPIAndThePage(t *testing.T) {
	t.Parallel()
	st := newVisitStack(t, false)
	pat := st.patient(patientEmail)
	id := st.book(pat, doctor)
	path := "/api/v1/visits/" + id + "/reschedule"

	r := pat.api("POST", path, map[string]string{"start": st.slotAt(11, 0)})
	expectStatus(t, r, http.StatusOK)
	if got := decode[map[string]string](t, r); got["start"] != st.slotAt(11, 0) || got["state"] != "booked" || got["reason"] != "" {
		t.Fatalf("API answer %v", got)
	}
	if st.visitStart(id) != st.slotAt(11, 0) {
		t.Fatal("the API did not move the visit")
	}
	if ev := st.lastEvent(st.practice, "visit.reschedule"); ev.ActorID != st.users[patientEmail] || ev.ResourceID != id {
		t.Fatalf("the move is not audited: %+v", ev)
	}

	// A second visit of the patient's holds 11:30.
	expectRedirect(t, pat.post("/app/visits", url.Values{"clinician": {st.users[doctor]}, "start": {st.slotAt(11, 30)}, "reason": {"second visit"}}), "/app/visits?done=booked")
	for _, c := range []struct {
		body   any
		status int
	}{
		{map[string]string{"start": st.slotAt(11, 30)}, http.StatusConflict},                      // held
		{map[string]string{"start": st.slotAt(11, 10)}, http.StatusConflict},                      // no slot
		{map[string]string{"start": st.slotAt(10, 0)}, http.StatusBadRequest},                     // past
		{map[string]string{"start": "tomorrow at ten"}, http.StatusBadRequest},                    // malformed
		{map[string]any{"start": st.slotAt(10, 30), "reason": "smuggled"}, http.StatusBadRequest}, // unknown field
	} {
		expectStatus(t, pat.api("POST", path, c.body), c.status)
		if st.visitStart(id) != st.slotAt(11, 0) {
			t.Fatalf("a refused move (%v) moved the visit", c.body)
		}
	}

	// The page: the list offers the move, the move section lists free
	// times (10:30 is free again, 11:00 is the visit's own), the form moves.
	list := readAll(t, pat.get("/app/visits"))
	if !strings.Contains(list, `id="reschedule-`+id+`"`) {
		t.Fatalf("the list does not offer to move the visit:\n%s", list)
	}
	r = pat.get("/app/visits?reschedule=" + id)
	page := readAll(t, r)
	if r.StatusCode != http.StatusOK || !strings.Contains(page, `id="reschedule-form"`) || !strings.Contains(page, `action="/app/visits/`+id+`/reschedule"`) ||
		!strings.Contains(page, `value="`+st.slotAt(10, 30)+`"`) || strings.Contains(page, `value="`+st.slotAt(11, 0)+`"`) {
		t.Fatalf("the move section (%d):\n%s", r.StatusCode, page)
	}
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]|\son[a-z]+=|style=`)
	if inline.MatchString(page) {
		t.Fatal("the move section carries inline script or style")
	}
	r = pat.post("/app/visits/"+id+"/reschedule", url.Values{"start": {st.slotAt(11, 30)}})
	if body := readAll(t, r); r.StatusCode != http.StatusConflict || !strings.Contains(body, `id="reschedule-form"`) {
		t.Fatalf("a held slot from the page: %d\n%s", r.StatusCode, body)
	}
	expectStatus(t, pat.post("/app/visits/"+id+"/reschedule", url.Values{"start": {"soon"}}), http.StatusBadRequest)
	expectRedirect(t, pat.post("/app/visits/"+id+"/reschedule", url.Values{"start": {st.slotAt(10, 30)}}), "/app/visits?done=rescheduled")
	if st.visitStart(id) != st.slotAt(10, 30) {
		t.Fatal("the page did not move the visit")
	}
	// A form posted from another site is refused before it reaches the
	// service, like every other form.
	r = pat.do("POST", "/app/visits/"+id+"/reschedule", strings.NewReader(url.Values{"start": {st.slotAt(11, 0)}}.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	expectStatus(t, r, http.StatusForbidden)
	if st.visitStart(id) != st.slotAt(10, 30) {
		t.Fatal("a cross-site form moved the visit")
	}

	// Checked in, the visit keeps its time.
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+id+"/check-in", nil), http.StatusOK)
	if list := readAll(t, pat.get("/app/visits")); strings.Contains(list, `id="reschedule-`+id+`"`) {
		t.Fatal("the list offers to move a checked-in visit")
	}
	expectStatus(t, pat.api("POST", path, map[string]string{"start": st.slotAt(11, 0)}), http.StatusConflict)
	if r := pat.get("/app/visits?reschedule=" + id); !strings.Contains(readAll(t, r), "cannot be moved") {
		t.Fatal("the move section opened for a checked-in visit")
	}
}

// TestFrontDeskReschedulesFromThePatientsList: the front desk opens a
// patient's visit list, moves a visit and comes back to the same list; the
// desk of another practice, and another practice's patient, reach neither
// the list nor the visit.
func TestFrontDeskReschedulesFromThePatientsList(t *testing.T) {
	t.Parallel()
	st := newVisitStack(t, false)
	pat := st.patient(patientEmail)
	id := st.book(pat, doctor)
	patient := st.users[patientEmail]

	deskC := st.clinician(desk) // signs a workforce member in with an authenticator
	// The desk has no visits of its own: its list is a patient's, found
	// from the patient list.
	expectRedirect(t, deskC.get("/app/visits"), "/app/patients")
	list := readAll(t, deskC.get("/app/visits?patient="+patient))
	if !strings.Contains(list, `id="reschedule-`+id+`"`) || !strings.Contains(list, `id="clinician"`) || !strings.Contains(list, `name="patient" value="`+patient+`"`) {
		t.Fatalf("the desk's view of the patient's visits:\n%s", list)
	}
	page := readAll(t, deskC.get("/app/visits?patient="+patient+"&reschedule="+id))
	if !strings.Contains(page, `name="patient" value="`+patient+`"`) || !strings.Contains(page, `value="`+st.slotAt(11, 0)+`"`) {
		t.Fatalf("the desk's move section:\n%s", page)
	}
	r := deskC.post("/app/visits/"+id+"/reschedule", url.Values{"start": {st.slotAt(11, 0)}, "patient": {patient}})
	expectRedirect(t, r, "/app/visits?")
	if loc := r.Header.Get("Location"); !strings.Contains(loc, "done=rescheduled") || !strings.Contains(loc, "patient="+patient) {
		t.Fatalf("the desk is sent to %s", loc)
	}
	if st.visitStart(id) != st.slotAt(11, 0) {
		t.Fatal("the desk did not move the visit")
	}
	if ev := st.lastEvent(st.practice, "visit.reschedule"); ev.ActorID != st.users[desk] || ev.PatientID != patient {
		t.Fatalf("the desk's move is not audited: %+v", ev)
	}
	// Whatever the desk posts as the patient, the redirect stays an id on
	// this site.
	r = deskC.post("/app/visits/"+id+"/reschedule", url.Values{"start": {st.slotAt(11, 30)}, "patient": {"https://evil.example/"}})
	if loc := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || strings.Contains(loc, "evil") {
		t.Fatalf("redirect %d to %q", r.StatusCode, loc)
	}

	otherDesk := st.clinician("frontdesk@lakeshore.example")
	expectStatus(t, otherDesk.get("/app/visits?patient="+patient), http.StatusNotFound)
	expectStatus(t, otherDesk.post("/app/visits/"+id+"/reschedule", url.Values{"start": {st.slotAt(10, 30)}}), http.StatusNotFound)
	outsider := st.patient(otherPatient)
	expectStatus(t, outsider.api("POST", "/api/v1/visits/"+id+"/reschedule", map[string]string{"start": st.slotAt(10, 30)}), http.StatusNotFound)
	expectStatus(t, outsider.post("/app/visits/"+id+"/reschedule", url.Values{"start": {st.slotAt(10, 30)}}), http.StatusNotFound)
	// A patient cannot open someone else's list by naming them.
	if r := outsider.get("/app/visits?patient=" + patient); strings.Contains(readAll(t, r), id) {
		t.Fatal("another practice's patient saw the visit")
	}
	if st.visitStart(id) != st.slotAt(11, 30) {
		t.Fatal("a refused move changed the visit")
	}
}

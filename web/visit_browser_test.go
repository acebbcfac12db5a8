package web_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"haven"
	"haven/internal/testkit"
)

// mediaBrowser is testkit.Browser with Chromium's fake camera and
// microphone (a test pattern and a tone) and its camera prompt answered
// yes. Each call starts its own browser with a fresh profile. It talks
// only to the loopback servers the test started.
func mediaBrowser(tb testing.TB) context.Context {
	tb.Helper()
	return testkit.Browser(tb, testkit.FakeMedia...)
}

// enter types into fields by id and clicks submit, then waits for next.
func enter(t testing.TB, ctx context.Context, fields map[string]string, submit, next string) {
	t.Helper()
	for id, v := range fields {
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID(id)), chromedp.SetValue(chromedp.ID(id), v)); err != nil {
			t.Fatalf("fill #%s: %v", id, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID(submit)), chromedp.WaitVisible(chromedp.CSS(next))); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("after #%s, waiting for %s at %s: %v", submit, next, loc, err)
	}
}

// textOf returns the trimmed text of the element sel, once that element
// itself is visible (see text in auth_browser_test.go).
func textOf(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// signInPatient and signInClinician sign in through the pages; the
// clinician's first sign-in enrols TOTP with a code computed here.
func signInPatient(t testing.TB, ctx context.Context, base string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/login")); err != nil {
		t.Fatal(err)
	}
	enter(t, ctx, map[string]string{"email": patientEmail, "password": stackPassword}, "sign-in", "#welcome")
}

func signInClinician(t testing.TB, ctx context.Context, base string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/login")); err != nil {
		t.Fatal(err)
	}
	enter(t, ctx, map[string]string{"email": doctor, "password": stackPassword}, "sign-in", "#totp-secret")
	secret := strings.ReplaceAll(textOf(t, ctx, "#totp-secret"), " ", "")
	code, err := appCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	enter(t, ctx, map[string]string{"code": code}, "confirm", "#recovery-codes li")
	click(t, ctx, "#continue")
}

// waitFor evaluates expr (a number) in the page until it is positive,
// across navigations, within the browser's deadline; it returns the value.
func waitFor(t testing.TB, ctx context.Context, what, expr string) float64 {
	t.Helper()
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](expr))
		if err == nil && v > 0 {
			return v
		}
		select {
		case <-ctx.Done():
			loc, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Location())
			t.Fatalf("%s: never happened (at %s, last %v, %v)", what, loc, v, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func click(t testing.TB, ctx context.Context, sel string) {
	t.Helper()
	// A page that has just loaded may still replace the node between
	// finding and clicking it ("could not find node"): try again, briefly.
	var err error
	for try := 0; try < 5; try++ {
		if err = chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel))); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	t.Fatalf("click %s at %s: %v", sel, loc, err)
}

// bookNextSlot books the patient's next free slot with the clinician,
// as the patient, and returns the visit.
func (st *visitStack) bookNextSlot(patient, doc string) *haven.VisitView {
	st.tb.Helper()
	ctx := haven.NewContextWithActor(context.Background(), haven.Actor{UserID: st.users[patient], PracticeID: st.practice,
		Role: haven.RolePatient, SessionID: "test", ClientAddr: "127.0.0.1", RequestID: "test", AuthTime: time.Now()})
	now := time.Now()
	slots, err := st.svc.Slots(ctx, st.users[doc], now, now.Add(time.Hour))
	if err != nil || len(slots) == 0 {
		st.tb.Fatalf("no slot: %v", err)
	}
	v, err := st.svc.BookVisit(ctx, st.users[patient], st.users[doc], slots[0].Start, "sore throat")
	if err != nil {
		st.tb.Fatal(err)
	}
	return v
}

// TestBrowserVideoVisit is the acceptance test of video visits: two
// headless Chromiums with fake cameras. The patient signs in, runs the
// pre-visit check, ticks the checklist, checks in and waits; the
// clinician signs in (enrolling TOTP), sees the patient in the waiting
// room and admits them; the patient's page opens the call by itself, and
// both browsers decode video frames from each other through the SFU, on
// loopback (ICE picks the path; the TURN relay is offered to both). The
// clinician then ends the visit, and the patient's page and the database
// both say so.
func TestBrowserVideoVisit(t *testing.T) {
	if testing.Short() {
		t.Skip("two browsers and a call")
	}
	st := newVisitStack(t, true)
	visit := st.bookNextSlot(patientEmail, doctor)
	patient, clinician, admittedAt := callInBrowsers(t, st, visit)

	// Both sides decode the other's video.
	frames := `Number((document.getElementById('call') || {dataset: {}}).dataset.framesDecoded || 0)`
	pf := waitFor(t, patient, "patient decodes video", frames)
	cf := waitFor(t, clinician, "clinician decodes video", frames)
	first := waitFor(t, patient, "first frame time", `Number(document.getElementById('call').dataset.firstFrameAt || 0)`)
	t.Logf("frames decoded: patient %v, clinician %v; admission to the patient's first decoded frame: %v",
		pf, cf, time.UnixMilli(int64(first)).Sub(admittedAt).Round(time.Millisecond))
	for who, ctx := range map[string]context.Context{"patient": patient, "clinician": clinician} {
		marks, _ := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`Object.fromEntries(Object.entries(document.getElementById('call').dataset).filter(([k]) => k.startsWith('at') || k === 'firstFrameAt'))`))
		var line []string
		for k, v := range marks {
			ms, _ := strconv.ParseInt(v, 10, 64)
			line = append(line, fmt.Sprintf("%s=+%dms", k, ms-admittedAt.UnixMilli()))
		}
		sort.Strings(line)
		route, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('call').dataset.route || ''`))
		t.Logf("%s (media path %q): %s", who, route, strings.Join(line, " "))
	}

	// A dropped connection: the patient's page rejoins with a fresh
	// token (the old one is spent) and video flows again.
	if _, err := chromedp.Run(patient, chromedp.Evaluate[any](`window.havenCall.rejoin()`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, patient, "rejoined", `Number(document.getElementById('call').dataset.joins) >= 2 ? 1 : 0`)
	// From here the old connection is closed: what is decoded is new.
	before := waitFor(t, patient, "frames", frames)
	waitFor(t, patient, "video after the rejoin", fmt.Sprintf(`%s > %v && document.getElementById('call').dataset.state === 'connected' ? 1 : 0`, frames, before))

	// The door saw the joins, each audited with the patient named.
	rows := st.joins(visit.ID)
	if rows < 3 {
		t.Fatalf("%d joins audited", rows)
	}

	// Each part gets its own controls from the server: ending the visit
	// and inviting are the clinician's, not in the patient's page at all.
	const controls = `[!!document.getElementById('end'), !!document.getElementById('invite-form')]`
	if got, _ := chromedp.Run(patient, chromedp.Evaluate[[]bool](controls)); got[0] || got[1] {
		t.Errorf("the patient's call page has the clinician's controls (end, invite): %v", got)
	}
	if got, _ := chromedp.Run(clinician, chromedp.Evaluate[[]bool](controls)); !got[0] || !got[1] {
		t.Errorf("the clinician's call page lacks end or invite: %v", got)
	}
	// Tiles are labelled with names, not roles.
	label := `Array.from(document.querySelectorAll('#remote .label')).map(e => e.textContent).join('|')`
	waitFor(t, patient, "the clinician named on the patient's screen", fmt.Sprintf(`(%s).includes('Worker %s') ? 1 : 0`, label, doctor))
	waitFor(t, clinician, "the patient named on the clinician's screen", fmt.Sprintf(`(%s).includes('Maria Lopez') ? 1 : 0`, label))

	// The clinician invites the front desk by name; the desk finds the
	// call on its home page, joins, and is named on the others' screens.
	if err := chromedp.Do(clinician, chromedp.SetValue(chromedp.ID("invitee"), "frontdesk")); err != nil {
		t.Fatal(err)
	}
	click(t, clinician, "#find-invitee")
	click(t, clinician, "#invitees button[data-invite]")
	guest := mediaBrowser(t)
	joinInvited(t, st, guest, desk, visit.ID)
	waitFor(t, guest, "the guest decodes video", frames)
	if got, _ := chromedp.Run(guest, chromedp.Evaluate[[]bool](controls)); got[0] || got[1] {
		t.Errorf("the guest's call page has the clinician's controls: %v", got)
	}
	guestName := "Worker " + desk
	waitFor(t, patient, "the guest named on the patient's screen", fmt.Sprintf(`(%s).includes(%q) ? 1 : 0`, label, guestName))
	waitFor(t, clinician, "the guest named on the clinician's screen", fmt.Sprintf(`(%s).includes(%q) ? 1 : 0`, label, guestName))

	// The clinician ends the visit: the patient's page says so and
	// stops, its controls gone but one way back; the visit is ended in
	// the database.
	click(t, clinician, "#end")
	click(t, clinician, "#end")
	waitFor(t, patient, "the patient sees the end", `document.getElementById('call').dataset.state === 'ended' ? 1 : 0`)
	if got, _ := chromedp.Run(patient, chromedp.Evaluate[[]bool](`[!!document.getElementById('mute'), !!document.getElementById('leave'), !!document.getElementById('back')]`)); got[0] || got[1] || !got[2] {
		t.Errorf("after the end, the patient's page still has call controls, or no way back (mute, leave, back): %v", got)
	}
	v, err := st.db.FindVisit(context.Background(), visit.ID)
	if err != nil || v.State != "ended" {
		t.Fatalf("after the end: %+v %v", v, err)
	}
	// Her access history names the guest, in words.
	click(t, patient, "#back")
	click(t, patient, "#nav-history")
	if got := textOf(t, patient, "main"); !strings.Contains(got, "invited "+guestName+" to the video call") {
		t.Errorf("the access history does not name the guest:\n%s", got)
	}
}

// callInBrowsers brings the patient and the clinician into visit's call,
// each in a headless Chromium with a fake camera, through the pages: the
// patient signs in, runs the pre-visit check, ticks the checklist, checks
// in and waits; the clinician signs in (enrolling TOTP), finds her in the
// waiting room by name and admits her. It returns when the clinician has
// clicked admit (at admittedAt); both pages then open the call by
// themselves.
func callInBrowsers(t *testing.T, st *visitStack, visit *haven.VisitView) (patient, clinician context.Context, admittedAt time.Time) {
	t.Helper()
	patient, clinician = mediaBrowser(t), mediaBrowser(t)

	// The patient: sign in, the pre-visit page, check in, wait.
	signInPatient(t, patient, st.base)
	click(t, patient, "#nav-visits")
	click(t, patient, "#check-in-"+visit.ID)
	click(t, patient, "#test-devices")
	waitFor(t, patient, "camera and microphone test", `document.getElementById('checkin').dataset.devices === 'ok' ? 1 : 0`)
	click(t, patient, "#test-network")
	waitFor(t, patient, "network test", `['good','fair','poor'].includes(document.getElementById('checkin').dataset.network) ? 1 : 0`)
	if on, _ := chromedp.Run(patient, chromedp.Evaluate[bool](`!document.getElementById('check-in').disabled`)); on {
		t.Fatal("check-in is possible before the security checklist is ticked")
	}
	for _, box := range []string{"#chk-room", "#chk-network", "#chk-device", "#chk-messages"} {
		click(t, patient, box)
	}
	click(t, patient, "#check-in")
	waitFor(t, patient, "waiting room", `document.getElementById('checkin').dataset.state === 'waiting' ? 1 : 0`)

	// The clinician: first sign-in enrols TOTP, then the waiting room.
	signInClinician(t, clinician, st.base)
	click(t, clinician, "#nav-waiting-room")
	admit := "#admit-" + visit.ID
	if err := chromedp.Do(clinician, chromedp.WaitVisible(chromedp.CSS(admit))); err != nil {
		t.Fatalf("the patient is not in the waiting room: %v", err)
	}
	name := textOf(t, clinician, "tr[data-visit='"+visit.ID+"'] td")
	if name != "Maria Lopez" {
		t.Fatalf("the queue shows %q", name)
	}
	admittedAt = time.Now()
	click(t, clinician, admit)
	return patient, clinician, admittedAt
}

// joinInvited signs the invited worker email in on guest (enrolling TOTP)
// and joins visitID's call from the link on their home page.
func joinInvited(t *testing.T, st *visitStack, guest context.Context, email, visitID string) {
	t.Helper()
	if err := chromedp.Do(guest, chromedp.Navigate(st.base+"/login")); err != nil {
		t.Fatal(err)
	}
	enter(t, guest, map[string]string{"email": email, "password": stackPassword}, "sign-in", "#totp-secret")
	secret := strings.ReplaceAll(textOf(t, guest, "#totp-secret"), " ", "")
	code, err := appCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	enter(t, guest, map[string]string{"code": code}, "confirm", "#recovery-codes li")
	click(t, guest, "#continue")
	click(t, guest, "#join-invited-"+visitID)
}

func (st *visitStack) joins(visitID string) int {
	n := 0
	rows, err := st.db.SearchAudit(context.Background(), haven.AuditQuery{LogID: st.practice, Action: "visit.join", Limit: 100})
	if err != nil {
		st.tb.Fatal(err)
	}
	for _, r := range rows {
		if r.Event.ResourceID == visitID && r.Event.PatientID == st.users[patientEmail] && r.Event.Decision == "allow" {
			n++
		}
	}
	return n
}

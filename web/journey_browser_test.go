package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"haven"
	"haven/demo"
	"haven/internal/testkit"
)

// The journeys: every role of the demo, from "/", by following links
// only (the one typed address is the site's own), on a desktop screen and
// on a phone. On every page it reaches, a walk checks that nothing is
// wider than the screen, that axe-core finds no serious or critical
// accessibility violation, and that the page asked the server for nothing
// it was refused (a missing favicon, a 401 from a script).

// axePath is where .ci/run installs axe-core (a folder git ignores).
var axePath = filepath.Join("testdata", "node", "node_modules", "axe-core", "axe.min.js")

// axeSource returns axe-core's browser build. In CI a missing axe fails
// the test; elsewhere it skips, saying how to install it.
func axeSource(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(axePath)
	if err != nil {
		if testkit.InCI() {
			t.Fatalf("axe-core is not installed (%v): .ci/run installs it", err)
		}
		t.Skipf("axe-core is not installed: npm install --no-save --prefix web/testdata/node axe-core@4.14.1 (%v)", err)
	}
	return string(b)
}

// newDemoStack serves Haven with the demo practices seeded as `serve
// --demo` seeds them, files and video on, on the wall clock.
func newDemoStack(t *testing.T) *visitStack {
	t.Helper()
	st := newVideoStack(t, true) // files in the stack's blob directory
	if _, err := demo.Seed(context.Background(), st.svc); err != nil {
		t.Fatal(err)
	}
	return st
}

// demoActor is a context signed in as the first member of role at the
// demo practice named, for setting a scene through the service.
func (st *visitStack) demoActor(practice string, role haven.Role) context.Context {
	st.t.Helper()
	ctx := context.Background()
	names, err := st.svc.PracticeNames(ctx)
	if err != nil {
		st.t.Fatal(err)
	}
	users, err := st.db.ListUsers(ctx, names[practice])
	if err != nil {
		st.t.Fatal(err)
	}
	for _, u := range users {
		if u.Role == role {
			return haven.NewContextWithActor(ctx, haven.Actor{UserID: u.ID, PracticeID: u.PracticeID, Role: role, MFA: true,
				AuthTime: time.Now(), SessionID: "scene", ClientAddr: "127.0.0.1", RequestID: "scene"})
		}
	}
	st.t.Fatalf("no %s at %s", role, practice)
	return nil
}

// screen is a width a walk is made at.
type screen struct {
	name          string
	width, height int64
	mobile        bool
}

var (
	desktop = screen{"desktop", 1280, 900, false}
	phone   = screen{"phone", 390, 844, true}
)

// walker drives one browser through pages by links and checks each page
// it lands on.
type walker struct {
	t      *testing.T
	ctx    context.Context
	base   string
	axe    string
	screen screen

	mu      sync.Mutex
	refused []string // responses of 400 and above since the last page check
}

func newWalker(t *testing.T, base string, extra ...chromedp.ExecAllocatorOption) *walker {
	t.Helper()
	w := &walker{t: t, base: base, axe: axeSource(t)}
	w.ctx = testkit.Browser(t, extra...)
	// The reader is in Paris: pages must show her times there, named.
	if _, err := chromedp.Call(w.ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Europe/Paris"}); err != nil {
		t.Fatal(err)
	}
	chromedp.Listen(w.ctx, func(ev any) {
		if e, ok := ev.(*network.EventResponseReceived); ok && e.Response.Status >= 400 {
			w.mu.Lock()
			w.refused = append(w.refused, fmt.Sprintf("%d %s", e.Response.Status, e.Response.URL))
			w.mu.Unlock()
		}
	})
	w.use(desktop)
	return w
}

// use sets the screen the next pages are seen on.
func (w *walker) use(s screen) {
	w.t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
	if s.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2))
	}
	if err := chromedp.Do(w.ctx, chromedp.EmulateViewport(s.width, s.height, opts...)); err != nil {
		w.t.Fatal(err)
	}
	w.screen = s
}

// start opens the site's front page: the only address a walk types.
func (w *walker) start() {
	w.t.Helper()
	if err := chromedp.Do(w.ctx, chromedp.Navigate(w.base+"/")); err != nil {
		w.t.Fatal(err)
	}
	w.check()
}

// at reports the page's path and query.
func (w *walker) at() string {
	loc, _ := chromedp.Run(w.ctx, chromedp.Location())
	return strings.TrimPrefix(loc, w.base)
}

// follow clicks the link sel, which must be a link (an <a> with an
// href), waits for the page it leads to and checks that page.
func (w *walker) follow(sel string) {
	w.t.Helper()
	isLink, err := chromedp.Run(w.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.tagName === 'A' && !!e.getAttribute('href'); })()`, sel)))
	if err != nil || !isLink {
		body, _ := chromedp.Run(w.ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		w.t.Fatalf("at %s: no link %s to follow (%v)\n%s", w.at(), sel, err, body)
	}
	w.press(sel)
}

// press clicks sel (a link or a form's button), waits for the next page
// and checks it.
func (w *walker) press(sel string) {
	w.t.Helper()
	if err := chromedp.Do(w.ctx, chromedp.Evaluate[chromedp.Void](`window.__walking = true`)); err != nil {
		w.t.Fatal(err)
	}
	click(w.t, w.ctx, sel)
	waitFor(w.t, w.ctx, "the page after "+sel, `(window.__walking === undefined && document.readyState === 'complete') ? 1 : 0`)
	w.check()
}

// fill types values into fields by id.
func (w *walker) fill(fields map[string]string) {
	w.t.Helper()
	for id, v := range fields {
		if err := chromedp.Do(w.ctx, chromedp.WaitVisible(chromedp.ID(id)), chromedp.SetValue(chromedp.ID(id), v)); err != nil {
			w.t.Fatalf("at %s, fill #%s: %v", w.at(), id, err)
		}
	}
}

// text is the trimmed text of sel.
func (w *walker) text(sel string) string {
	w.t.Helper()
	s, err := chromedp.Run(w.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		w.t.Fatalf("at %s, text of %s: %v", w.at(), sel, err)
	}
	return strings.TrimSpace(s)
}

// has reports whether sel matches anything on the page.
func (w *walker) has(sel string) bool {
	n, err := chromedp.Run(w.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	return err == nil && n > 0
}

// axeViolation is what a walk reports of an axe-core violation.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// check holds the page to the rules every page keeps, on this screen.
func (w *walker) check() {
	w.t.Helper()
	page := w.at()
	// A phone zooms out to fit a page wider than itself, which makes
	// innerWidth that page's width: the screen's own width bounds it too.
	wide, err := chromedp.Run(w.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, Math.min(window.innerWidth, document.documentElement.clientWidth)]`))
	if err != nil {
		w.t.Fatalf("%s: %v", page, err)
	}
	if wide[1] > int(w.screen.width) {
		wide[1] = int(w.screen.width)
	}
	if wide[0] > wide[1] {
		over, _ := chromedp.Run(w.ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('main *')).filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)`))
		w.t.Errorf("%s on a %s: the page is %d px wide on a screen %d px wide (too wide: %v)", page, w.screen.name, wide[0], wide[1], over)
	}
	// axe-core comes in through DevTools (not the page's own scripts, which
	// the CSP keeps to this site), once per document.
	if loaded, _ := chromedp.Run(w.ctx, chromedp.Evaluate[bool](`typeof axe !== 'undefined'`)); !loaded {
		if err := chromedp.Do(w.ctx, chromedp.Evaluate[chromedp.Void](w.axe+";void 0")); err != nil {
			w.t.Fatalf("%s: inject axe-core: %v", page, err)
		}
	}
	raw, err := chromedp.Run(w.ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations))`, chromedp.EvalAwaitPromise))
	if err != nil {
		w.t.Fatalf("%s: axe: %v", page, err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		w.t.Fatal(err)
	}
	for _, v := range vs {
		if v.Impact != "serious" && v.Impact != "critical" {
			continue
		}
		var where []string
		for _, n := range v.Nodes {
			where = append(where, n.HTML)
		}
		w.t.Errorf("%s on a %s: %s accessibility violation %s (%s): %s", page, w.screen.name, v.Impact, v.ID, v.Help, strings.Join(where, " | "))
	}
	// Let late requests (favicon, scripts' first calls) arrive.
	time.Sleep(150 * time.Millisecond)
	w.mu.Lock()
	refused := w.refused
	w.refused = nil
	w.mu.Unlock()
	for _, r := range refused {
		w.t.Errorf("%s on a %s: the page's request was refused: %s", page, w.screen.name, r)
	}
}

// signIn signs in from the front page, by its links: the password, and
// for the workforce the authenticator they enrol at their first sign-in
// (its secret is returned) or a code from the one they enrolled.
func (w *walker) signIn(email, secret string) string {
	w.t.Helper()
	w.follow("#nav-sign-in")
	w.fill(map[string]string{"email": email, "password": stackPassword})
	w.press("#sign-in")
	switch {
	case w.has("#totp-secret"):
		secret = strings.ReplaceAll(w.text("#totp-secret"), " ", "")
		code, err := appCode(secret, time.Now())
		if err != nil {
			w.t.Fatal(err)
		}
		w.fill(map[string]string{"code": code})
		w.press("#confirm")
		w.follow("#continue")
	case w.has("#verify"):
		// A code of the next period, so it is not the one just used.
		code, err := appCode(secret, time.Now().Add(30*time.Second))
		if err != nil {
			w.t.Fatal(err)
		}
		w.fill(map[string]string{"code": code})
		w.press("#verify")
	}
	if !w.has("#welcome") {
		w.t.Fatalf("signed in as %s, but at %s", email, w.at())
	}
	return secret
}

// signOut signs out from the page's header.
func (w *walker) signOut() {
	w.t.Helper()
	w.press("#sign-out")
}

// onBothScreens runs walk at desktop width, then again on a phone, in
// the same browser (so a workforce sign-in is enrolled once).
func onBothScreens(t *testing.T, w *walker, walk func()) {
	t.Helper()
	for _, s := range []screen{desktop, phone} {
		w.use(s)
		walk()
	}
}

// TestBrowserPatientJourney: Maria Lopez, a demo patient, from "/" to
// her home and every part of her record, by links, on both screens.
func TestBrowserPatientJourney(t *testing.T) {
	st := newDemoStack(t)
	w := newWalker(t, st.base)
	onBothScreens(t, w, func() {
		w.start()
		if !w.has("#nav-sign-in") || !w.has("#home-sign-in") || !w.has("#home-register") {
			t.Fatal("the front page has no way to sign in or to register")
		}
		w.follow("#home-register")
		if got := w.text("#open-practices"); !strings.Contains(got, "Riverside Family Clinic") || !strings.Contains(got, "Lakeshore Pediatrics") {
			t.Errorf("the clinics taking registrations: %q", got)
		}
		w.follow("#to-sign-in")
		if !w.has("#register") {
			t.Error("the sign-in page has no way to register")
		}
		w.follow("#nav-home")
		w.signIn(patientEmail, "")
		if got := w.text("#next-visit"); !strings.Contains(got, "Dr. Rosa Rivera") {
			t.Errorf("the home page does not show the next visit: %q", got)
		}
		w.follow("#home-record")
		if got := w.text("main h1"); got != "Maria Lopez" {
			t.Errorf("her record's heading: %q", got)
		}
		w.follow("#nav-visits")
		if !w.has("#visits tr[data-state=booked]") {
			t.Error("her visits page lists no booked visit")
		}
		w.fill(map[string]string{})
		w.follow("#nav-messages")
		w.follow("#nav-files")
		w.follow("#nav-history")
		waitFor(t, w.ctx, "the proofs checked", `document.querySelector('#proof-status[data-result=ok]') ? 1 : 0`)
		history := w.text("main")
		if !strings.Contains(history, "Dr. Rosa Rivera opened your record for your care.") {
			t.Errorf("the access history does not say in words who opened the record:\n%s", history)
		}
		for _, code := range []string{"chart.read", "audit.read_own", "careteam.manage", "role_permitted", "treatment", "UTC"} {
			if strings.Contains(history, code) {
				t.Errorf("the access history shows %q", code)
			}
		}
		if !strings.Contains(history, "Paris") || !strings.Contains(history, "CET") {
			t.Errorf("the access history's times are not in the reader's zone, named")
		}
		if open, _ := chromedp.Run(w.ctx, chromedp.Evaluate[bool](`document.getElementById('mine').open || document.getElementById('checkpoint-details').open`)); open {
			t.Error("her own actions or the checkpoint are not folded away")
		}
		w.follow("#nav-account")
		w.follow("#nav-home")
		w.signOut()
	})
}

// TestBrowserClinicianJourney: Dr. Rosa Rivera sees today's schedule on
// her home page (Maria Lopez's demo visit, booked), her waiting room and
// her patients, and opens a chart, by links.
func TestBrowserClinicianJourney(t *testing.T) {
	st := newDemoStack(t)
	w := newWalker(t, st.base)
	secret := ""
	onBothScreens(t, w, func() {
		w.start()
		secret = w.signIn(doctor, secret)
		if got := w.text("#schedule"); !strings.Contains(got, "Maria Lopez") || !strings.Contains(got, "Booked") {
			t.Errorf("today's schedule does not show Maria Lopez's booked visit: %q", got)
		}
		if got := w.text("#schedule-counts"); !strings.Contains(got, "1 booked") {
			t.Errorf("the schedule's counts: %q", got)
		}
		w.follow("#next-day")
		w.follow("#today")
		w.follow("#nav-waiting-room")
		w.follow("#nav-patients")
		w.follow("main table a")
		w.follow("#nav-account")
		w.follow("#nav-home")
		w.signOut()
	})
}

// TestBrowserFrontDeskJourney: the front desk sees the practice's day,
// checks Maria Lopez in on her behalf, opens a patient's visits to book
// and move them, and registers a new patient, by links and forms.
func TestBrowserFrontDeskJourney(t *testing.T) {
	st := newDemoStack(t)
	w := newWalker(t, st.base)
	secret := ""
	registered := 0
	onBothScreens(t, w, func() {
		w.start()
		secret = w.signIn(desk, secret)
		if got := w.text("#schedule"); !strings.Contains(got, "Maria Lopez") || !strings.Contains(got, "Dr. Rosa Rivera") {
			t.Errorf("the practice's schedule does not show Maria Lopez's visit with Dr. Rivera: %q", got)
		}
		if w.has("#schedule button[id^=check-in-]") {
			w.press("#schedule button[id^=check-in-]")
			if got := w.text("#schedule"); !strings.Contains(got, "Checked in") {
				t.Errorf("after checking Maria in, the schedule says %q", got)
			}
		}
		w.follow("#nav-patients")
		w.follow("main table a")
		w.follow("#patient-visits")
		if !w.has("#clinician") {
			t.Error("the desk cannot book for the patient")
		}
		if w.has("a[id^=reschedule-]") {
			w.follow("a[id^=reschedule-]")
			if !w.has("#new-slot optgroup") {
				t.Error("the move form's times are not grouped by day")
			}
		}
		w.follow("#nav-register-patient")
		registered++
		w.fill(map[string]string{"name": fmt.Sprintf("Lee Park %d", registered), "date-of-birth": "1990-04-05",
			"mrn": fmt.Sprintf("RFC-2000%d", registered), "email": fmt.Sprintf("lee.park%d@patients.example", registered)})
		w.press("#register")
		if got := w.text("main h1"); got != fmt.Sprintf("Lee Park %d", registered) {
			t.Errorf("after registering, the page's heading is %q", got)
		}
		w.follow("#patient-visits")
		w.fill(map[string]string{"clinician": st.users[doctor]})
		w.follow("#nav-home")
		w.signOut()
	})
}

// TestBrowserAdminJourney: the administrator's home counts their work,
// and People, an account and care teams are a link away.
func TestBrowserAdminJourney(t *testing.T) {
	st := newDemoStack(t)
	w := newWalker(t, st.base)
	secret := ""
	onBothScreens(t, w, func() {
		w.start()
		secret = w.signIn(admin, secret)
		if got := w.text("#count-no-factor"); got == "" {
			t.Error("no count of accounts without a second factor")
		}
		w.follow("#home-people")
		w.follow("#workforce a")
		w.follow("#nav-care-teams")
		// The patient is found by name and date of birth, not an id.
		if w.has("input[name=patient]:not([type=hidden])") {
			t.Error("the care-team page asks for a patient id")
		}
		w.fill(map[string]string{"patient-name": "John Chen", "patient-dob": "1971-11-30"})
		w.press("#find")
		if got := w.text("#members"); !strings.Contains(got, "Dr. Rosa Rivera") || !strings.Contains(got, "Dr. Sam Okafor") {
			t.Errorf("John Chen's care team: %q", got)
		}
		if ids := w.rawIDs(); len(ids) > 0 {
			t.Errorf("the care-team page shows raw ids: %v", ids)
		}
		w.follow("#nav-home")
		w.signOut()
	})
}

// TestBrowserComplianceJourney: the compliance officer's home counts open
// alerts and break-glass uses to review, and the audit log is a link away.
func TestBrowserComplianceJourney(t *testing.T) {
	st := newDemoStack(t)
	w := newWalker(t, st.base)
	// The front desk looks at the patient list, again and again, so the
	// audit log is longer than a page.
	desk := st.demoActor("Riverside Family Clinic", haven.RoleStaff)
	for range 30 {
		if _, err := st.svc.Patients(desk); err != nil {
			t.Fatal(err)
		}
	}
	secret := ""
	onBothScreens(t, w, func() {
		w.start()
		secret = w.signIn("compliance@riverside.example", secret)
		if got := w.text("#count-alerts"); got == "" {
			t.Error("no count of open alerts")
		}
		w.follow("#home-audit")
		// People by name: no id is shown, none is asked for.
		if ids := w.rawIDs(); len(ids) > 0 {
			t.Errorf("the compliance page shows raw ids: %v", ids)
		}
		if w.has("input[name=patient]:not([type=hidden]), input[name=actor]") {
			t.Error("the audit search asks for an id")
		}
		// A patient by name and date of birth, then only her record's events.
		click(t, w.ctx, "#audit details summary")
		w.fill(map[string]string{"patient-name": "maria lopez", "patient-dob": "1984-03-12"})
		w.press("#find-patient-button")
		if got := w.text("#patient-filter"); !strings.Contains(got, "Maria Lopez") {
			t.Errorf("the patient filter says %q", got)
		}
		// The outcome filter keeps its value.
		w.fill(map[string]string{"filter-decision": "allow"})
		w.press("#search")
		if v, _ := chromedp.Run(w.ctx, chromedp.Value(chromedp.ID("filter-decision"))); v != "allow" {
			t.Errorf("after a search for allowed events, the outcome filter says %q", v)
		}
		w.follow("#patient-filter a")
		// The log is longer than a page: the page ends with a link to older events.
		if n, _ := chromedp.Run(w.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#events tbody tr').length`)); n != 50 {
			t.Errorf("the audit search shows %d events, want a page of 50", n)
		}
		// Rows are told apart by their position in the log: two events in
		// the same minute by the same person read the same.
		seqs := func() []int {
			got, _ := chromedp.Run(w.ctx, chromedp.Evaluate[[]int](`[...document.querySelectorAll('#events tbody tr')].map(r => +r.dataset.seq)`))
			return got
		}
		newer := seqs()
		w.follow("#older")
		older := seqs()
		if len(newer) == 0 || len(older) == 0 || slices.Max(older) >= slices.Min(newer) {
			t.Errorf("older events are not older: the first page holds %v, the next %v", newer, older)
		}
		w.follow("#nav-home")
		w.signOut()
	})
}

// rawIDs returns the ids (Haven's 26-letter base32 ids) the page shows
// as text.
func (w *walker) rawIDs() []string {
	w.t.Helper()
	ids, err := chromedp.Run(w.ctx, chromedp.Evaluate[[]string](`(document.querySelector('main').innerText.match(/\b[a-z2-7]{26}\b/g) || [])`))
	if err != nil {
		w.t.Fatal(err)
	}
	return ids
}

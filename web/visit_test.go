package web_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"haven"
	"haven/audit"
	"haven/auth/outbox"
	"haven/identity"
	"haven/internal/testkit"
	"haven/internal/testkit/stack"
	"haven/service"
	"haven/video/livekit"
	"haven/video/sfu"
	"haven/video/token"
	"haven/video/turn"
	"haven/web"
)

const (
	otherDoctor  = "shah@lakeshore.example"
	otherPatient = "ava.johnson@patients.example"
)

// visitStack is the identity stack of auth_test.go with video visits
// turned on: a join-token key, an SFU and a TURN relay on loopback, spent
// tokens in the database, and a second practice to attack from. Its clock stands at
// 10:05 UTC on a day the clinicians see patients from 10:00 to 12:00.
type visitStack struct {
	*authStack
	key   []byte
	media *sfu.SFU
	relay *turn.Server
	log   *audit.Log
	other string // the second practice's id
	real  bool   // the wall clock, and clinicians available around it
	tb    testing.TB
}

// newVisitStack builds the stack; benchmarks get one too, but only tests
// (a *testing.T) may use the HTTP client helpers of auth_test.go.
func newVisitStack(t testing.TB, realClock bool) *visitStack {
	t.Helper()
	st := newVideoStack(t, realClock, stack.NoBlobs())
	st.practice = st.seedPractice("Riverside Family Clinic", doctor, desk, patientEmail, "Maria Lopez")
	st.other = st.seedPractice("Lakeshore Pediatrics", otherDoctor, "frontdesk@lakeshore.example", otherPatient, "Ava Johnson")
	return st
}

// newVideoStack builds the stack with no practice in it (see stack.New
// for opts).
func newVideoStack(t testing.TB, realClock bool, opts ...stack.Option) *visitStack {
	t.Helper()
	return newVideoStackOn(t, realClock, nil, opts...)
}

// newVideoStackOn is newVideoStack with LiveKit carrying the media when
// lk is not nil (--video-engine livekit), and no embedded SFU or relay.
func newVideoStackOn(t testing.TB, realClock bool, lk *livekit.Engine, opts ...stack.Option) *visitStack {
	t.Helper()
	clock := stack.At(time.Now().UTC().Truncate(24 * time.Hour).Add(10*time.Hour + 5*time.Minute))
	if realClock {
		clock = stack.WallClock()
	}
	stk := stack.New(t, testkit.SQLite(t), append([]stack.Option{clock}, opts...)...)
	db, svc, log, vkey, key, now := stk.DB, stk.Service, stk.Log, stk.Verifier, stk.VideoKey, stk.Clock.Now
	media, err := sfu.New(sfu.Config{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { media.Close() })

	relay, err := turn.Listen(turn.Config{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), Realm: "haven.test",
		Secret: bytes.Repeat([]byte{7}, turn.MinSecretSize), AllowedPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })

	ln, base := listener(t)
	mail := &outbox.Memory{}
	tt, _ := t.(*testing.T)
	st := &visitStack{authStack: &authStack{t: tt, db: db, svc: svc, mail: mail, clock: stk.Clock, users: map[string]string{}, base: base},
		key: key, media: media, relay: relay, log: log, real: realClock, tb: t}
	st.id = identity.New(svc.Gate(), identity.Config{DB: db, Outbox: mail, BaseURL: base})
	t.Cleanup(st.id.Close)
	st.web = web.Config{Service: svc, Identity: st.id, AuditVerifierKey: vkey, Video: &web.VideoConfig{SFU: media, TURN: relay, TokenKey: key,
		Spent: db.SpentTokens(), Now: now, RecheckEvery: callRecheck}}
	if lk != nil {
		st.web.Video.SFU, st.web.Video.TURN, st.web.Video.LiveKit = nil, nil, lk
	}
	st.srv = newWebServer(t, st.web)
	serveOn(t, st.srv, ln)
	return st
}

// seedPractice creates a practice with a clinician (seeing patients today
// from 10:00 to 12:00 UTC), a front desk and a patient with a password.
func (st *visitStack) seedPractice(name, doc, frontDesk, patient, patientName string) string {
	t := st.tb
	ctx := context.Background()
	pr, err := st.svc.CreatePractice(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for email, role := range map[string]haven.Role{doc: haven.RoleClinician, frontDesk: haven.RoleStaff} {
		u, err := st.svc.CreateUser(ctx, service.NewUser{PracticeID: pr.ID, Role: role, Email: email, Name: "Worker " + email, Password: stackPassword})
		if err != nil {
			t.Fatal(err)
		}
		st.users[email] = u.ID
	}
	as := func(email string, role haven.Role) context.Context {
		return haven.NewContextWithActor(ctx, haven.Actor{UserID: st.users[email], PracticeID: pr.ID, Role: role,
			MFA: true, AuthTime: st.clock.Now(), SessionID: "seed", ClientAddr: "127.0.0.1", RequestID: "seed"})
	}
	c, err := st.svc.RegisterPatient(as(frontDesk, haven.RoleStaff), service.NewPatient{MRN: "MRN-" + patient,
		Demographics: service.Demographics{Name: patientName, DateOfBirth: "1980-02-03"}, Contact: service.Contact{Email: patient, Phone: "555-0101"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.svc.ProvisionPassword(ctx, c.PatientID, stackPassword); err != nil {
		t.Fatal(err)
	}
	st.users[patient] = c.PatientID
	blocks := []service.AvailabilityBlock{{Weekday: st.clock.Now().Weekday(), Start: "10:00", End: "12:00", SlotMinutes: 30, TimeZone: "UTC"}}
	if st.real {
		// On the wall clock a slot must be free whenever the test runs:
		// 15-minute slots around the clock, so one always starts within
		// the check-in window.
		blocks = nil
		for d := time.Sunday; d <= time.Saturday; d++ {
			blocks = append(blocks, service.AvailabilityBlock{Weekday: d, Start: "00:00", End: "23:45", SlotMinutes: 15, TimeZone: "UTC"})
		}
	}
	if err := st.svc.SetAvailability(as(doc, haven.RoleClinician), blocks); err != nil {
		t.Fatal(err)
	}
	return pr.ID
}

// patient signs a patient in through the API (patients have no second
// factor unless they add one).
func (st *visitStack) patient(email string) *client {
	c := st.client(firefox)
	expectStatus(st.t, c.api("POST", "/api/v1/session", map[string]string{"email": email, "password": stackPassword}), http.StatusOK)
	return c
}

// clinician signs a clinician in through the pages, enrolling TOTP.
func (st *visitStack) clinician(email string) *client {
	c := st.client(firefox)
	c.signIn(email, "")
	return c
}

// book books the 10:30 slot with doc for the patient client c, through
// the booking form, and returns the visit's id.
func (st *visitStack) book(c *client, doc string) string {
	t := st.t
	start := st.clock.Now().Truncate(24 * time.Hour).Add(10*time.Hour + 30*time.Minute).Format(time.RFC3339)
	page := readAll(t, c.get("/app/visits?clinician="+st.users[doc]))
	if !strings.Contains(page, `value="`+start+`"`) {
		t.Fatalf("the 10:30 slot is not offered:\n%s", page)
	}
	expectRedirect(t, c.post("/app/visits", url.Values{"clinician": {st.users[doc]}, "start": {start}, "reason": {"persistent cough"}}), "/app/visits?done=booked")
	page = readAll(t, c.get("/app/visits"))
	i := strings.Index(page, `href="/app/visits/`)
	if i < 0 || !strings.Contains(page, "persistent cough") {
		t.Fatalf("the booked visit is not listed:\n%s", page)
	}
	id, _, _ := strings.Cut(page[i+len(`href="/app/visits/`):], "/")
	return id
}

func decode[T any](t *testing.T, r *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		t.Fatalf("%s %s: %v", r.Request.Method, r.Request.URL.Path, err)
	}
	return v
}

// admitted books, checks in and admits a visit of patientEmail with
// doctor, and returns the visit id and both clients.
func (st *visitStack) admitted() (visitID string, pat, doc *client) {
	t := st.t
	pat = st.patient(patientEmail)
	visitID = st.book(pat, doctor)
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+visitID+"/check-in", nil), http.StatusOK)
	doc = st.clinician(doctor)
	expectStatus(t, doc.api("POST", "/api/v1/visits/"+visitID+"/admit", nil), http.StatusOK)
	return visitID, pat, doc
}

// dial opens the call's WebSocket as c, from origin.
func (c *client) dial(visitID, origin string) (*websocket.Conn, *http.Response, error) {
	hc := &http.Client{Jar: c.jar, Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	u := "wss" + strings.TrimPrefix(c.st.base, "https") + strings.Replace(web.CallPath, "{visit}", visitID, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{"User-Agent": {c.ua}}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: h})
}

type sigMsg struct {
	Type        string `json:"type"`
	Code        string `json:"code"`
	Message     string `json:"message"`
	Participant string `json:"participant"`
	Role        string `json:"role"`
}

// join opens the call as c, presents tok and returns the first message
// that is not an offer or a candidate.
func (c *client) join(visitID, tok string) (sigMsg, *websocket.Conn) {
	t := c.st.t
	t.Helper()
	conn, _, err := c.dial(visitID, c.st.base)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, _ := json.Marshal(map[string]string{"type": "join", "token": tok})
	if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var m sigMsg
		json.Unmarshal(b, &m)
		if m.Type != "offer" && m.Type != "candidate" {
			return m, conn
		}
	}
}

// lastEvent returns the newest audit event of action in practiceID's log.
func (st *visitStack) lastEvent(practiceID, action string) audit.Event {
	st.t.Helper()
	rows, err := st.db.SearchAudit(context.Background(), haven.AuditQuery{LogID: practiceID, Action: action, Limit: 1})
	if err != nil || len(rows) == 0 {
		st.t.Fatalf("no %s event in the log: %v", action, err)
	}
	return rows[0].Event
}

func (st *visitStack) mint(visitID, participant string, role token.Role, at time.Time, key []byte) string {
	tok, err := token.Mint(key, token.Claims{VisitID: visitID, ParticipantID: participant, Role: role}, at)
	if err != nil {
		st.t.Fatal(err)
	}
	return tok
}

// TestPatientBooksChecksInWaitsAndIsAdmitted walks the visit through the
// pages and the API with real sessions: book, the pre-visit page, check
// in, the clinician's queue, admission, the patient's waiting page seeing
// it, a join token, the call, and the end, which closes the visit for good.
func TestPatientBooksChecksInWaitsAndIsAdmitted(t *testing.T) {
	t.Parallel()
	st := newVisitStack(t, false)
	pat := st.patient(patientEmail)
	id := st.book(pat, doctor)
	page := readAll(t, pat.get("/app/visits/"+id+"/check-in"))
	for _, want := range []string{`id="test-devices"`, `id="test-network"`, `id="chk-room"`, `id="chk-network"`, `id="chk-device"`, `id="chk-messages"`, `data-state="booked"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("the pre-visit page lacks %s", want)
		}
	}
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+id+"/join-token", nil), http.StatusConflict)
	if got := decode[map[string]string](t, pat.api("POST", "/api/v1/visits/"+id+"/check-in", nil)); got["state"] != "waiting" {
		t.Fatalf("check-in: %v", got)
	}
	r := pat.get("/api/v1/network-check?bytes=1000")
	if b := readAll(t, r); r.StatusCode != http.StatusOK || len(b) != 1000 {
		t.Fatalf("network check: %d, %d bytes", r.StatusCode, len(b))
	}

	doc := st.clinician(doctor)
	expectRedirect(t, doc.get("/app/visits"), "/app/waiting-room")
	expectStatus(t, doc.get("/app/waiting-room"), http.StatusOK)
	queue := decode[struct {
		Visits []struct {
			ID, PatientName, State string
		}
	}](t, doc.get("/api/v1/waiting-room"))
	if len(queue.Visits) != 1 || queue.Visits[0].ID != id || queue.Visits[0].State != "waiting" {
		t.Fatalf("queue: %+v", queue)
	}
	if ev := st.lastEvent(st.practice, "visit.read"); ev.ActorID != st.users[doctor] || ev.ResourceID != id {
		t.Fatalf("the queue entry was not audited: %+v", ev)
	}

	// The waiting page's long request answers as soon as the clinician admits.
	state := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", st.base+"/api/v1/visits/"+id+"/state?seen=waiting", nil)
		req.Header.Set("User-Agent", pat.ua)
		r, err := pat.hc.Do(req)
		if err != nil {
			state <- err.Error()
			return
		}
		defer r.Body.Close()
		var s map[string]string
		json.NewDecoder(r.Body).Decode(&s)
		state <- s["state"]
	}()
	expectStatus(t, doc.api("POST", "/api/v1/visits/"+id+"/admit", nil), http.StatusOK)
	if s := <-state; s != "admitted" {
		t.Fatalf("the waiting patient saw %q", s)
	}

	expectStatus(t, pat.get("/app/visits/"+id+"/call"), http.StatusOK)
	// The clinician's call page leads to the patient's prescribe form, by
	// her name, for this visit; the patient's does not.
	if out := readAll(t, doc.get("/app/visits/"+id+"/call")); !strings.Contains(out, `href="/app/patients/`+st.users[patientEmail]+`/prescribe?visit=`+id+`"`) ||
		!strings.Contains(out, "Write a prescription for Maria") {
		t.Errorf("the clinician's call page has no way to prescribe for her:\n%s", out)
	}
	if out := readAll(t, pat.get("/app/visits/"+id+"/call")); strings.Contains(out, "/prescribe") {
		t.Error("the patient's call page offers to prescribe")
	}
	pass := decode[service.CallPass](t, pat.api("POST", "/api/v1/visits/"+id+"/join-token", nil))
	if pass.Role != token.Patient {
		t.Fatalf("pass %+v", pass)
	}
	m, _ := pat.join(id, pass.Token)
	if m.Type != "joined" || m.Participant != st.users[patientEmail] {
		t.Fatalf("patient join: %+v", m)
	}
	docPass := decode[service.CallPass](t, doc.api("POST", "/api/v1/visits/"+id+"/join-token", nil))
	m, conn := doc.join(id, docPass.Token)
	if m.Type != "joined" || m.Role != "clinician" {
		t.Fatalf("clinician join: %+v", m)
	}
	if ev := st.lastEvent(st.practice, "visit.join"); ev.ActorID != st.users[doctor] || ev.PatientID != st.users[patientEmail] {
		t.Fatalf("join not audited: %+v", ev)
	}

	// The clinician ends the visit from the call: durable, so no new
	// token is minted for it, here or after a restart.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"end"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("no ended message: %v", err)
		}
		if strings.Contains(string(b), `"ended"`) {
			break
		}
	}
	v, err := st.db.FindVisit(context.Background(), id)
	if err != nil || v.State != "ended" {
		t.Fatalf("visit after the end: %+v %v", v, err)
	}
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+id+"/join-token", nil), http.StatusConflict)
	if ev := st.lastEvent(st.practice, "visit.end"); ev.ActorID != st.users[doctor] {
		t.Fatalf("end not audited: %+v", ev)
	}
}

// TestJoinRefusalsAreAudited attacks the call's door the ways THREATS.md
// names: before admission, with a forged, an expired, a reused and another
// visit's token, and as a user of another practice holding a token that
// verifies. Each is refused and leaves a visit.join_refused event with
// its reason in the attempting user's own practice log.
func TestJoinRefusalsAreAudited(t *testing.T) {
	t.Parallel()
	st := newVisitStack(t, false)
	pat := st.patient(patientEmail)
	id := st.book(pat, doctor)
	patient := st.users[patientEmail]
	now := st.clock.Now()

	refused := func(name string, c *client, visitID, tok, practice, reason string) {
		t.Helper()
		m, _ := c.join(visitID, tok)
		if m.Type != "error" {
			t.Fatalf("%s: joined (%+v)", name, m)
		}
		ev := st.lastEvent(practice, "visit.join_refused")
		if ev.Reason != reason || ev.Decision != haven.DecisionDeny || ev.ResourceID != visitID {
			t.Fatalf("%s: audited as %+v, want reason %s", name, ev, reason)
		}
		if practice != st.practice && ev.PatientID != "" {
			t.Fatalf("%s: another practice's log names the patient", name)
		}
	}

	// Before admission there is no token to be had; one made anyway (a
	// bug, a stolen key) still meets the door's own check of the visit.
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+id+"/check-in", nil), http.StatusOK)
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+id+"/join-token", nil), http.StatusConflict)
	refused("before admission", pat, id, st.mint(id, patient, token.Patient, now, st.key), st.practice, "not_authorized")

	doc := st.clinician(doctor)
	expectStatus(t, doc.api("POST", "/api/v1/visits/"+id+"/admit", nil), http.StatusOK)
	now = st.clock.Now()

	refused("forged", pat, id, st.mint(id, patient, token.Patient, now, bytes.Repeat([]byte{1}, token.KeySize)), st.practice, "forged")
	refused("expired", pat, id, st.mint(id, patient, token.Patient, now.Add(-time.Hour), st.key), st.practice, "expired")
	refused("another visit's", pat, id, st.mint(haven.NewID(), patient, token.Patient, now, st.key), st.practice, "other_visit")
	refused("someone else's", pat, id, st.mint(id, st.users[doctor], token.Clinician, now, st.key), st.practice, "other_participant")

	pass := decode[service.CallPass](t, pat.api("POST", "/api/v1/visits/"+id+"/join-token", nil))
	if m, conn := pat.join(id, pass.Token); m.Type != "joined" {
		t.Fatalf("the real token: %+v", m)
	} else {
		conn.Close(websocket.StatusNormalClosure, "")
	}
	refused("reused", pat, id, pass.Token, st.practice, "reused")

	// Another practice: their patient gets no token for this visit, and a
	// token that verifies (minted for them by mistake) is refused at the door.
	outsider := st.patient(otherPatient)
	if r := outsider.api("POST", "/api/v1/visits/"+id+"/join-token", nil); r.StatusCode != http.StatusNotFound && r.StatusCode != http.StatusForbidden {
		t.Fatalf("another practice's patient asked for a token: %d", r.StatusCode)
	}
	refused("another practice", outsider, id, st.mint(id, st.users[otherPatient], token.Patient, now, st.key), st.other, "not_authorized")
	otherDoc := st.clinician(otherDoctor)
	refused("another practice's clinician", otherDoc, id, st.mint(id, st.users[otherDoctor], token.Clinician, now, st.key), st.other, "not_authorized")
	if r := otherDoc.api("POST", "/api/v1/visits/"+id+"/admit", nil); r.StatusCode != http.StatusNotFound && r.StatusCode != http.StatusForbidden {
		t.Fatalf("another practice's clinician admitted: %d", r.StatusCode)
	}
}

// TestCallDoorRefusesOtherOriginsAndTheSignedOut: a page on another site
// cannot open the call with the patient's cookies, and nobody signed out
// reaches the join at all.
func TestCallDoorRefusesOtherOriginsAndTheSignedOut(t *testing.T) {
	t.Parallel()
	st := newVisitStack(t, false)
	id, pat, _ := st.admitted()
	if _, r, err := pat.dial(id, "https://evil.example"); err == nil || r == nil || r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin call: %v %v", r, err)
	}
	if _, r, err := pat.dial(id, ""); err == nil || r == nil || r.StatusCode != http.StatusForbidden {
		t.Fatalf("call without an Origin: %v %v", r, err)
	}
	stranger := st.client(firefox)
	if _, r, err := stranger.dial(id, st.base); err == nil || r == nil || r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed-out call: %v %v", r, err)
	}
}

// TestVisitPagesBelongToTheirPeople: the pages answer by role and by
// patient; ids are not secrets.
func TestVisitPagesBelongToTheirPeople(t *testing.T) {
	t.Parallel()
	st := newVisitStack(t, false)
	pat := st.patient(patientEmail)
	id := st.book(pat, doctor)
	outsider := st.patient(otherPatient)
	expectStatus(t, outsider.get("/app/visits/"+id+"/check-in"), http.StatusNotFound)
	expectStatus(t, outsider.api("POST", "/api/v1/visits/"+id+"/check-in", nil), http.StatusNotFound)
	expectStatus(t, outsider.api("POST", "/api/v1/visits/"+id+"/cancel", nil), http.StatusNotFound)
	expectStatus(t, outsider.get("/api/v1/visits/"+id+"/state"), http.StatusNotFound)
	expectStatus(t, pat.get("/app/waiting-room"), http.StatusForbidden)
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+id+"/admit", nil), http.StatusForbidden)
	expectRedirect(t, st.client(firefox).get("/app/visits"), "/login")
	expectStatus(t, st.client(firefox).get("/api/v1/waiting-room"), http.StatusUnauthorized)
	// The pages carry no inline script (the CSP would refuse it) and
	// load their modules from /static, and the landing page links here.
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]|\son[a-z]+=`)
	doc := st.clinician(doctor)
	for c, paths := range map[*client][]string{
		pat: {"/app/visits", "/app/visits?clinician=" + st.users[doctor], "/app/visits/" + id + "/check-in", "/app/visits/" + id + "/call"},
		doc: {"/app/waiting-room", "/app/visits/" + id + "/call"}} {
		for _, path := range paths {
			r := c.get(path)
			body := readAll(t, r)
			// The list is plain HTML; the pages where the browser acts
			// (check-in, waiting room, call) load their module.
			needsModule := !strings.HasPrefix(path, "/app/visits?") && path != "/app/visits"
			if r.StatusCode != http.StatusOK || inline.MatchString(body) || (needsModule && !strings.Contains(body, `type="module" src="/static/visit_`)) {
				t.Errorf("%s: status %d, or inline script, or no module", path, r.StatusCode)
			}
		}
	}
	if !strings.Contains(readAll(t, pat.get("/app")), `href="/app/visits"`) || !strings.Contains(readAll(t, doc.get("/app")), `href="/app/waiting-room"`) {
		t.Error("the landing page does not link to visits")
	}
	// The patient cancels; the visit closes.
	expectRedirect(t, pat.post("/app/visits/"+id+"/cancel", nil), "/app/visits?done=cancelled")
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+id+"/check-in", nil), http.StatusConflict)
}

// TestAdmittingNeedsAFreshSignIn: admission opens the conversation, so a
// clinician whose sign-in is more than a few minutes old is sent to step
// up first; the waiting room page knows where.
func TestAdmittingNeedsAFreshSignIn(t *testing.T) {
	t.Parallel()
	st := newVisitStack(t, false)
	pat := st.patient(patientEmail)
	id := st.book(pat, doctor)
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+id+"/check-in", nil), http.StatusOK)
	doc := st.clinician(doctor)
	st.clock.Advance(6 * time.Minute)
	r := doc.api("POST", "/api/v1/visits/"+id+"/admit", nil)
	expectStatus(t, r, http.StatusForbidden)
	if body := readAll(t, r); !strings.Contains(body, `"code":"step_up"`) {
		t.Fatalf("admit without a fresh sign-in: %s", body)
	}
	if page := readAll(t, doc.get("/app/waiting-room")); !strings.Contains(page, `data-step-up="/account/step-up?next=%2Fapp%2Fwaiting-room"`) {
		t.Fatal("the waiting room does not know where to step up")
	}
	if v, _ := st.db.FindVisit(context.Background(), id); v.State != "waiting" {
		t.Fatalf("admitted without a fresh sign-in: %s", v.State)
	}
}

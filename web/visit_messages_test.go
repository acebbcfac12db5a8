package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"haven"
	"haven/service"
)

const secondPatient = "noah.kim@patients.example"

// secondPatient registers another patient of the first practice, with a
// password, and signs them in.
func (st *visitStack) secondPatient() *client {
	t := st.t
	t.Helper()
	ctx := context.Background()
	staff := haven.NewContextWithActor(ctx, haven.Actor{UserID: st.users[desk], PracticeID: st.practice, Role: haven.RoleStaff,
		MFA: true, AuthTime: st.clock.Now(), SessionID: "seed", ClientAddr: "127.0.0.1", RequestID: "seed"})
	c, err := st.svc.RegisterPatient(staff, service.NewPatient{MRN: "MRN-second",
		Demographics: service.Demographics{Name: "Noah Kim", DateOfBirth: "1990-04-05"}, Contact: service.Contact{Email: secondPatient}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.svc.ProvisionPassword(ctx, c.PatientID, stackPassword); err != nil {
		t.Fatal(err)
	}
	st.users[secondPatient] = c.PatientID
	return st.patient(secondPatient)
}

// threadView is a thread as the API answers it.
type threadView struct {
	Messages []haven.MessageView `json:"messages"`
}

// TestWaitingRoomMessagesOverTheAPI: a visit's waiting-room thread is the
// thread of the visit's id. The clinician's queue shows the waiting
// patient, the clinician writes to them, the patient's waiting
// request returns with the new count, the patient reads the message as
// sent (markup and all, as text) and replies, and the queue counts both.
func TestWaitingRoomMessagesOverTheAPI(t *testing.T) {
	t.Parallel()
	st := newVisitStack(t, false)
	pat := st.patient(patientEmail)
	id := st.book(pat, doctor)
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+id+"/check-in", nil), http.StatusOK)
	doc := st.clinician(doctor)

	// The patient's page waits for a change of state or of messages.
	watch := make(chan service.VisitWatch, 1)
	go func() {
		req, _ := http.NewRequest("GET", st.base+"/api/v1/visits/"+id+"/state?seen=waiting&messages=0", nil)
		req.Header.Set("User-Agent", pat.ua)
		r, err := pat.hc.Do(req)
		if err != nil {
			watch <- service.VisitWatch{State: err.Error()}
			return
		}
		defer r.Body.Close()
		var w service.VisitWatch
		json.NewDecoder(r.Body).Decode(&w)
		watch <- w
	}()
	text := `Running 10 minutes late <img src=x onerror=alert(1)> & sorry`
	expectStatus(t, doc.api("POST", "/api/v1/threads/"+id+"/messages", map[string]string{"body": text}), http.StatusCreated)
	if w := <-watch; w.State != "waiting" || w.Messages != 1 {
		t.Fatalf("the waiting page saw %+v", w)
	}
	got := decode[threadView](t, pat.get("/api/v1/threads/"+id))
	if len(got.Messages) != 1 || got.Messages[0].Body != text || got.Messages[0].FromPatient {
		t.Fatalf("the patient read %+v", got)
	}
	if ev := st.lastEvent(st.practice, "message.read"); ev.ActorID != st.users[patientEmail] || ev.ResourceID != id || ev.Decision != haven.DecisionAllow {
		t.Fatalf("read not audited: %+v", ev)
	}
	expectStatus(t, pat.api("POST", "/api/v1/threads/"+id+"/messages", map[string]string{"body": "Thanks, I'll wait."}), http.StatusCreated)
	if ev := st.lastEvent(st.practice, "message.send"); ev.ActorID != st.users[patientEmail] || ev.PatientID != st.users[patientEmail] {
		t.Fatalf("reply not audited: %+v", ev)
	}
	queue := decode[struct {
		Visits []struct {
			ID       string `json:"id"`
			Messages int    `json:"messages"`
		} `json:"visits"`
	}](t, doc.get("/api/v1/waiting-room"))
	if len(queue.Visits) != 1 || queue.Visits[0].ID != id || queue.Visits[0].Messages != 2 {
		t.Fatalf("queue %+v", queue)
	}
	got = decode[threadView](t, doc.get("/api/v1/threads/"+id))
	if len(got.Messages) != 2 || !got.Messages[1].FromPatient {
		t.Fatalf("the clinician read %+v", got)
	}
}

// TestWaitingRoomMessagesRefuseWhatTheyMust: bad bodies, other patients,
// other practices, and a visit no longer waiting; nothing refused is
// stored.
func TestWaitingRoomMessagesRefuseWhatTheyMust(t *testing.T) {
	t.Parallel()
	st := newVisitStack(t, false)
	pat := st.patient(patientEmail)
	id := st.book(pat, doctor)
	doc := st.clinician(doctor)
	path := "/api/v1/threads/" + id + "/messages"
	// Before check-in the thread is closed.
	expectStatus(t, doc.api("POST", path, map[string]string{"body": "see you soon"}), http.StatusConflict)
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+id+"/check-in", nil), http.StatusOK)

	for name, body := range map[string]any{
		"empty":         map[string]string{"body": "   "},
		"too long":      map[string]string{"body": strings.Repeat("a", service.MaxVisitMessage+1)},
		"line break":    map[string]string{"body": "one\ntwo"},
		"unknown field": map[string]string{"body": "hi", "sender_id": st.users[doctor]},
		"not an object": []string{"hi"},
	} {
		if r := doc.api("POST", path, body); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d", name, r.StatusCode)
		}
	}
	// A form post (what a cross-site page could send) is not JSON.
	r := doc.do("POST", path, strings.NewReader("body=hi"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	expectStatus(t, r, http.StatusBadRequest)

	// Another patient of the practice, and another practice's people.
	other := st.secondPatient()
	outsider := st.patient(otherPatient)
	otherDoc := st.clinician(otherDoctor)
	for _, c := range []*client{other, outsider, otherDoc} {
		expectStatus(t, c.get("/api/v1/threads/"+id), http.StatusNotFound)
		expectStatus(t, c.api("POST", path, map[string]string{"body": "let me in"}), http.StatusNotFound)
	}
	if ev := st.lastEvent(st.other, "message.send"); ev.Decision != haven.DecisionDeny || ev.PatientID != "" {
		t.Fatalf("another practice's attempt: %+v", ev)
	}
	expectStatus(t, st.client(firefox).get("/api/v1/threads/"+id), http.StatusUnauthorized)
	if rows, err := st.db.ThreadMessages(context.Background(), id); err != nil || len(rows) != 0 {
		t.Fatalf("refused messages stored: %d %v", len(rows), err)
	}

	// The clinician removes the patient from the waiting room: the visit
	// is cancelled, the patient's page learns it, and the thread closes.
	expectStatus(t, doc.api("POST", "/api/v1/visits/"+id+"/cancel", nil), http.StatusOK)
	if ev := st.lastEvent(st.practice, "visit.cancel"); ev.ActorID != st.users[doctor] || ev.Decision != haven.DecisionAllow || ev.PatientID != st.users[patientEmail] {
		t.Fatalf("removal not audited: %+v", ev)
	}
	if w := decode[service.VisitWatch](t, pat.get("/api/v1/visits/"+id+"/state?seen=waiting&messages=0")); w.State != "cancelled" {
		t.Fatalf("the patient's page saw %+v", w)
	}
	// This clinician knew the patient only through the visit: once it is
	// cancelled, policy no longer relates them, before the state is asked.
	expectStatus(t, doc.api("POST", path, map[string]string{"body": "sorry"}), http.StatusForbidden)
	expectStatus(t, pat.api("POST", path, map[string]string{"body": "why?"}), http.StatusConflict)
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+id+"/check-in", nil), http.StatusConflict)
	expectStatus(t, pat.get("/api/v1/visits/"+id+"/state?seen=waiting&messages=-1"), http.StatusBadRequest)
}

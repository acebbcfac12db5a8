package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"haven"
	"haven/audit"
	"haven/service"
	"haven/web"
)

// callRecheck is how often the test stacks recheck a seated participant
// (production: video.DefaultRecheckEvery). Tests wait for a cut with a
// deadline, never for a time.
const callRecheck = 100 * time.Millisecond

// cutDeadline bounds the wait for a cut: many recheck periods, so a loaded
// machine does not fail the test, while a cut that never comes does.
const cutDeadline = 20 * time.Second

// readUntilClosed reads conn until the server closes it, returning the
// error messages it sent; it fails the test if the connection stays open
// past cutDeadline.
func readUntilClosed(t *testing.T, conn *websocket.Conn) []sigMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cutDeadline)
	defer cancel()
	var errs []sigMsg
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatal("the call was not cut")
			}
			return errs
		}
		var m sigMsg
		json.Unmarshal(b, &m)
		if m.Type == "error" || m.Type == "ended" {
			errs = append(errs, m)
		}
	}
}

// seated returns who is seated in the visit's room now.
func (st *visitStack) seated(visitID string) []string {
	room, err := st.media.Room(visitID)
	if err != nil {
		return nil // ended rooms are refused: nobody is seated
	}
	var out []string
	for _, p := range room.Peers() {
		out = append(out, p.Participant)
	}
	slices.Sort(out)
	return out
}

// TestRevokedSessionIsCutFromTheCall: a patient in a call revokes their
// other sessions from another device (the phone was stolen, say). The
// session holding the call is cut server-side within the recheck period,
// without any help from its page: the socket closes with "unauthorized",
// the seat is gone and the clinician sees them leave, the cut is audited
// with the patient named, and the old session can neither reopen the call
// nor get a new join token.
func TestRevokedSessionIsCutFromTheCall(t *testing.T) {
	t.Parallel()
	st := newVisitStack(t, false)
	id, pat, doc := st.admitted()
	docPass := decode[service.CallPass](t, doc.api("POST", "/api/v1/visits/"+id+"/join-token", nil))
	if m, _ := doc.join(id, docPass.Token); m.Type != "joined" {
		t.Fatalf("clinician: %+v", m)
	}
	pass := decode[service.CallPass](t, pat.api("POST", "/api/v1/visits/"+id+"/join-token", nil))
	m, conn := pat.join(id, pass.Token)
	if m.Type != "joined" {
		t.Fatalf("patient: %+v", m)
	}
	if got := st.seated(id); len(got) != 2 {
		t.Fatalf("seated before: %v", got)
	}
	oldCookie := *pat.cookie(web.SessionCookie)

	phone := st.patient(patientEmail)
	expectRedirect(t, phone.post("/account/sessions/revoke-others", nil), "/account?revoked=1")

	errs := readUntilClosed(t, conn)
	if len(errs) == 0 || errs[len(errs)-1].Code != haven.EUNAUTHORIZED {
		t.Fatalf("the patient was told %+v", errs)
	}
	if got := st.seated(id); !slices.Equal(got, []string{st.users[doctor]}) {
		t.Fatalf("seated after the cut: %v", got)
	}
	ev := st.waitCut(st.users[patientEmail], id)
	if ev.ActorID != st.users[patientEmail] || ev.Reason != "session_ended" || ev.ResourceID != id || ev.PatientID != st.users[patientEmail] || ev.Decision != haven.DecisionDeny {
		t.Fatalf("cut audited as %+v", ev)
	}

	// The same session cannot come back: not to the call, not for a token
	// (the refusal clears the cookie; it is put back to try again).
	if _, r, err := pat.dial(id, st.base); err == nil || r == nil || r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the revoked session reopened the call: %v %v", r, err)
	}
	base, _ := url.Parse(st.base)
	pat.jar.SetCookies(base, []*http.Cookie{&oldCookie})
	expectStatus(t, pat.api("POST", "/api/v1/visits/"+id+"/join-token", nil), http.StatusUnauthorized)
	// The new session is the patient, and may rejoin.
	again := decode[service.CallPass](t, phone.api("POST", "/api/v1/visits/"+id+"/join-token", nil))
	if m, _ := phone.join(id, again.Token); m.Type != "joined" {
		t.Fatalf("the patient's new session: %+v", m)
	}
}

// TestCallClosesForEveryoneWhenTheVisitClosesElsewhere: the visit is
// ended by another node (here: straight through the service, so this
// node's room is not told). Within the recheck period every participant
// is told the visit ended and disconnected, and the cut is audited.
func TestCallClosesForEveryoneWhenTheVisitClosesElsewhere(t *testing.T) {
	t.Parallel()
	st := newVisitStack(t, false)
	id, pat, doc := st.admitted()
	var conns []*websocket.Conn
	for _, c := range []*client{pat, doc} {
		pass := decode[service.CallPass](t, c.api("POST", "/api/v1/visits/"+id+"/join-token", nil))
		m, conn := c.join(id, pass.Token)
		if m.Type != "joined" {
			t.Fatalf("join: %+v", m)
		}
		conns = append(conns, conn)
	}
	docCtx := haven.NewContextWithActor(context.Background(), haven.Actor{UserID: st.users[doctor], PracticeID: st.practice,
		Role: haven.RoleClinician, MFA: true, AuthTime: st.clock.Now(), SessionID: "another-node", ClientAddr: "127.0.0.1", RequestID: "another-node"})
	if err := st.svc.EndVisit(docCtx, id); err != nil {
		t.Fatal(err)
	}
	for _, conn := range conns {
		if got := readUntilClosed(t, conn); len(got) == 0 || got[len(got)-1].Type != "ended" {
			t.Fatalf("told %+v, want ended", got)
		}
	}
	if got := st.seated(id); len(got) != 0 {
		t.Fatalf("still seated: %v", got)
	}
	if ev := st.waitCut("", id); ev.Reason != "visit_closed" || ev.PatientID != st.users[patientEmail] {
		t.Fatalf("cut audited as %+v", ev)
	}
}

// waitCut returns the visit.cut event of userID ("": anyone's) in visitID, waiting for it
// within cutDeadline: the seat is taken first, and the record follows.
func (st *visitStack) waitCut(userID, visitID string) audit.Event {
	st.t.Helper()
	deadline := time.Now().Add(cutDeadline)
	for {
		rows, err := st.db.SearchAudit(context.Background(), haven.AuditQuery{LogID: st.practice, Action: "visit.cut", Limit: 10})
		if err != nil {
			st.t.Fatal(err)
		}
		for _, r := range rows {
			if (userID == "" || r.Event.ActorID == userID) && r.Event.ResourceID == visitID {
				return r.Event
			}
		}
		if time.Now().After(deadline) {
			st.t.Fatalf("no visit.cut event for %s", userID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

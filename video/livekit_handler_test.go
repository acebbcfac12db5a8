package video_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"haven"
	"haven/video"
	"haven/video/internal/peertest"
	"haven/video/livekit"
	"haven/video/livekit/livekittest"
	"haven/video/signal"
	"haven/video/token"
)

// withLiveKit runs the call endpoint with a real livekit-server carrying
// the media instead of the embedded SFU.
func withLiveKit(t *testing.T) (option, *livekittest.Server, *livekit.Engine) {
	t.Helper()
	srv := livekittest.Start(t)
	eng, err := livekit.New(livekit.Config{URL: srv.URL, APIKey: srv.APIKey, APISecret: srv.APISecret,
		Allow: func(context.Context) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return func(c *video.Config) { c.SFU, c.LiveKit = nil, eng }, srv, eng
}

// joinLiveKit joins the call endpoint and then, with the token it hands
// out, LiveKit's room.
func joinLiveKit(t *testing.T, s *server, srv *livekittest.Server, visit, user string, role token.Role) (*browser, *livekittest.Participant) {
	t.Helper()
	b := mustDial(t, s, visit, user).listen()
	b.join(t, mint(t, visit, user, role))
	m := b.next(t, signal.LiveKit)
	if m.URL != srv.URL || m.Token == "" || m.Role != string(role) {
		t.Fatalf("handed %+v", m)
	}
	p, err := srv.Join(t, m.Token)
	if err != nil {
		t.Fatalf("LiveKit refused Haven's token: %v", err)
	}
	if p.Joined.GetParticipant().GetIdentity() != m.Participant {
		t.Fatalf("joined as %q, told %q", p.Joined.GetParticipant().GetIdentity(), m.Participant)
	}
	return b, p
}

func waitGone(t *testing.T, who string, p *livekittest.Participant) {
	t.Helper()
	if !peertest.WaitFor(bound, func() bool {
		select {
		case <-p.Gone:
			return true
		default:
			return false
		}
	}) {
		t.Fatalf("%s is still in the LiveKit room", who)
	}
}

// With LiveKit, the join is decided as before: a token that does not
// redeem or a participant Authorize refuses gets no LiveKit token, and
// the refusal is audited; an admitted one gets a token LiveKit accepts,
// for the visit's room only, and the join is audited.
func TestLiveKitJoinHandsOutATokenOnlyAfterTheChecks(t *testing.T) {
	lk, srv, eng := withLiveKit(t)
	s := start(t, lk)

	stranger := mustDial(t, s, "visit-1", "other-practice-1").listen()
	stranger.join(t, mint(t, "visit-1", "other-practice-1", token.Patient))
	stranger.next(t, signal.Error)
	stranger.waitClosed(t)
	thief := mustDial(t, s, "visit-1", "patient-2").listen()
	thief.join(t, mint(t, "visit-1", "patient-1", token.Patient)) // someone else's token
	thief.next(t, signal.Error)
	thief.waitClosed(t)
	if n := len(s.audited(video.ActionJoinRefused, "other-practice-1")) + len(s.audited(video.ActionJoinRefused, "patient-2")); n != 2 {
		t.Fatalf("%d refusals audited, want 2", n)
	}
	if rooms := srv.Rooms(t); len(rooms) != 0 {
		t.Fatalf("refused joins made rooms %v", rooms)
	}

	_, pat := joinLiveKit(t, s, srv, "visit-1", "patient-1", token.Patient)
	if e := s.waitAudited(t, video.ActionJoin, "patient-1"); e.VisitID != "visit-1" || e.TokenID == "" {
		t.Fatalf("join audited as %+v", e)
	}
	if got := srv.Participants(t, eng.Room("visit-1")); !slices.Equal(got, []string{pat.Joined.GetParticipant().GetIdentity()}) {
		t.Fatalf("LiveKit room holds %v", got)
	}
}

// A recheck that finds the session revoked cuts the participant from the
// LiveKit room (LiveKit sends them away) and closes their call channel;
// the clinician stays. A visit closed elsewhere deletes the room.
func TestLiveKitRecheckCutsRevokedSessionsAndClosedVisits(t *testing.T) {
	lk, srv, eng := withLiveKit(t)
	st := &standing{answer: map[string]error{}, asked: map[string]int{}}
	s := start(t, lk, withRecheck(st))
	docCh, doc := joinLiveKit(t, s, srv, "visit-1", "clinician-1", token.Clinician)
	patCh, pat := joinLiveKit(t, s, srv, "visit-1", "patient-1", token.Patient)

	st.set("patient-1", haven.Errorf(haven.EUNAUTHORIZED, "please sign in"))
	if m := patCh.next(t, signal.Error); m.Code != haven.EUNAUTHORIZED {
		t.Fatalf("told %+v", m)
	}
	patCh.waitClosed(t)
	waitGone(t, "the revoked patient", pat)
	if e := s.waitAudited(t, video.ActionCut, "patient-1"); e.Reason != video.CutSessionEnded {
		t.Fatalf("cut audited as %+v", e)
	}
	if got := srv.Participants(t, eng.Room("visit-1")); !slices.Equal(got, []string{doc.Joined.GetParticipant().GetIdentity()}) {
		t.Fatalf("after the cut the room holds %v, want only the clinician", got)
	}

	st.set("clinician-1", haven.Errorf(haven.ECONFLICT, "the visit is over"))
	docCh.waitClosed(t)
	waitGone(t, "the clinician", doc)
	if rooms := srv.Rooms(t); len(rooms) != 0 {
		t.Fatalf("the closed visit's room is still there: %v", rooms)
	}
}

// Leaving Haven's call channel (the page closed) takes the participant
// out of the LiveKit room too: no one stays there unchecked.
func TestLiveKitLeavingTheCallChannelLeavesTheRoom(t *testing.T) {
	lk, srv, _ := withLiveKit(t)
	s := start(t, lk)
	ch, p := joinLiveKit(t, s, srv, "visit-1", "patient-1", token.Patient)
	ch.send(t, signal.Message{Type: signal.Leave})
	ch.waitClosed(t)
	waitGone(t, "the patient who left", p)
	if e := s.waitAudited(t, video.ActionLeave, "patient-1"); e.Reason != "left" {
		t.Fatalf("leave audited as %+v", e)
	}
}

// On LiveKit the clinician still invites a guest over the call channel
// (audited, then recorded by the service); a patient may not, and media
// messages meant for the embedded SFU are refused.
func TestLiveKitClinicianInvitesOverTheCallChannel(t *testing.T) {
	lk, srv, _ := withLiveKit(t)
	s := start(t, lk)
	doc, _ := joinLiveKit(t, s, srv, "visit-1", "clinician-1", token.Clinician)
	pat, _ := joinLiveKit(t, s, srv, "visit-1", "patient-1", token.Patient)
	pat.send(t, signal.Message{Type: signal.Invite, Participant: "guest-1"})
	if m := pat.next(t, signal.Error); m.Code != haven.EFORBIDDEN {
		t.Fatalf("the patient's invitation answered %+v", m)
	}
	doc.send(t, signal.Message{Type: signal.Invite, Participant: "guest-1"})
	if e := s.waitAudited(t, video.ActionInvite, "clinician-1"); e.Subject != "guest-1" {
		t.Fatalf("invitation audited as %+v", e)
	}
	if !peertest.WaitFor(bound, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return slices.Equal(s.invites, []string{"visit-1/clinician-1/guest-1"})
	}) {
		t.Fatalf("invitations recorded: %v", s.invites)
	}
	doc.send(t, signal.Message{Type: signal.Mute})
	if m := doc.next(t, signal.Error); m.Code != haven.EINVALID {
		t.Fatalf("a media message answered %+v", m)
	}
}

// A join that cannot be audited hands out no LiveKit token.
func TestLiveKitJoinThatCannotBeAuditedGetsNoToken(t *testing.T) {
	lk, _, _ := withLiveKit(t)
	s := start(t, lk)
	s.mu.Lock()
	s.failing[video.ActionJoin] = true
	s.mu.Unlock()
	b := mustDial(t, s, "visit-1", "patient-1").listen()
	b.join(t, mint(t, "visit-1", "patient-1", token.Patient))
	if m := b.next(t, signal.Error); m.Code != haven.EUNAVAILABLE {
		t.Fatalf("told %+v", m)
	}
	b.waitClosed(t)
	for {
		select {
		case m := <-b.msgs:
			if m.Type == signal.LiveKit {
				t.Fatal("a LiveKit token went out for a join that was not audited")
			}
			continue
		default:
		}
		break
	}
}

// On LiveKit the call channel names the others to an admitted
// participant, keyed by their LiveKit pseudonyms (never their own name,
// never anyone's id), and again when the page asks; a refused join hears
// no name; and LiveKit itself learns none: room, identities, names,
// metadata and attributes there hold no name and no id.
func TestLiveKitNamesGoOnlyToAdmittedParticipantsNeverToLiveKit(t *testing.T) {
	lk, srv, eng := withLiveKit(t)
	people := map[string]string{"patient-1": "Maria Lopez", "clinician-1": "Dr Ana Rivera", "guest-1": "Sam Guest"}
	var asked []string
	var mu sync.Mutex
	s := start(t, lk, func(c *video.Config) {
		c.Names = func(_ context.Context, cl token.Claims) (map[string]string, error) {
			mu.Lock()
			asked = append(asked, cl.VisitID+"/"+cl.ParticipantID)
			mu.Unlock()
			if cl.VisitID != "visit-1" {
				return nil, haven.Errorf(haven.ENOTFOUND, "no such visit")
			}
			return maps.Clone(people), nil
		}
	})

	stranger := mustDial(t, s, "visit-1", "other-practice-1").listen()
	stranger.join(t, mint(t, "visit-1", "other-practice-1", token.Patient))
	stranger.next(t, signal.Error)
	stranger.waitClosed(t)
	for len(stranger.msgs) > 0 {
		if m := <-stranger.msgs; m.Type == signal.Names || len(m.Names) != 0 {
			t.Fatalf("a refused join was told names: %+v", m)
		}
	}
	mu.Lock()
	if len(asked) != 0 {
		t.Fatalf("names were looked up for a refused join: %v", asked)
	}
	mu.Unlock()

	docCh, doc := joinLiveKit(t, s, srv, "visit-1", "clinician-1", token.Clinician)
	patCh, pat := joinLiveKit(t, s, srv, "visit-1", "patient-1", token.Patient)
	want := func(ids ...string) map[string]string {
		m := map[string]string{}
		for _, id := range ids {
			m[eng.Identity("visit-1", id)] = people[id]
		}
		return m
	}
	if m := patCh.next(t, signal.Names); !maps.Equal(m.Names, want("clinician-1", "guest-1")) {
		t.Fatalf("the patient was told %v", m.Names)
	}
	if m := docCh.next(t, signal.Names); !maps.Equal(m.Names, want("patient-1", "guest-1")) {
		t.Fatalf("the clinician was told %v", m.Names)
	}
	if got := eng.Identity("visit-1", "clinician-1"); doc.Joined.GetParticipant().GetIdentity() != got {
		t.Fatalf("the clinician is %q in LiveKit, told %q", doc.Joined.GetParticipant().GetIdentity(), got)
	}
	patCh.send(t, signal.Message{Type: signal.Names}) // someone arrived the page cannot name
	if m := patCh.next(t, signal.Names); !maps.Equal(m.Names, want("clinician-1", "guest-1")) {
		t.Fatalf("asked again, the patient was told %v", m.Names)
	}

	infos := srv.ParticipantInfos(t, eng.Room("visit-1"))
	if len(infos) != 2 {
		t.Fatalf("LiveKit's room holds %d participants, want 2", len(infos))
	}
	for _, p := range append(infos, pat.Joined.GetParticipant(), doc.Joined.GetParticipant()) {
		seen := eng.Room("visit-1") + " " + p.Identity + " " + p.Name + " " + p.Metadata + " " + fmt.Sprint(p.Attributes)
		if p.Name != "" || p.Metadata != "" || len(p.Attributes) != 0 {
			t.Fatalf("LiveKit holds more than a pseudonym: %q", seen)
		}
		for id, name := range people {
			for _, leak := range append(strings.Fields(name), id, "visit-1") {
				if strings.Contains(strings.ToLower(seen), strings.ToLower(leak)) {
					t.Fatalf("LiveKit saw %q: %q", leak, seen)
				}
			}
		}
	}
}

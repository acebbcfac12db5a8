package sfu_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"haven"
	"haven/video/internal/peertest"
	"haven/video/sfu"
	"haven/video/signal"
	"haven/video/token"
)

// bound is how long a test waits for media before failing. It bounds a
// broken test; it asserts nothing about speed.
const bound = 20 * time.Second

func newSFU(t testing.TB, cfg sfu.Config) *sfu.SFU {
	t.Helper()
	cfg.LoopbackOnly = true
	s, err := sfu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	clientAPIOnce sync.Once
	clientAPI     *webrtc.API
)

func api(t testing.TB) *webrtc.API {
	clientAPIOnce.Do(func() {
		var err error
		clientAPI, err = sfu.NewAPI(sfu.Config{LoopbackOnly: true})
		if err != nil {
			t.Fatal(err)
		}
	})
	return clientAPI
}

// seat is a test participant: a pion client joined to a room through a
// channel that plays the WebSocket's part.
type seat struct {
	id    string
	c     *peertest.Client
	p     *sfu.Participant
	ready chan struct{}
	pipe  *pipe
}

type pipe struct {
	c      *peertest.Client
	once   sync.Once
	closed chan struct{}
}

func (p *pipe) Send(m signal.Message) error { return p.c.Deliver(m) }
func (p *pipe) Close()                      { p.once.Do(func() { close(p.closed) }) }

// join seats id in r; publish says whether the client sends media.
func join(t testing.TB, r *sfu.Room, id string, role token.Role, publish bool) (*seat, error) {
	t.Helper()
	s := &seat{id: id, ready: make(chan struct{})}
	c, err := peertest.New(api(t), func(m signal.Message) error {
		<-s.ready
		if s.p == nil {
			return errors.New("not joined")
		}
		return s.p.Handle(m)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s.c = c
	if publish {
		if err := c.Publish(); err != nil {
			t.Fatal(err)
		}
	}
	s.pipe = &pipe{c: c, closed: make(chan struct{})}
	s.p, _, err = r.Join(sfu.JoinRequest{ParticipantID: id, Role: role, Signal: s.pipe})
	close(s.ready)
	return s, err
}

func mustJoin(t testing.TB, r *sfu.Room, id string, role token.Role) *seat {
	t.Helper()
	s, err := join(t, r, id, role, true)
	if err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	return s
}

func room(t testing.TB, s *sfu.SFU, visit string) *sfu.Room {
	t.Helper()
	r, err := s.Room(visit)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// receives waits until to has more than n packets of kind from from.
func receives(t testing.TB, to *seat, from, kind string, n uint64) {
	t.Helper()
	if !peertest.WaitFor(bound, func() bool { return to.c.Received(from, kind) > n }) {
		t.Fatalf("%s received %d %s packets from %s, want more than %d", to.id, to.c.Received(from, kind), kind, from, n)
	}
}

// event waits for the next server message of type typ, skipping others.
func event(t testing.TB, s *seat, typ signal.Type) signal.Message {
	t.Helper()
	deadline := time.After(bound)
	for {
		select {
		case m := <-s.c.Events():
			if m.Type == typ {
				return m
			}
		case <-deadline:
			t.Fatalf("%s got no %q message", s.id, typ)
		}
	}
}

func TestTwoParticipantsReceiveEachOthersMediaAndNothingFromAnotherVisit(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	r1, r2 := room(t, s, "visit-1"), room(t, s, "visit-2")
	doc := mustJoin(t, r1, "clinician-1", token.Clinician)
	pat := mustJoin(t, r1, "patient-1", token.Patient)
	// A second visit at the same time, on the same SFU.
	doc2 := mustJoin(t, r2, "clinician-2", token.Clinician)
	pat2 := mustJoin(t, r2, "patient-2", token.Patient)

	receives(t, pat, "clinician-1", sfu.KindVideo, 50)
	receives(t, pat, "clinician-1", sfu.KindAudio, 20)
	receives(t, doc, "patient-1", sfu.KindVideo, 50)
	receives(t, doc, "patient-1", sfu.KindAudio, 20)
	receives(t, pat2, "clinician-2", sfu.KindVideo, 50)
	receives(t, doc2, "patient-2", sfu.KindVideo, 50)

	// Stream ids are the SFU's (the authenticated participant id), never
	// the "client-chosen-stream" the publisher put in its SDP; and no
	// track crosses from one visit to the other.
	for _, tc := range []struct {
		s    *seat
		want string
	}{{doc, "patient-1"}, {pat, "clinician-1"}, {doc2, "patient-2"}, {pat2, "clinician-2"}} {
		for _, st := range tc.s.c.Streams() {
			if st != tc.want {
				t.Errorf("%s received stream %q, want only %q", tc.s.id, st, tc.want)
			}
		}
	}
}

func TestJoinedListsPeersAndOthersHearOfTheArrival(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	r := room(t, s, "visit-1")
	doc := mustJoin(t, r, "clinician-1", token.Clinician)
	if m := event(t, doc, signal.Joined); len(m.Peers) != 0 || m.Role != "clinician" {
		t.Fatalf("first joined: %+v", m)
	}
	pat := mustJoin(t, r, "patient-1", token.Patient)
	m := event(t, pat, signal.Joined)
	if len(m.Peers) != 1 || m.Peers[0].Participant != "clinician-1" || m.Peers[0].Role != "clinician" {
		t.Fatalf("second joined: %+v", m)
	}
	if m := event(t, doc, signal.PeerJoined); m.Peer == nil || m.Peer.Participant != "patient-1" {
		t.Fatalf("peer-joined: %+v", m)
	}
}

func TestMuteAndCameraOffAreEnforcedByTheServer(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	r := room(t, s, "visit-1")
	doc := mustJoin(t, r, "clinician-1", token.Clinician)
	pat := mustJoin(t, r, "patient-1", token.Patient)
	receives(t, doc, "patient-1", sfu.KindAudio, 10)

	// The patient's browser keeps sending audio (a buggy or hostile
	// client would); the SFU must stop forwarding it.
	if err := pat.p.Handle(signal.Message{Type: signal.Mute}); err != nil {
		t.Fatal(err)
	}
	if m := event(t, doc, signal.State); m.Peer.Participant != "patient-1" || m.Peer.Audio || !m.Peer.Video {
		t.Fatalf("state after mute: %+v", m.Peer)
	}
	audio := doc.c.Received("patient-1", sfu.KindAudio)
	video := doc.c.Received("patient-1", sfu.KindVideo)
	// While 100 more video packets arrive (about as long as 40 audio
	// packets take), audio may grow only by what was already in flight.
	receives(t, doc, "patient-1", sfu.KindVideo, video+100)
	if got := doc.c.Received("patient-1", sfu.KindAudio); got > audio+3 {
		t.Fatalf("muted audio still forwarded: %d -> %d packets", audio, got)
	}
	if err := pat.p.Handle(signal.Message{Type: signal.Unmute}); err != nil {
		t.Fatal(err)
	}
	if m := event(t, doc, signal.State); !m.Peer.Audio {
		t.Fatalf("state after unmute: %+v", m.Peer)
	}
	receives(t, doc, "patient-1", sfu.KindAudio, doc.c.Received("patient-1", sfu.KindAudio)+10)

	// Camera off: same, for video.
	if err := pat.p.Handle(signal.Message{Type: signal.CameraOff}); err != nil {
		t.Fatal(err)
	}
	if m := event(t, doc, signal.State); m.Peer.Video || !m.Peer.Audio {
		t.Fatalf("state after camera off: %+v", m.Peer)
	}
	video = doc.c.Received("patient-1", sfu.KindVideo)
	receives(t, doc, "patient-1", sfu.KindAudio, doc.c.Received("patient-1", sfu.KindAudio)+40)
	if got := doc.c.Received("patient-1", sfu.KindVideo); got > video+8 {
		t.Fatalf("video forwarded with the camera off: %d -> %d packets", video, got)
	}
	if err := pat.p.Handle(signal.Message{Type: signal.CameraOn}); err != nil {
		t.Fatal(err)
	}
	receives(t, doc, "patient-1", sfu.KindVideo, doc.c.Received("patient-1", sfu.KindVideo)+20)
}

func TestSubscriberKeyframeRequestsReachThePublisher(t *testing.T) {
	s := newSFU(t, sfu.Config{KeyframeInterval: time.Nanosecond})
	r := room(t, s, "visit-1")
	doc := mustJoin(t, r, "clinician-1", token.Clinician)
	// The patient only watches, so every PLI the clinician sees comes
	// from the patient's side through the SFU.
	pat, err := join(t, r, "patient-1", token.Patient, false)
	if err != nil {
		t.Fatal(err)
	}
	receives(t, pat, "clinician-1", sfu.KindVideo, 10)
	select {
	case <-doc.c.PLI():
	case <-time.After(bound):
		// The SFU asks for a keyframe for a new subscriber; ask
		// explicitly too, as a browser does.
		pat.c.RequestKeyframe()
		select {
		case <-doc.c.PLI():
		case <-time.After(bound):
			t.Fatal("no keyframe request reached the publisher")
		}
	}
}

func TestKeyframeRequestsAreForwardedAndRateLimited(t *testing.T) {
	// With an hour between forwarded requests, a subscriber asking for
	// keyframes in a loop must not reach the publisher more than once.
	s := newSFU(t, sfu.Config{KeyframeInterval: time.Hour})
	r := room(t, s, "visit-1")
	doc := mustJoin(t, r, "clinician-1", token.Clinician)
	pat, err := join(t, r, "patient-1", token.Patient, false)
	if err != nil {
		t.Fatal(err)
	}
	receives(t, pat, "clinician-1", sfu.KindVideo, 10)
	<-doc.c.PLI() // the one allowed (the SFU's own request for the new subscriber)
	before := doc.c.PLICount()
	for range 20 {
		pat.c.RequestKeyframe()
	}
	receives(t, pat, "clinician-1", sfu.KindVideo, pat.c.Received("clinician-1", sfu.KindVideo)+50)
	if got := doc.c.PLICount(); got != before {
		t.Fatalf("publisher got %d more keyframe requests within the interval", got-before)
	}

	// Control: with no interval, the same flood does get through, so the
	// limit above is what stopped it.
	s2 := newSFU(t, sfu.Config{KeyframeInterval: time.Nanosecond})
	r2 := room(t, s2, "visit-2")
	doc2 := mustJoin(t, r2, "clinician-2", token.Clinician)
	pat2, err := join(t, r2, "patient-2", token.Patient, false)
	if err != nil {
		t.Fatal(err)
	}
	receives(t, pat2, "clinician-2", sfu.KindVideo, 10)
	before = doc2.c.PLICount()
	for range 20 {
		pat2.c.RequestKeyframe()
		time.Sleep(time.Millisecond)
	}
	if !peertest.WaitFor(bound, func() bool { return doc2.c.PLICount() >= before+10 }) {
		t.Fatalf("only %d of 20 keyframe requests forwarded without a limit", doc2.c.PLICount()-before)
	}
}

func TestGuestJoinsOnlyAtTheClinicansInvitation(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	r := room(t, s, "visit-1")
	doc := mustJoin(t, r, "clinician-1", token.Clinician)
	pat := mustJoin(t, r, "patient-1", token.Patient)

	if _, err := join(t, r, "interpreter-1", token.Guest, true); haven.ErrorCode(err) != haven.EFORBIDDEN {
		t.Fatalf("uninvited guest: %v", err)
	}
	// The patient cannot invite anyone.
	err := pat.p.Handle(signal.Message{Type: signal.Invite, Participant: "interpreter-1"})
	if haven.ErrorCode(err) != haven.EFORBIDDEN {
		t.Fatalf("patient invited: %v", err)
	}
	if _, err := join(t, r, "interpreter-1", token.Guest, true); haven.ErrorCode(err) != haven.EFORBIDDEN {
		t.Fatalf("guest after the patient's invitation: %v", err)
	}
	if err := doc.p.Handle(signal.Message{Type: signal.Invite, Participant: "interpreter-1"}); err != nil {
		t.Fatal(err)
	}
	// Another guest is still out.
	if _, err := join(t, r, "cousin-2", token.Guest, true); haven.ErrorCode(err) != haven.EFORBIDDEN {
		t.Fatalf("uninvited second guest: %v", err)
	}
	guest := mustJoin(t, r, "interpreter-1", token.Guest)
	receives(t, guest, "clinician-1", sfu.KindVideo, 20)
	receives(t, guest, "patient-1", sfu.KindVideo, 20)
	receives(t, pat, "interpreter-1", sfu.KindAudio, 10)
}

func TestClinicianEndsTheVisitForEveryone(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	r := room(t, s, "visit-1")
	doc := mustJoin(t, r, "clinician-1", token.Clinician)
	pat := mustJoin(t, r, "patient-1", token.Patient)
	receives(t, pat, "clinician-1", sfu.KindVideo, 5)

	if err := pat.p.Handle(signal.Message{Type: signal.End}); haven.ErrorCode(err) != haven.EFORBIDDEN {
		t.Fatalf("patient ended the visit: %v", err)
	}
	if err := doc.p.Handle(signal.Message{Type: signal.End}); err != nil {
		t.Fatal(err)
	}
	event(t, pat, signal.Ended)
	event(t, doc, signal.Ended)
	for _, st := range []*seat{doc, pat} {
		select {
		case <-st.pipe.closed:
		case <-time.After(bound):
			t.Fatalf("%s's signaling left open after the end", st.id)
		}
	}
	// No way back in: not with the old room, not with a new one.
	if _, err := join(t, r, "patient-1", token.Patient, false); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("rejoin of ended room: %v", err)
	}
	if _, err := s.Room("visit-1"); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("reopen of ended visit: %v", err)
	}
	if s.Rooms() != 0 {
		t.Fatalf("%d rooms open after the end", s.Rooms())
	}
}

func TestReconnectReplacesTheOldConnection(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	r := room(t, s, "visit-1")
	doc := mustJoin(t, r, "clinician-1", token.Clinician)
	old := mustJoin(t, r, "patient-1", token.Patient)
	receives(t, doc, "patient-1", sfu.KindVideo, 10)

	// The patient's network drops; their browser rejoins with a fresh
	// token on a new connection.
	fresh := mustJoin(t, r, "patient-1", token.Patient)
	select {
	case <-old.pipe.closed:
	case <-time.After(bound):
		t.Fatal("old connection left open")
	}
	if m := event(t, old, signal.Error); m.Code != haven.ECONFLICT {
		t.Fatalf("old connection told %+v", m)
	}
	old.c.Close()
	receives(t, fresh, "clinician-1", sfu.KindVideo, 20)
	n := doc.c.Received("patient-1", sfu.KindVideo)
	receives(t, doc, "patient-1", sfu.KindVideo, n+20)
	if len(r.Peers()) != 2 {
		t.Fatalf("peers after reconnect: %+v", r.Peers())
	}
}

func TestLeaveTellsTheOthersAndAnEmptyRoomIsDropped(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	r := room(t, s, "visit-1")
	doc := mustJoin(t, r, "clinician-1", token.Clinician)
	pat := mustJoin(t, r, "patient-1", token.Patient)
	receives(t, doc, "patient-1", sfu.KindVideo, 5)
	if err := pat.p.Handle(signal.Message{Type: signal.Leave}); err != nil {
		t.Fatal(err)
	}
	if m := event(t, doc, signal.PeerLeft); m.Participant != "patient-1" {
		t.Fatalf("peer-left: %+v", m)
	}
	if peers := r.Peers(); len(peers) != 1 || peers[0].Participant != "clinician-1" {
		t.Fatalf("peers: %+v", peers)
	}
	doc.p.Leave()
	if s.Rooms() != 0 {
		t.Fatalf("%d rooms after everyone left", s.Rooms())
	}
}

func TestRoomSeatsAreBounded(t *testing.T) {
	s := newSFU(t, sfu.Config{MaxParticipants: 2})
	r := room(t, s, "visit-1")
	doc := mustJoin(t, r, "clinician-1", token.Clinician)
	mustJoin(t, r, "patient-1", token.Patient)
	if err := doc.p.Handle(signal.Message{Type: signal.Invite, Participant: "interpreter-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := join(t, r, "interpreter-1", token.Guest, false); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("third seat of two: %v", err)
	}
}

// silent is a signaling channel whose browser never answers.
type silent struct{}

func (silent) Send(signal.Message) error { return nil }
func (silent) Close()                    {}

func TestSignalingOutOfTurnIsRefused(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	r := room(t, s, "visit-1")
	p, _, err := r.Join(sfu.JoinRequest{ParticipantID: "clinician-1", Role: token.Clinician, Signal: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(signal.Message{Type: signal.Join, Token: "x"}); haven.ErrorCode(err) != haven.EINVALID {
		t.Fatalf("second join: %v", err)
	}
	if err := p.Handle(signal.Message{Type: signal.Joined}); haven.ErrorCode(err) != haven.EINVALID {
		t.Fatalf("server message from a client: %v", err)
	}
	if err := p.Answer("v=0\r\nnonsense"); err == nil {
		t.Fatal("garbage answer accepted")
	}
	// The SFU's offer is outstanding: a client offer now would cross it.
	if !peertest.WaitFor(bound, func() bool { return p.Offer("v=0\r\n") != nil }) {
		t.Fatal("crossing offer accepted")
	}
	if err := p.Offer("v=0\r\n"); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("crossing offer: %v", err)
	}
	// Candidates held for an answer that never comes are bounded.
	for i := range 100 {
		if err := p.AddCandidate(signal.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"}); err != nil {
			if haven.ErrorCode(err) != haven.ETOOMANY || i < 10 {
				t.Fatalf("candidate %d: %v", i, err)
			}
			return
		}
	}
	t.Fatal("unbounded pending candidates")
}

func TestNoRoomForInvalidVisitIDs(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	for _, id := range []string{"", "../x", "a b", string(make([]byte, 65))} {
		if _, err := s.Room(id); haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("Room(%q): %v", id, err)
		}
	}
	if !slices.Equal([]int{s.Rooms()}, []int{0}) {
		t.Fatal("rooms opened")
	}
}

func TestScreenShareIsForwardedAsAScreenUntilStopped(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	r := room(t, s, "visit-1")
	doc := mustJoin(t, r, "clinician-1", token.Clinician)
	pat := mustJoin(t, r, "patient-1", token.Patient)
	receives(t, doc, "patient-1", sfu.KindVideo, 10)

	// The browser picks a screen, adds its track, and asks for a slot;
	// the SFU's next offer carries it.
	if err := pat.c.ShareScreen(); err != nil {
		t.Fatal(err)
	}
	if err := pat.p.Handle(signal.Message{Type: signal.ScreenStart}); err != nil {
		t.Fatal(err)
	}
	if m := event(t, doc, signal.State); !m.Peer.Screen {
		t.Fatalf("state after screen-start: %+v", m.Peer)
	}
	receives(t, doc, "patient-1", sfu.KindScreen, 20)
	// The camera is still a camera.
	receives(t, doc, "patient-1", sfu.KindVideo, doc.c.Received("patient-1", sfu.KindVideo)+20)

	if err := pat.p.Handle(signal.Message{Type: signal.ScreenStop}); err != nil {
		t.Fatal(err)
	}
	if m := event(t, doc, signal.State); m.Peer.Screen {
		t.Fatalf("state after screen-stop: %+v", m.Peer)
	}
	screen := doc.c.Received("patient-1", sfu.KindScreen)
	receives(t, doc, "patient-1", sfu.KindVideo, doc.c.Received("patient-1", sfu.KindVideo)+100)
	if got := doc.c.Received("patient-1", sfu.KindScreen); got > screen+8 {
		t.Fatalf("screen forwarded after stop: %d -> %d packets", screen, got)
	}
}

func TestJoinAfterTheRoomEmptiedLandsInTheVisitsNewRoom(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	old := room(t, s, "visit-1")
	doc := mustJoin(t, old, "clinician-1", token.Clinician)
	// The clinician's join has fetched the room; before the patient's
	// join lands in it, the clinician's connection drops and the room
	// empties.
	doc.p.Leave()
	if _, err := join(t, old, "patient-1", token.Patient, false); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("join into an emptied room: %v", err)
	}
	st := &seat{id: "patient-1", ready: make(chan struct{})}
	c, err := peertest.New(api(t), func(m signal.Message) error { <-st.ready; return st.p.Handle(m) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st.c = c
	st.p, _, err = s.Join("visit-1", sfu.JoinRequest{ParticipantID: "patient-1", Role: token.Patient, Signal: &pipe{c: c, closed: make(chan struct{})}})
	close(st.ready)
	if err != nil {
		t.Fatal(err)
	}
	// Both are in the visit's one live room: media flows.
	mustJoin(t, room(t, s, "visit-1"), "clinician-1", token.Clinician)
	receives(t, st, "clinician-1", sfu.KindVideo, 0)
}

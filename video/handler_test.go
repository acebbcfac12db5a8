package video_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"haven"
	"haven/video"
	"haven/video/internal/peertest"
	"haven/video/sfu"
	"haven/video/signal"
	"haven/video/token"
)

const bound = 20 * time.Second

var key = bytes.Repeat([]byte{9}, token.KeySize)

// server is a running call endpoint behind a stand-in for the session
// middleware (the X-Test-User header plays the signed-in user).
type server struct {
	*httptest.Server
	sfu *sfu.SFU

	mu      sync.Mutex
	events  []video.Event
	failing map[string]bool // audit actions that fail
	invites []string
	ended   []string
}

type option func(*video.Config)

func start(t testing.TB, opts ...option) *server {
	t.Helper()
	s := &server{failing: map[string]bool{}}
	var err error
	s.sfu, err = sfu.New(sfu.Config{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.sfu.Close() })
	cfg := video.Config{
		SFU:      s.sfu,
		TokenKey: key,
		Spent:    token.NewMemorySpent(0, nil),
		Audit: func(_ context.Context, e video.Event) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.failing[e.Action] {
				return errors.New("audit log down")
			}
			s.events = append(s.events, e)
			return nil
		},
		Authorize: func(_ context.Context, c token.Claims) error {
			if strings.HasPrefix(c.ParticipantID, "other-practice") {
				return haven.Errorf(haven.EFORBIDDEN, "not a member of this practice")
			}
			return nil
		},
		ICEServers: func(context.Context, token.Claims) ([]signal.ICEServer, error) {
			return []signal.ICEServer{{URLs: []string{"turn:127.0.0.1:3478?transport=udp"}, Username: "u", Credential: "p"}}, nil
		},
		Invite: func(_ context.Context, visitID, clinicianID, guestID string) error {
			s.mu.Lock()
			s.invites = append(s.invites, visitID+"/"+clinicianID+"/"+guestID)
			s.mu.Unlock()
			return nil
		},
		EndVisit: func(_ context.Context, visitID, clinicianID string) error {
			s.mu.Lock()
			s.ended = append(s.ended, visitID+"/"+clinicianID)
			s.mu.Unlock()
			return nil
		},
		JoinTimeout: 2 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := video.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /visits/{visit}/call", h)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.Header.Get("X-Test-User"); u != "" {
			r = r.WithContext(haven.NewContextWithActor(r.Context(), haven.Actor{UserID: u}))
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) audited(action, participant string) []video.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []video.Event
	for _, e := range s.events {
		if e.Action == action && e.ParticipantID == participant {
			out = append(out, e)
		}
	}
	return out
}

func (s *server) waitAudited(t testing.TB, action, participant string) video.Event {
	t.Helper()
	if !peertest.WaitFor(bound, func() bool { return len(s.audited(action, participant)) > 0 }) {
		t.Fatalf("no %s event for %s; events: %+v", action, participant, s.events)
	}
	return s.audited(action, participant)[0]
}

func mint(t testing.TB, visit, participant string, role token.Role) string {
	t.Helper()
	tok, err := token.Mint(key, token.Claims{VisitID: visit, ParticipantID: participant, Role: role}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// browser is a WebSocket client; when it has a peertest client, offers go
// to it and it answers through the socket.
type browser struct {
	id     string
	conn   *websocket.Conn
	msgs   chan signal.Message
	closed chan struct{}
	peer   *peertest.Client
}

func dial(t testing.TB, s *server, visit, user, origin string) (*browser, error) {
	t.Helper()
	h := http.Header{}
	if user != "" {
		h.Set("X-Test-User", user)
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	url := "ws" + strings.TrimPrefix(s.URL, "http") + "/visits/" + visit + "/call"
	conn, resp, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		if resp != nil {
			return nil, &statusError{resp.StatusCode}
		}
		return nil, err
	}
	conn.SetReadLimit(1 << 20)
	b := &browser{id: user, conn: conn, msgs: make(chan signal.Message, 256), closed: make(chan struct{})}
	t.Cleanup(func() { conn.CloseNow() })
	return b, nil
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }

func mustDial(t testing.TB, s *server, visit, user string) *browser {
	t.Helper()
	b, err := dial(t, s, visit, user, s.URL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return b
}

// withMedia gives b a pion peer that publishes and answers offers.
func (b *browser) withMedia(t testing.TB) *browser {
	t.Helper()
	api, err := sfu.NewAPI(sfu.Config{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	b.peer, err = peertest.New(api, func(m signal.Message) error { return b.sendMsg(m) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.peer.Close)
	if err := b.peer.Publish(); err != nil {
		t.Fatal(err)
	}
	return b
}

// listen starts reading; call it after withMedia.
func (b *browser) listen() *browser {
	go func() {
		defer close(b.closed)
		for {
			_, data, err := b.conn.Read(context.Background())
			if err != nil {
				return
			}
			var m signal.Message
			if json.Unmarshal(data, &m) != nil {
				continue
			}
			if b.peer != nil && (m.Type == signal.Offer || m.Type == signal.Answer) {
				_ = b.peer.Deliver(m)
				continue
			}
			b.msgs <- m
		}
	}()
	return b
}

func (b *browser) sendMsg(m signal.Message) error {
	data, err := signal.Encode(m)
	if err != nil {
		return err
	}
	return b.conn.Write(context.Background(), websocket.MessageText, data)
}

func (b *browser) send(t testing.TB, m signal.Message) {
	t.Helper()
	if err := b.sendMsg(m); err != nil {
		t.Fatalf("send %s: %v", m.Type, err)
	}
}

func (b *browser) join(t testing.TB, tok string) {
	t.Helper()
	b.send(t, signal.Message{Type: signal.Join, Token: tok})
}

// next returns the next message of type typ, skipping others; it fails if
// the connection closes first.
func (b *browser) next(t testing.TB, typ signal.Type) signal.Message {
	t.Helper()
	deadline := time.After(bound)
	for {
		select {
		case m := <-b.msgs:
			if m.Type == typ {
				return m
			}
		case <-b.closed:
			// Drain what arrived before the close.
			for {
				select {
				case m := <-b.msgs:
					if m.Type == typ {
						return m
					}
				default:
					t.Fatalf("%s: connection closed before a %q message", b.id, typ)
				}
			}
		case <-deadline:
			t.Fatalf("%s: no %q message", b.id, typ)
		}
	}
}

func (b *browser) waitClosed(t testing.TB) {
	t.Helper()
	select {
	case <-b.closed:
	case <-time.After(bound):
		t.Fatalf("%s: connection left open", b.id)
	}
}

func TestTwoBrowsersThroughTheCallEndpointReceiveEachOthersMedia(t *testing.T) {
	s := start(t)
	doc := mustDial(t, s, "visit-1", "clinician-1").withMedia(t).listen()
	doc.join(t, mint(t, "visit-1", "clinician-1", token.Clinician))
	if m := doc.next(t, signal.Joined); m.Role != "clinician" || len(m.ICEServers) != 1 {
		t.Fatalf("joined: %+v", m)
	}
	pat := mustDial(t, s, "visit-1", "patient-1").withMedia(t).listen()
	pat.join(t, mint(t, "visit-1", "patient-1", token.Patient))
	pat.next(t, signal.Joined)

	for _, c := range []struct {
		to   *browser
		from string
	}{{doc, "patient-1"}, {pat, "clinician-1"}} {
		for kind, n := range map[string]uint64{sfu.KindVideo: 50, sfu.KindAudio: 20} {
			if !peertest.WaitFor(bound, func() bool { return c.to.peer.Received(c.from, kind) > n }) {
				t.Fatalf("%s received %d %s packets from %s", c.to.id, c.to.peer.Received(c.from, kind), kind, c.from)
			}
		}
	}
	s.waitAudited(t, video.ActionJoin, "clinician-1")
	e := s.waitAudited(t, video.ActionJoin, "patient-1")
	if e.VisitID != "visit-1" || e.Role != token.Patient || e.TokenID == "" {
		t.Fatalf("join event: %+v", e)
	}

	pat.send(t, signal.Message{Type: signal.Leave})
	pat.waitClosed(t)
	doc.next(t, signal.PeerLeft)
	if e := s.waitAudited(t, video.ActionLeave, "patient-1"); e.Reason != "left" {
		t.Fatalf("leave event: %+v", e)
	}
}

func TestJoinsWithoutAGoodTokenAreRefusedAndAudited(t *testing.T) {
	s := start(t)
	good := mint(t, "visit-1", "patient-1", token.Patient)
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	raw[len(raw)-1] ^= 1 // one bit of the MAC
	forged := base64.RawURLEncoding.EncodeToString(raw)
	expired, err := token.Mint(key, token.Claims{VisitID: "visit-1", ParticipantID: "patient-1", Role: token.Patient}, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := token.Mint(bytes.Repeat([]byte{1}, token.KeySize), token.Claims{VisitID: "visit-1", ParticipantID: "patient-1", Role: token.Patient}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reused := mint(t, "visit-1", "patient-1", token.Patient)
	first := mustDial(t, s, "visit-1", "patient-1").listen()
	first.join(t, reused)
	first.next(t, signal.Joined)

	for _, c := range []struct {
		name, user, visit string
		first             signal.Message
		reason, code      string
	}{
		{"Forged", "patient-1", "visit-1", signal.Message{Type: signal.Join, Token: forged}, "forged", haven.EUNAUTHORIZED},
		{"OtherKey", "patient-1", "visit-1", signal.Message{Type: signal.Join, Token: otherKey}, "forged", haven.EUNAUTHORIZED},
		{"Expired", "patient-1", "visit-1", signal.Message{Type: signal.Join, Token: expired}, "expired", haven.EUNAUTHORIZED},
		{"Reused", "patient-1", "visit-1", signal.Message{Type: signal.Join, Token: reused}, "reused", haven.EUNAUTHORIZED},
		{"OtherVisit", "patient-1", "visit-2", signal.Message{Type: signal.Join, Token: mint(t, "visit-1", "patient-1", token.Patient)}, "other_visit", haven.EFORBIDDEN},
		{"OtherParticipant", "mallory", "visit-1", signal.Message{Type: signal.Join, Token: mint(t, "visit-1", "patient-1", token.Patient)}, "other_participant", haven.EFORBIDDEN},
		{"BeforeAdmission", "patient-9", "visit-1", signal.Message{Type: signal.Mute}, "no_token", haven.EINVALID},
		{"OtherPractice", "other-practice-1", "visit-1", signal.Message{Type: signal.Join, Token: mint(t, "visit-1", "other-practice-1", token.Patient)}, "not_authorized", haven.EFORBIDDEN},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := mustDial(t, s, c.visit, c.user).listen()
			b.send(t, c.first)
			if m := b.next(t, signal.Error); m.Code != c.code {
				t.Fatalf("error %+v, want code %s", m, c.code)
			}
			b.waitClosed(t)
			var found bool
			for _, e := range s.audited(video.ActionJoinRefused, c.user) {
				found = found || (e.Reason == c.reason && e.VisitID == c.visit)
			}
			if !found {
				t.Fatalf("no join_refused event with reason %q; events %+v", c.reason, s.audited(video.ActionJoinRefused, c.user))
			}
			if len(s.audited(video.ActionJoin, c.user)) != 0 && c.user != "patient-1" {
				t.Fatal("a refused participant was audited as joined")
			}
		})
	}
	if got := len(s.audited(video.ActionJoin, "patient-1")); got != 1 {
		t.Fatalf("%d joins audited for patient-1, want the first only", got)
	}
	if peers := roomPeers(t, s, "visit-1"); !slices.Equal(peers, []string{"patient-1"}) {
		t.Fatalf("seated: %v", peers)
	}
}

func roomPeers(t testing.TB, s *server, visit string) []string {
	r, err := s.sfu.Room(visit)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range r.Peers() {
		out = append(out, p.Participant)
	}
	slices.Sort(out)
	return out
}

func TestTheUpgradeRefusesOtherOriginsAndStrangers(t *testing.T) {
	s := start(t)
	for name, c := range map[string]struct {
		user, origin string
		status       int
	}{
		"OtherSite":       {"patient-1", "https://evil.example", http.StatusForbidden},
		"LookalikeSuffix": {"patient-1", s.URL + ".evil.example", http.StatusForbidden},
		"OtherScheme":     {"patient-1", strings.Replace(s.URL, "http://", "https://", 1), http.StatusForbidden},
		"NullOrigin":      {"patient-1", "null", http.StatusForbidden},
		"NotSignedIn":     {"", s.URL, http.StatusUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := dial(t, s, "visit-1", c.user, c.origin)
			var se *statusError
			if !errors.As(err, &se) || se.code != c.status {
				t.Fatalf("err = %v, want status %d", err, c.status)
			}
		})
	}
	t.Run("NoOrigin", func(t *testing.T) {
		// A WebSocket client that sends no Origin at all.
		url := s.URL + "/visits/visit-1/call"
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Test-User", "patient-1")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("BadVisitID", func(t *testing.T) {
		_, err := dial(t, s, "visit%20one", "patient-1", s.URL)
		var se *statusError
		if !errors.As(err, &se) || se.code != http.StatusNotFound {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestHostileMessagesCloseTheConnection(t *testing.T) {
	s := start(t)
	for name, payload := range map[string][]byte{
		"UnknownType":  []byte(`{"type":"record"}`),
		"UnknownField": []byte(`{"type":"mute","all":"true"}`),
		"BadJSON":      []byte(`{"type":`),
		"Oversized":    []byte(`{"type":"offer","sdp":"v=0\r\n` + strings.Repeat("a", signal.MaxMessage) + `"}`),
	} {
		t.Run(name, func(t *testing.T) {
			user := "patient-" + strings.ToLower(name)
			b := mustDial(t, s, "visit-1", user).listen()
			b.join(t, mint(t, "visit-1", user, token.Patient))
			b.next(t, signal.Joined)
			if err := b.conn.Write(context.Background(), websocket.MessageText, payload); err != nil {
				t.Fatal(err)
			}
			b.waitClosed(t)
			s.waitAudited(t, video.ActionLeave, user)
		})
	}
}

func TestAFloodOfMessagesIsCutOff(t *testing.T) {
	s := start(t, func(c *video.Config) { c.Rate, c.Burst = 1, 5 })
	b := mustDial(t, s, "visit-1", "patient-1").listen()
	b.join(t, mint(t, "visit-1", "patient-1", token.Patient))
	b.next(t, signal.Joined)
	for range 50 {
		if b.sendMsg(signal.Message{Type: signal.Mute}) != nil {
			break
		}
	}
	if m := b.next(t, signal.Error); m.Code != haven.ETOOMANY {
		t.Fatalf("error %+v", m)
	}
	b.waitClosed(t)
}

func TestSilentConnectionIsDroppedAfterTheJoinTimeout(t *testing.T) {
	s := start(t, func(c *video.Config) { c.JoinTimeout = 100 * time.Millisecond })
	b := mustDial(t, s, "visit-1", "patient-1").listen()
	b.waitClosed(t)
	if len(roomPeers(t, s, "visit-1")) != 0 {
		t.Fatal("seated without joining")
	}
}

func TestJoinThatCannotBeAuditedDoesNotHappen(t *testing.T) {
	s := start(t)
	s.failing[video.ActionJoin] = true
	b := mustDial(t, s, "visit-1", "patient-1").listen()
	b.join(t, mint(t, "visit-1", "patient-1", token.Patient))
	if m := b.next(t, signal.Error); m.Code != haven.EUNAVAILABLE {
		t.Fatalf("error %+v", m)
	}
	b.waitClosed(t)
	if len(roomPeers(t, s, "visit-1")) != 0 {
		t.Fatal("seated without an audit record")
	}
}

func TestClinicianInvitesAGuestWhoJoinsWithTheirOwnToken(t *testing.T) {
	s := start(t)
	doc := mustDial(t, s, "visit-1", "clinician-1").listen()
	doc.join(t, mint(t, "visit-1", "clinician-1", token.Clinician))
	doc.next(t, signal.Joined)
	pat := mustDial(t, s, "visit-1", "patient-1").listen()
	pat.join(t, mint(t, "visit-1", "patient-1", token.Patient))
	pat.next(t, signal.Joined)

	// A guest token alone (minted by mistake, or stolen) is not enough.
	g := mustDial(t, s, "visit-1", "interpreter-1").listen()
	g.join(t, mint(t, "visit-1", "interpreter-1", token.Guest))
	if m := g.next(t, signal.Error); m.Code != haven.EFORBIDDEN {
		t.Fatalf("uninvited guest: %+v", m)
	}
	// The patient cannot invite.
	pat.send(t, signal.Message{Type: signal.Invite, Participant: "interpreter-1"})
	if m := pat.next(t, signal.Error); m.Code != haven.EFORBIDDEN {
		t.Fatalf("patient invite: %+v", m)
	}
	doc.send(t, signal.Message{Type: signal.Invite, Participant: "interpreter-1"})
	if e := s.waitAudited(t, video.ActionInvite, "clinician-1"); e.Subject != "interpreter-1" {
		t.Fatalf("invite event %+v", e)
	}
	if !peertest.WaitFor(bound, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.invites) == 1 }) {
		t.Fatal("invite hook not called")
	}
	if s.invites[0] != "visit-1/clinician-1/interpreter-1" {
		t.Fatalf("invite hook got %q", s.invites[0])
	}
	// Another visit's guest token does not work here, nor does the
	// patient's token in the guest's hands.
	g2 := mustDial(t, s, "visit-1", "interpreter-1").listen()
	g2.join(t, mint(t, "visit-2", "interpreter-1", token.Guest))
	g2.next(t, signal.Error)
	g3 := mustDial(t, s, "visit-1", "interpreter-1").listen()
	g3.join(t, mint(t, "visit-1", "patient-1", token.Patient))
	g3.next(t, signal.Error)

	guest := mustDial(t, s, "visit-1", "interpreter-1").listen()
	guest.join(t, mint(t, "visit-1", "interpreter-1", token.Guest))
	if m := guest.next(t, signal.Joined); len(m.Peers) != 2 || m.Role != "guest" {
		t.Fatalf("guest joined: %+v", m)
	}
	for {
		m := doc.next(t, signal.PeerJoined)
		if m.Peer.Participant == "interpreter-1" {
			if m.Peer.Role != "guest" {
				t.Fatalf("peer-joined: %+v", m.Peer)
			}
			break
		}
	}
}

func TestClinicianEndsTheVisitAndNoOneGetsBackIn(t *testing.T) {
	s := start(t)
	doc := mustDial(t, s, "visit-1", "clinician-1").listen()
	doc.join(t, mint(t, "visit-1", "clinician-1", token.Clinician))
	doc.next(t, signal.Joined)
	pat := mustDial(t, s, "visit-1", "patient-1").listen()
	pat.join(t, mint(t, "visit-1", "patient-1", token.Patient))
	pat.next(t, signal.Joined)

	pat.send(t, signal.Message{Type: signal.End})
	if m := pat.next(t, signal.Error); m.Code != haven.EFORBIDDEN {
		t.Fatalf("patient end: %+v", m)
	}
	doc.send(t, signal.Message{Type: signal.End})
	pat.next(t, signal.Ended)
	pat.waitClosed(t)
	doc.waitClosed(t)
	s.waitAudited(t, video.ActionEnd, "clinician-1")
	if len(s.audited(video.ActionEnd, "patient-1")) != 0 {
		t.Fatal("the patient's attempt was audited as an end")
	}
	s.mu.Lock()
	if !slices.Equal(s.ended, []string{"visit-1/clinician-1"}) {
		t.Fatalf("visit ended in durable state by %v", s.ended)
	}
	s.mu.Unlock()

	// A fresh, valid token does not reopen an ended visit.
	again := mustDial(t, s, "visit-1", "patient-1").listen()
	again.join(t, mint(t, "visit-1", "patient-1", token.Patient))
	if m := again.next(t, signal.Error); m.Code != haven.ECONFLICT {
		t.Fatalf("rejoin after end: %+v", m)
	}
	again.waitClosed(t)
}

func TestReconnectWithAFreshTokenReplacesTheOldConnection(t *testing.T) {
	s := start(t)
	doc := mustDial(t, s, "visit-1", "clinician-1").listen()
	doc.join(t, mint(t, "visit-1", "clinician-1", token.Clinician))
	doc.next(t, signal.Joined)
	old := mustDial(t, s, "visit-1", "patient-1").listen()
	old.join(t, mint(t, "visit-1", "patient-1", token.Patient))
	old.next(t, signal.Joined)

	fresh := mustDial(t, s, "visit-1", "patient-1").listen()
	fresh.join(t, mint(t, "visit-1", "patient-1", token.Patient))
	fresh.next(t, signal.Joined)
	if m := old.next(t, signal.Error); m.Code != haven.ECONFLICT {
		t.Fatalf("old connection: %+v", m)
	}
	old.waitClosed(t)
	if !peertest.WaitFor(bound, func() bool { return len(s.audited(video.ActionJoin, "patient-1")) == 2 }) {
		t.Fatal("reconnect not audited")
	}
	if e := s.audited(video.ActionJoin, "patient-1")[1]; e.Reason != "reconnect" {
		t.Fatalf("reconnect event %+v", e)
	}
	// The replaced connection's close is not a leave.
	if len(s.audited(video.ActionLeave, "patient-1")) != 0 {
		t.Fatal("replaced connection audited as a leave")
	}
	if peers := roomPeers(t, s, "visit-1"); !slices.Equal(peers, []string{"clinician-1", "patient-1"}) {
		t.Fatalf("seated: %v", peers)
	}
}

func TestNewHandlerRefusesAnIncompleteConfiguration(t *testing.T) {
	s, _ := sfu.New(sfu.Config{LoopbackOnly: true})
	defer s.Close()
	audit := func(context.Context, video.Event) error { return nil }
	spent := token.NewMemorySpent(0, nil)
	for name, cfg := range map[string]video.Config{
		"NoSFU":     {TokenKey: key, Spent: spent, Audit: audit},
		"ShortKey":  {SFU: s, TokenKey: key[:16], Spent: spent, Audit: audit},
		"NoSpent":   {SFU: s, TokenKey: key, Audit: audit},
		"NoAudit":   {SFU: s, TokenKey: key, Spent: spent},
		"BadOrigin": {SFU: s, TokenKey: key, Spent: spent, Audit: audit, Origin: "haven.example"},
		"PathInOrg": {SFU: s, TokenKey: key, Spent: spent, Audit: audit, Origin: "https://haven.example/x"},
	} {
		if _, err := video.NewHandler(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

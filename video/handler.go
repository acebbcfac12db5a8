// Package video joins a signed-in participant to a visit's call: it owns the
// call's WebSocket endpoint, which checks the origin, waits for a join
// token, redeems it, seats the participant in the visit's SFU room and then
// relays signaling between their browser and the SFU until they leave.
//
// The media itself is package sfu's, the tokens package token's, the
// message format package signal's and the relay package turn's. This
// package is the one place they meet the web: it must never let a byte of
// client input reach the SFU without signal.Parse, nor seat anyone whose
// token did not redeem, nor carry out a join or an invitation it could not
// audit. It holds no PHI: ids, roles and session descriptions only.
package video

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"haven"
	"haven/video/livekit"
	"haven/video/sfu"
	"haven/video/signal"
	"haven/video/token"
)

// Audited actions. The lead's audit adapter maps an Event to the log's
// event (resource kind "visit", resource id VisitID).
const (
	ActionJoin        = "visit.join"         // seated (Reason "reconnect" when replacing a connection)
	ActionJoinRefused = "visit.join_refused" // token or check refused; Reason says why
	ActionLeave       = "visit.leave"        // left or disconnected
	ActionEnd         = "visit.end"          // the clinician ended the visit
	ActionInvite      = "visit.invite"       // the clinician invited Subject as a guest
	ActionCut         = "visit.cut"          // the server removed a seated participant; Reason says why
)

// Why a call was cut (the Reason of an ActionCut event).
const (
	CutSessionEnded      = "session_ended"      // the sign-in behind the connection was revoked or expired
	CutSessionChallenged = "session_challenged" // the session moved network or device and must re-authenticate
	CutVisitClosed       = "visit_closed"       // the visit was ended or cancelled elsewhere (another node): the call ends for everyone
	CutNoLongerAllowed   = "no_longer_allowed"  // the participant lost their part in the visit
	CutUnverifiable      = "unverifiable"       // the checks failed for lack of an answer, RecheckFailures times in a row
)

// Event is something the audit log must hear about.
type Event struct {
	Action        string
	VisitID       string
	ParticipantID string // the signed-in user who acted
	Role          token.Role
	Subject       string // the invitee, for ActionInvite
	Reason        string // why a join was refused, or "reconnect", "disconnected"
	TokenID       string
}

// Config wires a Handler.
type Config struct {
	// SFU is the embedded SFU; LiveKit, instead, a LiveKit server
	// (--video-engine livekit). Exactly one is set. With LiveKit, the
	// joins are decided, audited and rechecked here just the same; a
	// seated participant is handed a LiveKit token for the visit's room
	// instead of an offer, and a cut removes them from that room.
	SFU      *sfu.SFU
	LiveKit  *livekit.Engine
	TokenKey []byte      // the join-token HMAC key (token.KeySize bytes)
	Spent    token.Spent // where spent token ids are remembered

	// Origin is the server's own origin ("https://haven.example"). The
	// upgrade refuses any other Origin, and a request without one: a page
	// on another site must not open a call with the user's cookies. When
	// empty, the origin is the request's own scheme and Host.
	Origin string

	// Participant returns the signed-in user making r; default: the user
	// id of the haven.Actor in r's context. Empty means not signed in.
	Participant func(r *http.Request) string
	// VisitID returns the visit r is for; default: r.PathValue("visit").
	VisitID func(r *http.Request) string

	// Authorize, if set, is asked after the token redeems and before the
	// participant is seated: is the visit still in call, is this user of
	// the visit's practice, is the clinician still on the care team. An
	// error refuses the join and is audited.
	Authorize func(ctx context.Context, c token.Claims) error
	// ICEServers, if set, returns the TURN servers (with fresh credentials)
	// for the participant's browser.
	ICEServers func(ctx context.Context, c token.Claims) ([]signal.ICEServer, error)
	// Invite, if set, is called when the clinician invites guestID, after
	// the invitation is audited and recorded in the room: it mints the
	// guest's join token and delivers it.
	Invite func(ctx context.Context, visitID, clinicianID, guestID string) error
	// EndVisit, if set, is called when the clinician ends the visit from
	// the call, before the room closes: it moves the visit to ended in
	// durable state, so no new token is minted for it after a restart.
	// The room closes even if it fails (taking access away never waits).
	EndVisit func(ctx context.Context, visitID, clinicianID string) error
	// Names, if set, returns the display names the participant c may
	// see in the call, keyed by participant id: the names the call page
	// shows on the embedded SFU, after the same checks (ctx carries the
	// signed-in actor). Used only with LiveKit, where the page knows the
	// others by pseudonym: the session sends them to the admitted
	// participant keyed by LiveKit identity (signal.Names), and never to
	// LiveKit.
	Names func(ctx context.Context, c token.Claims) (map[string]string, error)
	// Audit records an event durably. Joins and invitations that cannot
	// be audited are refused; leaves, ends, cuts and refusals happen
	// anyway (they only take access away) and the audit error is dropped.
	Audit func(ctx context.Context, e Event) error

	// Recheck, if set, is asked every RecheckEvery while the participant
	// is seated, with the upgrade request r (its session cookie, its
	// client) and ctx carrying the actor: is the sign-in that opened this
	// connection still live, and is the visit still open to them? A join
	// is decided once, but a call lasts; without this a session revoked
	// mid-call (signed out elsewhere, disabled by an admin, revoke-all
	// after a password change) would keep its camera and microphone in
	// the room until the participant hung up. An error cuts the call:
	// code EUNAUTHORIZED (session revoked or expired), ESTEPUP (session
	// challenged), EFORBIDDEN or ENOTFOUND (no longer allowed) at once;
	// ECONFLICT means the visit itself is no longer in call (ended or
	// cancelled where this node did not see it) and ends the call for
	// everyone, as the end would have on the node that saw it. Any other
	// error (no answer: the database is down) cuts only after
	// RecheckFailures in a row, so a blip does not drop a consultation but
	// an outage does not leave a call unchecked.
	Recheck func(ctx context.Context, r *http.Request, c token.Claims) error
	// RecheckEvery is how often Recheck runs (default 20s): the longest a
	// revoked session stays in a call.
	RecheckEvery time.Duration

	// JoinTimeout is how long a new connection may take to send its join
	// message (default 10s).
	JoinTimeout time.Duration
	// Rate and Burst limit messages per connection (signal defaults).
	Rate  float64
	Burst int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// DefaultRecheckEvery is Config.RecheckEvery's default: a revoked session
// is out of the call within this, at the cost of one session lookup per
// participant per period.
const DefaultRecheckEvery = 20 * time.Second

// RecheckFailures is how many checks in a row may go unanswered before the
// call is cut anyway (about a minute at the default period).
const RecheckFailures = 3

// Handler is the call's WebSocket endpoint. Mount it at a GET route with a
// {visit} path value, behind the session middleware.
type Handler struct{ cfg Config }

// NewHandler checks cfg and returns a Handler.
func NewHandler(cfg Config) (*Handler, error) {
	switch {
	case (cfg.SFU == nil) == (cfg.LiveKit == nil):
		return nil, haven.Errorf(haven.EINVALID, "video handler needs an SFU or LiveKit, not both")
	case len(cfg.TokenKey) != token.KeySize:
		return nil, haven.Errorf(haven.EINVALID, "video handler needs a %d-byte join token key", token.KeySize)
	case cfg.Spent == nil:
		return nil, haven.Errorf(haven.EINVALID, "video handler needs a spent-token store")
	case cfg.Audit == nil:
		return nil, haven.Errorf(haven.EINVALID, "video handler needs an audit sink")
	}
	if cfg.Origin != "" {
		u, err := url.Parse(cfg.Origin)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.Path != "" {
			return nil, haven.Errorf(haven.EINVALID, "video origin must be scheme://host[:port]")
		}
	}
	if cfg.Participant == nil {
		cfg.Participant = func(r *http.Request) string {
			a, _ := haven.ActorFromContext(r.Context())
			return a.UserID
		}
	}
	if cfg.VisitID == nil {
		cfg.VisitID = func(r *http.Request) string { return r.PathValue("visit") }
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RecheckEvery <= 0 {
		cfg.RecheckEvery = DefaultRecheckEvery
	}
	return &Handler{cfg: cfg}, nil
}

// ServeHTTP upgrades the request and runs the participant's signaling.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	participant := h.cfg.Participant(r)
	if participant == "" {
		http.Error(w, "Sign in first.", http.StatusUnauthorized)
		return
	}
	visitID := h.cfg.VisitID(r)
	if !haven.PlausibleID(visitID) {
		http.Error(w, "Not found.", http.StatusNotFound)
		return
	}
	if !h.sameOrigin(r) {
		http.Error(w, "Forbidden.", http.StatusForbidden)
		return
	}
	// A call outlives any write or read timeout the web server sets for
	// ordinary requests; the pinger below finds dead connections instead.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// The origin was checked above, exactly, and a missing Origin
		// refused; the library's check would let a missing one through.
		InsecureSkipVerify: true,
		// Compression over a channel that carries secrets (tokens) next
		// to attacker-influenced data invites CRIME-style guessing.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return
	}
	conn.SetReadLimit(signal.MaxMessage)
	// The request context carries the actor for the audit hook; it must
	// outlive nothing but this handler.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	s := &session{h: h, r: r, conn: conn, visitID: visitID, participant: participant,
		out: make(chan []byte, 64), done: make(chan struct{}), written: make(chan struct{}), limiter: signal.NewLimiter(h.cfg.Rate, h.cfg.Burst)}
	go s.write(ctx)
	s.run(ctx)
	s.Close()
	<-s.written
}

// sameOrigin reports whether r's Origin is exactly the server's own.
func (h *Handler) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	want := h.cfg.Origin
	if want == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		want = scheme + "://" + r.Host
	}
	return strings.EqualFold(origin, want)
}

// session is one WebSocket connection: first the join, then the call.
type session struct {
	h           *Handler
	r           *http.Request // the upgrade, for Recheck
	conn        *websocket.Conn
	visitID     string
	participant string
	limiter     *signal.Limiter

	claims token.Claims
	p      *sfu.Participant
	grant  livekit.Grant // with LiveKit: the token this connection handed out
	leftMu sync.Mutex
	left   bool // with LiveKit: the seat was taken back

	out     chan []byte
	done    chan struct{}
	once    sync.Once
	written chan struct{}
}

// Send implements sfu.Sender. It never blocks: a browser that does not
// read its messages fills the buffer and loses its connection.
func (s *session) Send(m signal.Message) error {
	b, err := signal.Encode(m)
	if err != nil {
		return err
	}
	select {
	case <-s.done:
		return errors.New("video: connection closed")
	default:
	}
	select {
	case s.out <- b:
		return nil
	default:
		s.Close()
		return errors.New("video: client too slow")
	}
}

// Close implements sfu.Sender: queued messages are written, then the
// connection closes.
func (s *session) Close() { s.once.Do(func() { close(s.done) }) }

func (s *session) sendError(err error) {
	_ = s.Send(signal.Message{Type: signal.Error, Code: haven.ErrorCode(err), Text: haven.ErrorMessage(err)})
}

const (
	writeTimeout = 10 * time.Second
	pingInterval = 20 * time.Second
)

// write sends queued messages and pings, and closes the connection when
// the session is done.
func (s *session) write(ctx context.Context) {
	defer close(s.written)
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	send := func(b []byte) bool {
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		return s.conn.Write(wctx, websocket.MessageText, b) == nil
	}
	for {
		select {
		case b := <-s.out:
			if !send(b) {
				s.Close()
				_ = s.conn.CloseNow()
				return
			}
		case <-ping.C:
			go func() {
				pctx, cancel := context.WithTimeout(ctx, writeTimeout)
				defer cancel()
				if s.conn.Ping(pctx) != nil {
					s.Close()
				}
			}()
		case <-s.done:
			for {
				select {
				case b := <-s.out:
					if !send(b) {
						_ = s.conn.CloseNow()
						return
					}
				default:
					_ = s.conn.Close(websocket.StatusNormalClosure, "")
					return
				}
			}
		}
	}
}

// Package livekit runs a visit's call on a LiveKit server instead of the
// embedded SFU (video/sfu): it owns Haven's side of that server's API —
// the room created when a visit is admitted, the access token each
// participant is handed once Haven has admitted them, the participant
// removed when a recheck cuts them, the room deleted when the visit closes.
//
// LiveKit is an outside system (a business associate, registered in the
// vendor registry): every call to it first asks Config.Allow, which the
// server wires to the registry's egress gate, so a LiveKit without a
// current agreement gets no room and no participant.
//
// LiveKit never learns who anyone is: room names and identities are
// keyed pseudonyms of the visit and user ids (HMAC under a key derived
// from the API secret, so every node of one deployment derives the same),
// tokens carry no name or metadata, and media stays sealed by the
// browsers' end-to-end encryption.
package livekit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/livekit/protocol/auth"
	lkp "github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"

	"haven"
	"haven/video/token"
)

// DefaultTokenTTL is how long a participant's LiveKit token may be used
// to connect. The page uses it at once; LiveKit checks it only when a
// connection opens, and Haven's recheck, not the token, bounds a call.
const DefaultTokenTTL = 2 * time.Minute

// MaxParticipants bounds a room, as the embedded SFU's default does:
// patient, clinician and up to two guests.
const MaxParticipants = 4

// emptyTimeout is how long LiveKit keeps a room no one has joined yet or
// everyone has left; Haven deletes a visit's room when the visit closes.
const emptyTimeout = 30 * 60 // seconds

// Config wires an Engine.
type Config struct {
	URL       string // the LiveKit server's URL: wss:// (ws:// for a server on this machine) or https://
	APIKey    string
	APISecret string
	// Allow is asked before every request to LiveKit (the vendor
	// registry's egress gate). Required: an Engine that could reach an
	// outside system without asking the registry is refused.
	Allow func(ctx context.Context) error
	// TokenTTL is how long a minted token is valid (DefaultTokenTTL).
	TokenTTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Engine is the LiveKit side of Haven's calls.
type Engine struct {
	cfg    Config
	rooms  lkp.RoomService // LiveKit's server API (twirp), each call authorized by a one-minute admin token
	pseudo []byte          // the pseudonym key

	mu   sync.Mutex
	gens map[string]uint64 // room/identity -> the latest grant's number on this node
	next uint64
}

// New checks cfg and returns an Engine. It does not contact the server.
func New(cfg Config) (*Engine, error) {
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil || u.Host == "" || u.Path != "" && u.Path != "/":
		return nil, haven.Errorf(haven.EINVALID, "the LiveKit URL must be wss://host[:port] or https://host[:port]")
	case u.Scheme != "wss" && u.Scheme != "https" && !((u.Scheme == "ws" || u.Scheme == "http") && loopback(u.Hostname())):
		return nil, haven.Errorf(haven.EINVALID, "the LiveKit URL must use wss:// or https:// (ws:// only for a server on this machine)")
	case cfg.APIKey == "" || strings.ContainsAny(cfg.APIKey, " \t\r\n"):
		return nil, haven.Errorf(haven.EINVALID, "LiveKit needs its API key")
	case len(cfg.APISecret) < 32:
		return nil, haven.Errorf(haven.EINVALID, "LiveKit's API secret must be at least 32 characters")
	case cfg.Allow == nil:
		return nil, haven.Errorf(haven.EINVALID, "LiveKit must be checked against the vendor registry")
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	api := *u
	switch api.Scheme {
	case "wss":
		api.Scheme = "https"
	case "ws":
		api.Scheme = "http"
	}
	m := hmac.New(sha256.New, []byte(cfg.APISecret))
	m.Write([]byte("haven livekit pseudonyms v1"))
	return &Engine{cfg: cfg, rooms: lkp.NewRoomServiceProtobufClient(api.String(), &http.Client{Timeout: 10 * time.Second}),
		pseudo: m.Sum(nil), gens: map[string]uint64{}}, nil
}

// admin authorizes one server API request: a token valid for a minute,
// granting only what that request needs, in the request's header.
func (e *Engine) admin(ctx context.Context, g auth.VideoGrant) (context.Context, error) {
	jwt, err := auth.NewAccessToken(e.cfg.APIKey, e.cfg.APISecret).SetVideoGrant(&g).SetValidFor(time.Minute).ToJWT()
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+jwt)
	return twirp.WithHTTPRequestHeaders(ctx, h)
}

func loopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// URL is the server's URL, for the browser.
func (e *Engine) URL() string {
	u, _ := url.Parse(e.cfg.URL)
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	case "http":
		u.Scheme = "ws"
	}
	return u.String()
}

// Origin is the server's origin as a page's Content-Security-Policy
// names it (wss://host[:port]), for connect-src.
func (e *Engine) Origin() string {
	u, _ := url.Parse(e.URL())
	return u.Scheme + "://" + u.Host
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func (e *Engine) name(kind, id string) string {
	m := hmac.New(sha256.New, e.pseudo)
	m.Write([]byte(kind + "\x00" + id))
	return kind + "_" + strings.ToLower(b32.EncodeToString(m.Sum(nil)[:20]))
}

// Room is the LiveKit room name of visitID: a pseudonym, the same on
// every node.
func (e *Engine) Room(visitID string) string { return e.name("v", visitID) }

// Identity is participantID's LiveKit identity in visitID's room: a
// pseudonym per visit, so rooms cannot be linked by who was in them.
func (e *Engine) Identity(visitID, participantID string) string {
	return e.name("p", visitID+"\x00"+participantID)
}

// CreateRoom creates visitID's room (done at admission; creating a room
// that exists changes nothing).
func (e *Engine) CreateRoom(ctx context.Context, visitID string) error {
	if err := e.cfg.Allow(ctx); err != nil {
		return err
	}
	ctx, err := e.admin(ctx, auth.VideoGrant{RoomCreate: true})
	if err != nil {
		return err
	}
	_, err = e.rooms.CreateRoom(ctx, &lkp.CreateRoomRequest{Name: e.Room(visitID), EmptyTimeout: emptyTimeout,
		DepartureTimeout: 20, MaxParticipants: MaxParticipants})
	return e.wrap(err, "cannot create the call's room")
}

// Grant is what the browser needs to join the room: where, and with what.
type Grant struct {
	URL      string
	Token    string
	Room     string
	Identity string
	Expires  time.Time
	gen      uint64
}

// Token mints c's LiveKit access token for visitID's room, after the
// caller has done every check a join needs (the join token redeemed, the
// visit in call, the participant allowed). It grants joining that one
// room as that one identity, publishing and subscribing, and nothing
// else: no room creation, listing, administration or recording. The room
// is created first if it does not exist (an admission on a node that
// could not reach LiveKit then).
func (e *Engine) Token(ctx context.Context, visitID string, c token.Claims) (Grant, error) {
	if c.VisitID != visitID || !haven.PlausibleID(visitID) || !haven.PlausibleID(c.ParticipantID) {
		return Grant{}, haven.Errorf(haven.EFORBIDDEN, "this join is not for this visit")
	}
	if err := e.CreateRoom(ctx, visitID); err != nil {
		return Grant{}, err
	}
	room, identity := e.Room(visitID), e.Identity(visitID, c.ParticipantID)
	f := false
	at := auth.NewAccessToken(e.cfg.APIKey, e.cfg.APISecret).
		SetIdentity(identity).
		SetValidFor(e.cfg.TokenTTL).
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: room, CanSubscribe: ptr(true), CanPublish: ptr(true),
			CanPublishData: ptr(true), CanUpdateOwnMetadata: &f})
	jwt, err := at.ToJWT()
	if err != nil {
		return Grant{}, err
	}
	e.mu.Lock()
	e.next++
	gen := e.next
	e.gens[room+"/"+identity] = gen
	e.mu.Unlock()
	return Grant{URL: e.URL(), Token: jwt, Room: room, Identity: identity, Expires: e.cfg.Now().Add(e.cfg.TokenTTL), gen: gen}, nil
}

func ptr[T any](v T) *T { return &v }

// Remove takes c's participant out of visitID's room (a recheck cut
// them, or they left Haven's call channel): their media stops and the
// others see them go. Someone not in the room is already out.
//
// It does not ask the registry first: taking access away never waits.
func (e *Engine) Remove(ctx context.Context, visitID, participantID string) error {
	room := e.Room(visitID)
	ctx, err := e.admin(ctx, auth.VideoGrant{RoomAdmin: true, Room: room})
	if err != nil {
		return err
	}
	_, err = e.rooms.RemoveParticipant(ctx, &lkp.RoomParticipantIdentity{Room: room, Identity: e.Identity(visitID, participantID)})
	if notFound(err) {
		return nil
	}
	return e.wrap(err, "cannot remove the participant from the call")
}

// Release removes the participant g was minted for when they leave
// Haven's call channel, unless a newer grant for the same identity has
// been minted on this node since (they reconnected: the new connection
// stays).
func (e *Engine) Release(ctx context.Context, visitID, participantID string, g Grant) error {
	e.mu.Lock()
	key := g.Room + "/" + g.Identity
	latest := e.gens[key] == g.gen
	if latest {
		delete(e.gens, key)
	}
	e.mu.Unlock()
	if !latest {
		return nil
	}
	return e.Remove(ctx, visitID, participantID)
}

// Close deletes visitID's room: everyone in it is disconnected, and a
// token minted before cannot join it (the server creates no rooms; Haven
// creates one again only for a visit in call).
// Like Remove it does not wait for the registry.
func (e *Engine) Close(ctx context.Context, visitID string) error {
	ctx, err := e.admin(ctx, auth.VideoGrant{RoomCreate: true})
	if err != nil {
		return err
	}
	_, err = e.rooms.DeleteRoom(ctx, &lkp.DeleteRoomRequest{Room: e.Room(visitID)})
	if notFound(err) {
		return nil
	}
	return e.wrap(err, "cannot close the call's room")
}

func notFound(err error) bool {
	var te twirp.Error
	return errors.As(err, &te) && te.Code() == twirp.NotFound
}

func (e *Engine) wrap(err error, msg string) error {
	if err == nil {
		return nil
	}
	if haven.ErrorCode(err) != haven.EINTERNAL {
		return err // the registry's refusal, as it said it
	}
	return haven.Wrap(haven.EUNAVAILABLE, err, msg)
}

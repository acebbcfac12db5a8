// Package signal owns the vocabulary of a video call's signaling channel:
// the JSON messages a participant's browser and the server exchange over
// the call's WebSocket, a strict parser for what clients send, and a
// per-connection rate limiter.
//
// Every byte a client sends is hostile until this package has accepted it:
// messages are size-capped, must be one JSON object of a known type carrying
// exactly that type's fields (no unknown or duplicate keys, no nesting beyond
// the ICE candidate), and SDP, candidates and ids are capped and checked for
// shape. Error messages are fixed strings and never echo the input.
//
// End-to-end encryption: browsers agree media keys among themselves over
// this channel. The server relays public keys (PublicKey, shown to the
// others as Peer.Key) and media keys sealed for one recipient (WrapKey); it
// can open neither, so it forwards media it cannot decrypt. It could still
// swap public keys (a man in the middle), which the safety code the pages
// show from everyone's public keys exposes when read aloud.
//
// This package never touches media, tokens or the network; it carries no
// PHI (ids, session descriptions, public keys and sealed keys only), but
// for one message: on LiveKit, where a participant is known only by a
// pseudonym, Names tells an admitted participant the names their call
// page shows anyway, keyed by the others' pseudonyms.
package signal

import (
	"encoding/json"

	"golang.org/x/time/rate"

	"haven"
)

// Type names a signaling message.
type Type string

// What a client may send.
const (
	Join        Type = "join"      // {token}: the first message, and only then
	Offer       Type = "offer"     // {sdp}: client-initiated renegotiation
	Answer      Type = "answer"    // {sdp}: the answer to the server's offer
	Candidate   Type = "candidate" // {candidate}: a trickled ICE candidate
	Mute        Type = "mute"      // the microphone is off; the server stops forwarding audio
	Unmute      Type = "unmute"
	CameraOff   Type = "camera-off" // the camera is off; the server stops forwarding it
	CameraOn    Type = "camera-on"
	ScreenStart Type = "screen-start" // asks for a slot to publish a screen
	ScreenStop  Type = "screen-stop"
	Leave       Type = "leave"
	End         Type = "end"    // clinician only: ends the visit for everyone
	Invite      Type = "invite" // clinician only: {participant} may join as a guest
	// End-to-end encryption of media (see KeySize and MaxWrappedKey).
	PublicKey Type = "e2ee-key"  // {key}: the sender's ECDH public key; the server shows it to the others in Peer.Key
	WrapKey   Type = "e2ee-wrap" // {participant, key}: a media key sealed for one other participant; the server relays it, naming the sender
)

// What the server sends (besides Offer, Answer and Candidate).
const (
	Joined     Type = "joined"      // {participant, role, peers, ice_servers}
	PeerJoined Type = "peer-joined" // {peer}
	PeerLeft   Type = "peer-left"   // {participant}
	State      Type = "state"       // {peer}: a participant muted, turned a camera off, shares a screen
	Ended      Type = "ended"       // the visit is over; the server closes the connection
	Error      Type = "error"       // {code, message}
	// LiveKit tells the page to meet the others on LiveKit instead of
	// this SFU (the server runs --video-engine livekit): {url, token,
	// participant (its LiveKit identity), role}. The connection stays
	// open: leave, end and invite go on over it, and so do the checks
	// that cut a participant.
	LiveKit Type = "livekit"
	// Names (on LiveKit) tells the page the others' display names keyed
	// by their LiveKit identities: {names}. It follows LiveKit, and
	// answers a page's Names (no fields) when someone it cannot name
	// arrives (a guest invited since). LiveKit itself never sees a name.
	Names Type = "names"
)

// Limits on what a client may send. A browser's offer with audio, video
// and a screen is a few KiB; these leave room for that and little else.
const (
	MaxMessage          = 64 << 10
	MaxSDP              = 32 << 10
	MaxCandidate        = 1024
	MaxToken            = 512
	MaxIDLength         = haven.MaxIDLength
	maxMid              = 32
	maxUsernameFragment = 256

	// PublicKeySize is the length of a participant's public key in a
	// PublicKey message: an uncompressed P-256 point (65 bytes) in
	// unpadded base64url.
	PublicKeySize = 87
	// MaxWrappedKey caps a WrapKey message's sealed media key (unpadded
	// base64url): a nonce, a key id, a 32-byte secret and a tag fit well
	// within it.
	MaxWrappedKey = 256
)

// Message is one signaling message, in either direction. Only the fields of
// its Type are set.
type Message struct {
	Type        Type          `json:"type"`
	Token       string        `json:"token,omitempty"`
	SDP         string        `json:"sdp,omitempty"`
	Candidate   *ICECandidate `json:"candidate,omitempty"`
	Participant string        `json:"participant,omitempty"`
	Role        string        `json:"role,omitempty"`
	Peer        *Peer         `json:"peer,omitempty"`
	Peers       []Peer        `json:"peers,omitempty"`
	ICEServers  []ICEServer   `json:"ice_servers,omitempty"`
	Key         string        `json:"key,omitempty"` // a public key (PublicKey) or a sealed media key (WrapKey)
	URL         string        `json:"url,omitempty"` // the LiveKit server (LiveKit)
	// Names are display names by LiveKit identity (Names, from the server).
	Names map[string]string `json:"names,omitempty"`
	Code  string            `json:"code,omitempty"`
	Text  string            `json:"message,omitempty"`
}

// ICECandidate is a trickled candidate, shaped like the browser's
// RTCIceCandidateInit. An empty Candidate string means end of candidates.
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Peer is another participant as the others see them: an id (never a
// name: names are PHI and the page already knows whom it is calling), a
// role and what they are sending.
type Peer struct {
	Participant string `json:"participant"`
	Role        string `json:"role"`
	Audio       bool   `json:"audio"`
	Video       bool   `json:"video"`
	Screen      bool   `json:"screen"`
	// Key is the participant's public key for end-to-end encryption, once
	// their browser has sent one.
	Key string `json:"key,omitempty"`
}

// ICEServer is a STUN or TURN server for the browser's RTCPeerConnection,
// with short-lived credentials.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Encode returns m as JSON, for sending.
func Encode(m Message) ([]byte, error) { return json.Marshal(m) }

// Default rate: a burst covers a join, an answer and a volley of trickled
// candidates; the sustained rate is far above what a person clicking mute
// produces and far below what would make the SFU renegotiate in a loop.
const (
	DefaultRate  = 20 // messages per second
	DefaultBurst = 60
)

// Limiter is a per-connection token bucket. One connection that floods the
// server with offers or candidates would otherwise make the SFU spend CPU
// on renegotiation for everyone in the room.
type Limiter struct{ l *rate.Limiter }

// NewLimiter returns a limiter allowing perSecond messages with bursts of
// burst (DefaultRate and DefaultBurst when either is <= 0).
func NewLimiter(perSecond float64, burst int) *Limiter {
	if perSecond <= 0 || burst <= 0 {
		perSecond, burst = DefaultRate, DefaultBurst
	}
	return &Limiter{l: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// Allow reports whether one more message may be handled now.
func (l *Limiter) Allow() bool { return l.l.Allow() }

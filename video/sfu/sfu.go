// Package sfu owns the media of video visits: a selective forwarding unit
// embedded in the haven process. Each visit has a Room; each participant has
// one WebRTC PeerConnection to the SFU; every audio, camera and screen track
// a participant publishes is forwarded, packet by packet, to every other
// participant in the same room and to no one else.
//
// Media stays encrypted on the wire (DTLS-SRTP, mandatory in WebRTC); the
// SFU decrypts and re-encrypts each packet in memory to forward it. It
// must never write media anywhere: there is no recording, no buffering to
// disk, no tap. A room's tracks are reachable only through that room.
//
// The SFU trusts nothing a client says about identity. Stream ids (which
// the browser uses to tell whose video is whose) and track ids are chosen
// here from the participant's authenticated id, never copied from the
// client's SDP; mute and camera-off are enforced by the SFU, which stops
// forwarding, rather than left to the sender's browser.
//
// Who may join is decided before this package is called: by a join token
// (package token) and the caller's checks. This package enforces only what
// a room itself knows: a guest needs the clinician's invitation, an ended
// visit stays ended, a room has a bounded number of seats.
package sfu

import (
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"haven"
	"haven/video/signal"
)

// Config configures an SFU.
type Config struct {
	// ICEServers are for the SFU's own peer connections; normally none,
	// since the SFU has a reachable address and browsers bring TURN.
	ICEServers []webrtc.ICEServer
	// UDPPortMin and UDPPortMax bound the ports ICE uses, for a firewall
	// rule; both zero means any ephemeral port.
	UDPPortMin, UDPPortMax uint16
	// PublicIPs, when the host is behind a 1:1 NAT, are announced in place
	// of its private addresses.
	PublicIPs []string
	// LoopbackOnly gathers candidates on loopback only: tests and
	// benchmarks, which must not touch the network.
	LoopbackOnly bool
	// MaxParticipants bounds a room's seats (default 4: patient,
	// clinician, one guest, and one seat for a reconnect in flight).
	MaxParticipants int
	// KeyframeInterval is the least time between keyframe requests the SFU
	// forwards to one publisher (default 500ms). A subscriber cannot make
	// a publisher's encoder spend its bandwidth on keyframes.
	KeyframeInterval time.Duration
	// NegotiationTimeout bounds ICE gathering for one offer (default 5s).
	NegotiationTimeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// SFU holds the rooms of the visits in call on this process.
type SFU struct {
	cfg Config
	api *webrtc.API

	mu     sync.Mutex
	rooms  map[string]*Room
	ended  map[string]time.Time // visit id -> when it ended
	closed bool
}

// endedMemory is how long the SFU remembers that a visit ended, refusing
// late joins. It outlives every join token (token.MaxTTL); the visit's
// durable state, checked by the caller before joining, covers the rest.
const endedMemory = time.Hour

// New returns an SFU.
func New(cfg Config) (*SFU, error) {
	if cfg.MaxParticipants <= 0 {
		cfg.MaxParticipants = 4
	}
	if cfg.KeyframeInterval <= 0 {
		cfg.KeyframeInterval = 500 * time.Millisecond
	}
	if cfg.NegotiationTimeout <= 0 {
		cfg.NegotiationTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	api, err := NewAPI(cfg)
	if err != nil {
		return nil, err
	}
	return &SFU{cfg: cfg, api: api, rooms: map[string]*Room{}, ended: map[string]time.Time{}}, nil
}

// NewAPI returns the pion API the SFU builds its peer connections with:
// default codecs and interceptors (NACK, RTCP reports, TWCC), UDP over
// IPv4, no mDNS, and the port range, public IPs and loopback restriction
// of cfg. Tests use it for their client peer connections too, so both ends
// speak the same.
func NewAPI(cfg Config) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "media codecs")
	}
	ir := &interceptor.Registry{}
	if err := registerInterceptors(m, ir); err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "media interceptors")
	}
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	// mDNS would have the server send multicast on its network; it needs
	// none, since browsers reach it through its announced candidates.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if cfg.UDPPortMin != 0 || cfg.UDPPortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, haven.Wrap(haven.EINVALID, err, "SFU UDP port range")
		}
	}
	if len(cfg.PublicIPs) > 0 {
		se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	if cfg.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// registerInterceptors is pion's default set (NACK, RTCP reports, stats,
// transport-wide congestion control) with the MID header extension but
// without the simulcast stream-id extensions. Haven forwards one encoding
// per track and never negotiates simulcast; with the stream-id extensions
// registered, pion probes a stream that arrives before its SDP answer (a
// browser sends a new screen track as soon as it has answered the SFU's
// offer) by reading packets on a second goroutine while the receiver
// started by the answer reads the same stream: a data race inside pion,
// and packets lost to the probe. Without them pion sets such early media
// aside until the answer declares its SSRC.
func registerInterceptors(m *webrtc.MediaEngine, ir *interceptor.Registry) error {
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		return err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return err
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.SDESMidURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return err
	}
	if err := webrtc.ConfigureStatsInterceptor(ir); err != nil {
		return err
	}
	return webrtc.ConfigureTWCCSender(m, ir)
}

// Room returns the room of visitID, opening it if needed. It refuses a
// visit that ended (haven.ECONFLICT) and any room once the SFU is closed.
func (s *SFU) Room(visitID string) (*Room, error) {
	if !haven.PlausibleID(visitID) {
		return nil, haven.Errorf(haven.EINVALID, "visit id is not valid")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, haven.Errorf(haven.EUNAVAILABLE, "video is shutting down")
	}
	if _, ok := s.ended[visitID]; ok {
		return nil, haven.Errorf(haven.ECONFLICT, "the visit has ended")
	}
	r := s.rooms[visitID]
	if r == nil || r.isGone() {
		r = newRoom(s, visitID)
		s.rooms[visitID] = r
	}
	return r, nil
}

// Join seats j in visitID's room (see Room.Join), opening the room if
// needed. Unlike Room.Join it never seats anyone in a room that emptied
// and was dropped while they were joining.
func (s *SFU) Join(visitID string, j JoinRequest) (p *Participant, replaced bool, err error) {
	for range 3 {
		var r *Room
		if r, err = s.Room(visitID); err != nil {
			return nil, false, err
		}
		p, replaced, err = r.Join(j)
		if err != errGone {
			return p, replaced, err
		}
	}
	return nil, false, err
}

// End ends visitID's call, if it is open, and refuses it from now on (for
// a visit cancelled or ended outside the call page).
func (s *SFU) End(visitID string) {
	s.mu.Lock()
	r := s.rooms[visitID]
	s.markEnded(visitID)
	s.mu.Unlock()
	if r != nil {
		r.end()
	}
}

// markEnded records visitID as ended; s.mu is held.
func (s *SFU) markEnded(visitID string) {
	now := s.cfg.Now()
	for id, at := range s.ended {
		if now.Sub(at) > endedMemory {
			delete(s.ended, id)
		}
	}
	s.ended[visitID] = now
	delete(s.rooms, visitID)
}

// dropRoom forgets r once it is empty, so an idle visit holds nothing.
func (s *SFU) dropRoom(r *Room) {
	s.mu.Lock()
	if s.rooms[r.visitID] == r {
		delete(s.rooms, r.visitID)
	}
	s.mu.Unlock()
}

// Rooms returns how many rooms are open.
func (s *SFU) Rooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// Close ends every room (without marking the visits ended: a restarted
// process may carry them on) and refuses new ones.
func (s *SFU) Close() error {
	s.mu.Lock()
	s.closed = true
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.rooms = map[string]*Room{}
	s.mu.Unlock()
	for _, r := range rooms {
		r.closeAll(signal.Message{Type: signal.Error, Code: haven.EUNAVAILABLE, Text: "The video service is restarting; rejoin in a moment."})
	}
	return nil
}

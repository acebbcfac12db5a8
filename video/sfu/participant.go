package sfu

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"haven"
	"haven/video/signal"
	"haven/video/token"
)

const (
	// maxMediaSections bounds the m= lines of a client's offer: audio,
	// camera, screen and the tracks of two others fit with room to spare;
	// hundreds would make the SFU allocate for each.
	maxMediaSections = 16
	// maxPendingCandidates bounds candidates held until a remote
	// description arrives.
	maxPendingCandidates = 64
)

// Participant is one person's connection to a room.
type Participant struct {
	ID   string
	Role token.Role

	room *Room
	sig  Sender
	pc   *webrtc.PeerConnection

	// What the participant sends. The SFU forwards a kind only while it is
	// on, so "mute" holds even if the browser keeps sending.
	audio, video, screen atomic.Bool
	screenRecv           atomic.Pointer[webrtc.RTPReceiver]
	// publicKey is the participant's end-to-end encryption public key, as
	// their browser announced it (signal.PublicKey); set once per
	// connection.
	publicKey atomic.Pointer[string]

	closed    atomic.Bool
	closeOnce sync.Once

	// negMu serialises offer/answer with this participant: one offer is
	// outstanding at a time, and changes that arrive meanwhile set again.
	negMu    sync.Mutex
	offered  bool
	again    bool
	senders  map[string]*webrtc.RTPSender // by forward id
	screenTr *webrtc.RTPTransceiver

	candMu     sync.Mutex
	haveRemote bool
	pending    []webrtc.ICECandidateInit

	pubMu     sync.Mutex
	published map[string]bool // kinds with a live forward
}

func newParticipant(r *Room, j JoinRequest) (*Participant, error) {
	pc, err := r.sfu.api.NewPeerConnection(webrtc.Configuration{ICEServers: r.sfu.cfg.ICEServers})
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "cannot open a media connection")
	}
	p := &Participant{
		ID: j.ParticipantID, Role: j.Role, room: r, sig: j.Signal, pc: pc,
		senders: map[string]*webrtc.RTPSender{}, published: map[string]bool{},
	}
	p.audio.Store(true)
	p.video.Store(true)
	// One slot each for the participant's microphone and camera. A screen
	// gets its own slot on request (StartScreen).
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			pc.Close()
			return nil, haven.Wrap(haven.EINTERNAL, err, "cannot open a media connection")
		}
	}
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			p.requestKeyframes()
		}
	})
	return p, nil
}

// Room is the room the participant is seated in.
func (p *Participant) Room() *Room { return p.room }

// Answer applies the participant's answer to the SFU's outstanding offer.
func (p *Participant) Answer(sdp string) error {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.isClosed() {
		return haven.Errorf(haven.ECONFLICT, "you have left the call")
	}
	if p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return haven.Errorf(haven.EINVALID, "no offer is awaiting an answer")
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return haven.Wrap(haven.EINVALID, err, "the answer was refused")
	}
	p.flushCandidates()
	// New subscriptions are bound now; their publishers should send a
	// keyframe so the new picture appears without waiting for the next one.
	p.requestKeyframesLocked()
	if p.again {
		p.again = false
		p.negotiateLocked(true)
	}
	return nil
}

// Offer answers an offer the participant made (to add a track, say). It
// refuses one that crosses an offer of the SFU's (ECONFLICT): the client
// should answer the SFU's offer first.
func (p *Participant) Offer(sdp string) error {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.isClosed() {
		return haven.Errorf(haven.ECONFLICT, "you have left the call")
	}
	if p.pc.SignalingState() != webrtc.SignalingStateStable {
		return haven.Errorf(haven.ECONFLICT, "an offer from the server is awaiting your answer")
	}
	if strings.Count(sdp, "\nm=") > maxMediaSections {
		return haven.Errorf(haven.EINVALID, "too many media sections")
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return haven.Wrap(haven.EINVALID, err, "the offer was refused")
	}
	p.flushCandidates()
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return haven.Wrap(haven.EINVALID, err, "the offer cannot be answered")
	}
	if err := p.setLocalAndWait(answer); err != nil {
		return err
	}
	p.send(signal.Message{Type: signal.Answer, SDP: p.pc.LocalDescription().SDP})
	if p.again {
		p.again = false
		p.negotiateLocked(true)
	}
	return nil
}

// AddCandidate applies a candidate the participant trickled. Candidates
// that arrive before the participant's answer are held (a bounded number).
func (p *Participant) AddCandidate(c signal.ICECandidate) error {
	init := webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}
	p.candMu.Lock()
	if !p.haveRemote {
		defer p.candMu.Unlock()
		if len(p.pending) >= maxPendingCandidates {
			return haven.Errorf(haven.ETOOMANY, "too many ICE candidates")
		}
		p.pending = append(p.pending, init)
		return nil
	}
	p.candMu.Unlock()
	if err := p.pc.AddICECandidate(init); err != nil {
		return haven.Wrap(haven.EINVALID, err, "ICE candidate refused")
	}
	return nil
}

func (p *Participant) flushCandidates() {
	p.candMu.Lock()
	p.haveRemote = true
	pending := p.pending
	p.pending = nil
	p.candMu.Unlock()
	for _, c := range pending {
		_ = p.pc.AddICECandidate(c) // a bad held candidate is the client's loss alone
	}
}

// SetAudio turns the participant's microphone on or off for everyone.
func (p *Participant) SetAudio(on bool) {
	if p.audio.Swap(on) != on {
		p.room.broadcast(p, signal.Message{Type: signal.State, Peer: ptr(p.peer())})
	}
}

// SetVideo turns the participant's camera on or off for everyone.
func (p *Participant) SetVideo(on bool) {
	if p.video.Swap(on) != on {
		p.room.broadcast(p, signal.Message{Type: signal.State, Peer: ptr(p.peer())})
		if on {
			p.requestOwnKeyframes()
		}
	}
}

// StartScreen opens a slot for the participant's screen (the first time)
// and forwards it. The SFU sends a new offer with one more video section,
// which the browser answers with its screen track.
func (p *Participant) StartScreen() error {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.isClosed() {
		return haven.Errorf(haven.ECONFLICT, "you have left the call")
	}
	added := false
	if p.screenTr == nil {
		tr, err := p.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		if err != nil {
			return haven.Wrap(haven.EINTERNAL, err, "cannot open a screen share")
		}
		p.screenTr = tr
		p.screenRecv.Store(tr.Receiver())
		added = true
	}
	if !p.screen.Swap(true) {
		p.room.broadcast(p, signal.Message{Type: signal.State, Peer: ptr(p.peer())})
		p.requestOwnKeyframes()
	}
	if added {
		p.negotiateLocked(true)
	}
	return nil
}

// StopScreen stops forwarding the participant's screen. The slot stays
// for the next share.
func (p *Participant) StopScreen() {
	if p.screen.Swap(false) {
		p.room.broadcast(p, signal.Message{Type: signal.State, Peer: ptr(p.peer())})
	}
}

// Leave takes the participant out of the call and closes their
// connection. It is safe to call more than once; it reports whether the
// participant was seated (not already gone, replaced or ended).
func (p *Participant) Leave() bool { return p.room.leave(p) }

// negotiate brings the participant's subscriptions up to date and, if
// anything changed (or no offer was ever made), sends an offer.
func (p *Participant) negotiate() {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	p.negotiateLocked(false)
}

func (p *Participant) negotiateLocked(force bool) {
	if p.isClosed() {
		return
	}
	if p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.again = true
		return
	}
	changed := p.syncSendersLocked()
	if !changed && !force && p.offered {
		return
	}
	p.offered = true
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.fail()
		return
	}
	if err := p.setLocalAndWait(offer); err != nil {
		p.fail()
		return
	}
	p.send(signal.Message{Type: signal.Offer, SDP: p.pc.LocalDescription().SDP})
}

// setLocalAndWait sets d and waits for ICE gathering, so the description
// sent carries the SFU's candidates and the SFU need not trickle. Its
// candidates are host ones only (and announced public IPs), so gathering
// takes milliseconds.
func (p *Participant) setLocalAndWait(d webrtc.SessionDescription) error {
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(d); err != nil {
		return haven.Wrap(haven.EINTERNAL, err, "cannot set the local description")
	}
	t := time.NewTimer(p.room.sfu.cfg.NegotiationTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
	}
	return nil
}

// syncSendersLocked adds a sender for each room track p should receive
// and removes those of tracks that are gone; it reports a change.
func (p *Participant) syncSendersLocked() bool {
	want := p.room.subscriptions(p)
	changed := false
	for id, s := range p.senders {
		if _, ok := want[id]; !ok {
			_ = p.pc.RemoveTrack(s)
			delete(p.senders, id)
			changed = true
		}
	}
	for id, f := range want {
		if _, ok := p.senders[id]; ok {
			continue
		}
		s, err := p.pc.AddTrack(f.local)
		if err != nil {
			continue
		}
		p.senders[id] = s
		changed = true
		go f.readRTCP(s)
	}
	return changed
}

// requestKeyframes asks the publishers of everything p receives for a
// keyframe.
func (p *Participant) requestKeyframes() {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	p.requestKeyframesLocked()
}

func (p *Participant) requestKeyframesLocked() {
	subs := p.room.subscriptions(p)
	for id := range p.senders {
		if f := subs[id]; f != nil {
			f.requestKeyframe()
		}
	}
}

func (p *Participant) requestOwnKeyframes() {
	for _, f := range p.room.forwardsOf(p) {
		f.requestKeyframe()
	}
}

func (p *Participant) peer() signal.Peer {
	peer := signal.Peer{Participant: p.ID, Role: string(p.Role), Audio: p.audio.Load(), Video: p.video.Load(), Screen: p.screen.Load()}
	if k := p.publicKey.Load(); k != nil {
		peer.Key = *k
	}
	return peer
}

// SetPublicKey records the participant's end-to-end encryption public key
// and shows it to the others, who then seal their media keys for it. A
// connection announces one key: a second, different one is refused, so a
// seated participant's identity in the safety code cannot change under
// the others mid-call (a new key needs a new connection, which the others
// see as a rejoin).
func (p *Participant) SetPublicKey(key string) error {
	if !p.publicKey.CompareAndSwap(nil, &key) {
		if old := p.publicKey.Load(); old != nil && *old == key {
			return nil
		}
		return haven.Errorf(haven.ECONFLICT, "this connection already announced a different key")
	}
	p.room.broadcast(p, signal.Message{Type: signal.State, Peer: ptr(p.peer())})
	return nil
}

// send delivers m; a channel that cannot take it (a client too slow to
// read) loses its seat.
func (p *Participant) send(m signal.Message) {
	if p.isClosed() {
		return
	}
	if err := p.sig.Send(m); err != nil {
		go p.room.leave(p)
	}
}

// fail drops a participant whose connection broke on our side.
func (p *Participant) fail() {
	go func() {
		p.send(signal.Message{Type: signal.Error, Code: haven.EINTERNAL, Text: "The media connection failed; rejoin the visit."})
		p.room.leave(p)
	}()
}

func (p *Participant) isClosed() bool { return p.closed.Load() }

// close ends p's signaling and media, sending last first if it is set.
func (p *Participant) close(last signal.Message) {
	p.closeOnce.Do(func() {
		if last.Type != "" {
			_ = p.sig.Send(last)
		}
		p.closed.Store(true)
		p.sig.Close()
		_ = p.pc.Close()
	})
}

// Handle carries out a message the participant sent, already accepted by
// signal.Parse. Join is refused (the participant is already seated); End
// and Invite are allowed only to the clinician.
func (p *Participant) Handle(m signal.Message) error {
	switch m.Type {
	case signal.Answer:
		return p.Answer(m.SDP)
	case signal.Offer:
		return p.Offer(m.SDP)
	case signal.Candidate:
		if m.Candidate == nil {
			return haven.Errorf(haven.EINVALID, "candidate missing")
		}
		return p.AddCandidate(*m.Candidate)
	case signal.Mute:
		p.SetAudio(false)
	case signal.Unmute:
		p.SetAudio(true)
	case signal.CameraOff:
		p.SetVideo(false)
	case signal.CameraOn:
		p.SetVideo(true)
	case signal.ScreenStart:
		return p.StartScreen()
	case signal.ScreenStop:
		p.StopScreen()
	case signal.Leave:
		p.Leave()
	case signal.End:
		return p.room.End(p)
	case signal.Invite:
		return p.room.Invite(p, m.Participant)
	case signal.PublicKey:
		return p.SetPublicKey(m.Key)
	case signal.WrapKey:
		return p.room.relayWrappedKey(p, m.Participant, m.Key)
	case signal.Join:
		return haven.Errorf(haven.EINVALID, "already joined")
	default:
		return haven.Errorf(haven.EINVALID, "not a message a participant may send")
	}
	return nil
}

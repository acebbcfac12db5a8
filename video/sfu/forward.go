package sfu

import (
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Track kinds, the prefix of every forwarded track's id, so a browser can
// tell a shared screen from a camera.
const (
	KindAudio  = "audio"
	KindVideo  = "video"
	KindScreen = "screen"
)

// forward is one published track and its copy for the room: packets read
// from the publisher's remote track are written, unchanged but for the
// SSRC and payload type each subscriber negotiated, to a local track that
// every subscriber's peer connection sends.
type forward struct {
	id     string
	kind   string
	owner  *Participant
	remote *webrtc.TrackRemote
	local  *webrtc.TrackLocalStaticRTP

	lastKeyframeRequest atomic.Int64 // unix nanos
	packets             atomic.Uint64
}

// onTrack runs in its own goroutine (pion starts one per track) for as
// long as the participant publishes the track.
func (p *Participant) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	kind := KindAudio
	if remote.Kind() == webrtc.RTPCodecTypeVideo {
		kind = KindVideo
		if recv == p.screenRecv.Load() {
			kind = KindScreen
		}
	}
	// One track of each kind: a client offering a dozen video tracks gets
	// one forwarded, not an amplifier.
	p.pubMu.Lock()
	dup := p.published[kind]
	p.published[kind] = true
	p.pubMu.Unlock()
	if dup {
		return
	}
	defer func() {
		p.pubMu.Lock()
		p.published[kind] = false
		p.pubMu.Unlock()
	}()

	// Ids are ours: the stream id is the participant's authenticated id
	// and the track id says the kind, whatever the client's SDP claimed.
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	local, err := webrtc.NewTrackLocalStaticRTP(remote.Codec().RTPCodecCapability, kind+"-"+hex.EncodeToString(rnd[:]), p.ID)
	if err != nil {
		return
	}
	f := &forward{id: local.ID(), kind: kind, owner: p, remote: remote, local: local}
	if !p.room.addTrack(f) {
		return
	}
	defer p.room.removeTrack(f)
	f.run()
}

// run copies packets until the publisher's track ends. Packets of a kind
// the participant has turned off are read and dropped here: that is what
// makes mute and camera-off hold on the server.
func (f *forward) run() {
	buf := make([]byte, 1500)
	for {
		n, _, err := f.remote.Read(buf)
		if err != nil {
			return
		}
		if !f.enabled() {
			continue
		}
		f.packets.Add(1)
		// Write fails only for subscribers whose connection is closing;
		// their seats are cleaned up by the room.
		_, _ = f.local.Write(buf[:n])
	}
}

func (f *forward) enabled() bool {
	switch f.kind {
	case KindAudio:
		return f.owner.audio.Load()
	case KindVideo:
		return f.owner.video.Load()
	default:
		return f.owner.screen.Load()
	}
}

// readRTCP reads what a subscriber reports about this track (which pion's
// interceptors need read in any case) and passes its keyframe requests to
// the publisher. It ends when the sender is removed or closed.
func (f *forward) readRTCP(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				f.requestKeyframe()
			}
		}
	}
}

// requestKeyframe sends the publisher a PLI for this track, at most once
// per KeyframeInterval however many subscribers ask.
func (f *forward) requestKeyframe() {
	if f.kind == KindAudio {
		return
	}
	cfg := f.owner.room.sfu.cfg
	now := cfg.Now().UnixNano()
	last := f.lastKeyframeRequest.Load()
	if last != 0 && now-last < int64(cfg.KeyframeInterval) {
		return
	}
	if !f.lastKeyframeRequest.CompareAndSwap(last, now) {
		return
	}
	_ = f.owner.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(f.remote.SSRC())}})
}

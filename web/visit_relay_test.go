package web_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"haven/service"
	"haven/video/sfu"
	"haven/video/signal"
)

// relayPeer is a participant's side of a call written with pion, for a
// client that may use relayed candidates only (as behind a firewall that
// lets nothing but the TURN server through). It joins through the real
// call endpoint with a join token from the real API, takes the relay and
// its credentials from the joined message, publishes synthetic audio and
// video, answers the SFU's offers and counts what it receives.
type relayPeer struct {
	t      *testing.T
	conn   *websocket.Conn
	pc     *webrtc.PeerConnection
	joined signal.Message
	done   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	received map[string]*atomic.Uint64 // by the sender's participant id
	frames   map[string][][]byte       // whole VP8 frames as the SFU forwarded them, by sender (the first few hundred)
}

// maxFrames bounds the frames a relayPeer keeps from each sender.
const maxFrames = 300

// keepFrames reassembles the VP8 frames of one forwarded video track
// from its RTP packets' payloads (a frame starts at a packet with the S
// bit and partition 0, and ends at the marker), and keeps them.
func (p *relayPeer) keepFrames(from string, pkt *rtp.Packet, cur *[]byte) {
	var vp8 codecs.VP8Packet
	if _, err := vp8.Unmarshal(pkt.Payload); err != nil {
		return
	}
	if vp8.S == 1 && vp8.PID == 0 {
		*cur = (*cur)[:0]
	}
	*cur = append(*cur, vp8.Payload...)
	if pkt.Marker && len(*cur) > 0 {
		p.mu.Lock()
		if len(p.frames[from]) < maxFrames {
			p.frames[from] = append(p.frames[from], append([]byte(nil), *cur...))
		}
		p.mu.Unlock()
		*cur = (*cur)[:0]
	}
}

// framesFrom returns the whole video frames kept from participant.
func (p *relayPeer) framesFrom(participant string) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.frames[participant]...)
}

func joinRelayed(t *testing.T, c *client, visitID string) *relayPeer {
	t.Helper()
	pass := decode[service.CallPass](t, c.api("POST", "/api/v1/visits/"+visitID+"/join-token", nil))
	conn, _, err := c.dial(visitID, c.st.base)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	conn.SetReadLimit(signal.MaxMessage)
	p := &relayPeer{t: t, conn: conn, done: make(chan struct{}), received: map[string]*atomic.Uint64{}, frames: map[string][][]byte{}}
	t.Cleanup(p.close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p.send(ctx, signal.Message{Type: signal.Join, Token: pass.Token})
	var offer *signal.Message
	for p.joined.Type == "" {
		m := p.read(ctx)
		switch m.Type {
		case signal.Joined:
			p.joined = m
		case signal.Offer:
			offer = &m // the SFU may offer before the joined message is read
		case signal.Error:
			t.Fatalf("join refused: %+v", m)
		}
	}
	var servers []webrtc.ICEServer
	for _, s := range p.joined.ICEServers {
		servers = append(servers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	if len(servers) == 0 {
		t.Fatal("the call offered no relay")
	}
	api, err := sfu.NewAPI(sfu.Config{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.pc, err = api.NewPeerConnection(webrtc.Configuration{ICEServers: servers, ICETransportPolicy: webrtc.ICETransportPolicyRelay}); err != nil {
		t.Fatal(err)
	}
	p.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.mu.Lock()
		n := p.received[tr.StreamID()]
		if n == nil {
			n = &atomic.Uint64{}
			p.received[tr.StreamID()] = n
		}
		p.mu.Unlock()
		video := tr.Kind() == webrtc.RTPCodecTypeVideo && strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeVP8)
		var frame []byte
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			n.Add(1)
			if video {
				p.keepFrames(tr.StreamID(), pkt, &frame)
			}
		}
	})
	p.publish()
	p.wg.Add(1)
	go p.signaling(offer)
	return p
}

func (p *relayPeer) send(ctx context.Context, m signal.Message) {
	b, err := signal.Encode(m)
	if err == nil {
		err = p.conn.Write(ctx, websocket.MessageText, b)
	}
	if err != nil {
		select {
		case <-p.done:
		default:
			p.t.Errorf("send %s: %v", m.Type, err)
		}
	}
}

func (p *relayPeer) read(ctx context.Context) signal.Message {
	_, b, err := p.conn.Read(ctx)
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	var m signal.Message
	if err := json.Unmarshal(b, &m); err != nil {
		p.t.Fatalf("a message that is not JSON: %v", err)
	}
	return m
}

// signaling answers the SFU's offers (with every candidate gathered, so
// no trickling is needed) until the peer closes.
func (p *relayPeer) signaling(first *signal.Message) {
	defer p.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-p.done
		cancel()
	}()
	answer := func(sdp string) {
		if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
			p.t.Errorf("offer: %v", err)
			return
		}
		ans, err := p.pc.CreateAnswer(nil)
		if err != nil {
			p.t.Errorf("answer: %v", err)
			return
		}
		gathered := webrtc.GatheringCompletePromise(p.pc)
		if err := p.pc.SetLocalDescription(ans); err != nil {
			p.t.Errorf("answer: %v", err)
			return
		}
		select {
		case <-gathered:
		case <-ctx.Done():
			return
		}
		p.send(ctx, signal.Message{Type: signal.Answer, SDP: p.pc.LocalDescription().SDP})
	}
	if first != nil {
		answer(first.SDP)
	}
	for {
		_, b, err := p.conn.Read(ctx)
		if err != nil {
			return
		}
		var m signal.Message
		if json.Unmarshal(b, &m) == nil && m.Type == signal.Offer {
			answer(m.SDP)
		}
	}
}

// publish sends a camera (VP8) and a microphone (Opus) of synthetic
// samples every 20ms until the peer closes.
func (p *relayPeer) publish() {
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", "relay-test")
	if err != nil {
		p.t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "relay-test")
	if err != nil {
		p.t.Fatal(err)
	}
	for _, tr := range []*webrtc.TrackLocalStaticSample{video, audio} {
		s, err := p.pc.AddTrack(tr)
		if err != nil {
			p.t.Fatal(err)
		}
		p.wg.Add(1)
		go func() { // RTCP must be read for the sender to work
			defer p.wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := s.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		frame, voice := make([]byte, 2500), make([]byte, 80)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
			rand.Read(frame[:16])
			_ = video.WriteSample(media.Sample{Data: frame, Duration: 20 * time.Millisecond})
			_ = audio.WriteSample(media.Sample{Data: voice, Duration: 20 * time.Millisecond})
		}
	}()
}

// from returns how many RTP packets arrived from participant.
func (p *relayPeer) from(participant string) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.received[participant]; n != nil {
		return n.Load()
	}
	return 0
}

// route returns the type of the local candidate of the pair ICE chose.
func (p *relayPeer) route() (webrtc.ICECandidateType, bool) {
	for _, tr := range p.pc.GetTransceivers() {
		if s := tr.Sender(); s != nil && s.Transport() != nil {
			pair, err := s.Transport().ICETransport().GetSelectedCandidatePair()
			if err == nil && pair != nil {
				return pair.Local.Typ, true
			}
		}
	}
	return 0, false
}

func (p *relayPeer) close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	p.conn.CloseNow()
	if p.pc != nil {
		p.pc.Close()
	}
	p.wg.Wait()
}

// TestCallMediaFlowsThroughTheRelayHavenIssues proves the relay path end
// to end: a patient and a clinician whose clients may use relayed
// candidates only get a join token from the API, join through the call's
// WebSocket, and take the TURN server and its short-lived credentials
// from the joined message (the credentials Haven issues for that
// participant); media then flows both ways through the embedded TURN
// server to the SFU and back, on relayed candidates alone.
func TestCallMediaFlowsThroughTheRelayHavenIssues(t *testing.T) {
	t.Parallel()
	st := newVisitStack(t, false)
	id, pat, doc := st.admitted()
	clinician := joinRelayed(t, doc, id)
	patient := joinRelayed(t, pat, id)

	relayAddr := st.relay.Addr().String()
	for who, p := range map[string]*relayPeer{"clinician": clinician, "patient": patient} {
		s := p.joined.ICEServers[0]
		if !strings.Contains(strings.Join(s.URLs, " "), relayAddr) || s.Username == "" || s.Credential == "" {
			t.Fatalf("%s was offered %+v, not the embedded relay at %s with credentials", who, p.joined.ICEServers, relayAddr)
		}
		if !strings.Contains(s.Username, p.joined.Participant) {
			t.Fatalf("%s's relay credentials %q are not bound to them", who, s.Username)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for to, from := range map[*relayPeer]string{clinician: st.users[patientEmail], patient: st.users[doctor]} {
		for to.from(from) < 50 {
			if time.Now().After(deadline) {
				t.Fatalf("%s received %d packets from %s through the relay", to.joined.Participant, to.from(from), from)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for who, p := range map[string]*relayPeer{"clinician": clinician, "patient": patient} {
		if typ, ok := p.route(); !ok || typ != webrtc.ICECandidateTypeRelay {
			t.Fatalf("%s's media took a %s candidate (%v), not the relay", who, typ, ok)
		}
	}
}

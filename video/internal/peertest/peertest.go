// Package peertest is a participant's side of a video call, written with
// pion, for tests and benchmarks: it publishes synthetic audio and video
// (generated here; nothing is read from disk or downloaded), answers the
// SFU's offers, and counts the RTP packets it receives from each other
// participant. It never runs in production.
package peertest

import (
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"haven/video/signal"
)

// Client is one test participant.
type Client struct {
	PC *webrtc.PeerConnection

	outbound func(signal.Message) error
	inbox    chan signal.Message
	events   chan signal.Message
	done     chan struct{}
	stop     sync.Once
	wg       sync.WaitGroup

	mu       sync.Mutex
	received map[string]*atomic.Uint64 // by "participant/kind"
	streams  map[string]string         // track id -> stream id, as the SFU named them
	first    chan struct{}             // closed at the first RTP packet received
	firstOne sync.Once
	rtcpSeen chan struct{} // closed when a PLI reaches a published track
	pliOnce  sync.Once
	plis     atomic.Uint64
	closed   atomic.Bool
}

// New returns a client whose messages to the server go through outbound.
// Messages from the server are given to Deliver.
func New(api *webrtc.API, outbound func(signal.Message) error) (*Client, error) {
	return NewWithConfig(api, webrtc.Configuration{}, outbound)
}

// NewWithConfig is New with a peer connection configuration (ICE servers,
// a relay-only policy).
func NewWithConfig(api *webrtc.API, cfg webrtc.Configuration, outbound func(signal.Message) error) (*Client, error) {
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		PC: pc, outbound: outbound,
		inbox:    make(chan signal.Message, 256),
		events:   make(chan signal.Message, 256),
		done:     make(chan struct{}),
		received: map[string]*atomic.Uint64{},
		streams:  map[string]string{},
		first:    make(chan struct{}),
		rtcpSeen: make(chan struct{}),
	}
	pc.OnTrack(c.onTrack)
	c.wg.Add(1)
	go c.loop()
	return c, nil
}

// Publish adds a camera (VP8) and a microphone (Opus) track and starts
// writing synthetic samples to them every 20ms until Close. Call it before
// the first offer arrives, as a browser adds its tracks before joining.
func (c *Client) Publish() error {
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", "client-chosen-stream")
	if err != nil {
		return err
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "client-chosen-stream")
	if err != nil {
		return err
	}
	return c.publish(video, audio)
}

// ShareScreen adds a second video track, as a browser does for a screen,
// and starts writing samples to it. Send screen-start first; the SFU's next
// offer carries the slot this track fills.
func (c *Client) ShareScreen() error {
	screen, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen", "client-chosen-stream")
	if err != nil {
		return err
	}
	return c.publish(screen)
}

func (c *Client) publish(tracks ...*webrtc.TrackLocalStaticSample) error {
	for _, tr := range tracks {
		s, err := c.PC.AddTrack(tr)
		if err != nil {
			return err
		}
		c.wg.Add(1)
		go c.readRTCP(s)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		frame := make([]byte, 2500) // two or three RTP packets a video frame
		voice := make([]byte, 80)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-tick.C:
			}
			_, _ = rand.Read(frame[:16])
			for _, tr := range tracks {
				data := frame
				if tr.Kind() == webrtc.RTPCodecTypeAudio {
					data = voice
				}
				_ = tr.WriteSample(media.Sample{Data: data, Duration: 20 * time.Millisecond})
			}
		}
	}()
	return nil
}

func (c *Client) readRTCP(s *webrtc.RTPSender) {
	defer c.wg.Done()
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); ok {
				c.plis.Add(1)
				c.pliOnce.Do(func() { close(c.rtcpSeen) })
			}
		}
	}
}

// Deliver hands the client a message from the server. It never blocks the
// caller (the SFU): messages queue for the client's own goroutine.
func (c *Client) Deliver(m signal.Message) error {
	if c.closed.Load() {
		return errors.New("peertest: client closed")
	}
	select {
	case c.inbox <- m:
		return nil
	default:
		return errors.New("peertest: inbox full")
	}
}

// Events returns the server messages other than offers, answers and
// candidates, in order.
func (c *Client) Events() <-chan signal.Message { return c.events }

func (c *Client) loop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case m := <-c.inbox:
			switch m.Type {
			case signal.Offer:
				c.answer(m.SDP)
			case signal.Answer:
				_ = c.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP})
			case signal.Candidate:
			default:
				select {
				case c.events <- m:
				default:
				}
			}
		}
	}
}

func (c *Client) answer(sdp string) {
	if err := c.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return
	}
	ans, err := c.PC.CreateAnswer(nil)
	if err != nil {
		return
	}
	gathered := webrtc.GatheringCompletePromise(c.PC)
	if err := c.PC.SetLocalDescription(ans); err != nil {
		return
	}
	select {
	case <-gathered:
	case <-c.done:
		return
	}
	_ = c.outbound(signal.Message{Type: signal.Answer, SDP: c.PC.LocalDescription().SDP})
}

func (c *Client) onTrack(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	kind, _, _ := strings.Cut(t.ID(), "-")
	key := t.StreamID() + "/" + kind
	c.mu.Lock()
	n := c.received[key]
	if n == nil {
		n = &atomic.Uint64{}
		c.received[key] = n
	}
	c.streams[t.ID()] = t.StreamID()
	c.mu.Unlock()
	buf := make([]byte, 1500)
	for {
		if _, _, err := t.Read(buf); err != nil {
			return
		}
		n.Add(1)
		c.firstOne.Do(func() { close(c.first) })
	}
}

// Received returns how many RTP packets arrived from participant's track
// of kind ("audio", "video" or "screen").
func (c *Client) Received(participant, kind string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.received[participant+"/"+kind]; n != nil {
		return n.Load()
	}
	return 0
}

// Streams returns the stream id of every track received.
func (c *Client) Streams() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.streams {
		out = append(out, s)
	}
	return out
}

// First is closed when the first RTP packet from anyone arrives.
func (c *Client) First() <-chan struct{} { return c.first }

// PLI is closed when a picture loss indication reaches one of the
// client's published tracks.
func (c *Client) PLI() <-chan struct{} { return c.rtcpSeen }

// WaitFor waits until cond holds, polling, or until limit passes. It is a
// bound on a test that would otherwise hang, not a speed assertion.
func WaitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// RequestKeyframe sends a PLI for every track the client receives, as a
// browser does when it joins mid-stream.
func (c *Client) RequestKeyframe() {
	for _, r := range c.PC.GetReceivers() {
		if t := r.Track(); t != nil && t.Kind() == webrtc.RTPCodecTypeVideo {
			_ = c.PC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
		}
	}
}

// PLICount returns how many picture loss indications reached the
// client's published tracks.
func (c *Client) PLICount() uint64 { return c.plis.Load() }

// Close stops publishing and closes the peer connection.
func (c *Client) Close() {
	c.stop.Do(func() {
		c.closed.Store(true)
		close(c.done)
		_ = c.PC.Close()
		c.wg.Wait()
	})
}

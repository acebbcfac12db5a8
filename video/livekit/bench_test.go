package livekit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	lkp "github.com/livekit/protocol/livekit"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"

	"haven/video/livekit"
	"haven/video/livekit/livekittest"
	"haven/video/token"
)

// BenchmarkForwardLiveKit is BenchmarkForward of video/sfu with LiveKit
// in the SFU's place: one publisher sends RTP packets of 1,000 bytes of
// payload through a real livekit-server to subs subscribers (pion clients
// speaking LiveKit's signaling protocol, in this process). It reports the
// livekit-server process's CPU (user + system, from /proc) per packet
// forwarded to a subscriber, and the whole cost (this process's clients
// too) per packet, to set beside video/sfu's Forward/sfu (whole process)
// and Forward/direct (the clients alone). Audio (Opus) is sent, which
// LiveKit forwards without waiting for a keyframe.
//
//	go test -run '^$' -bench ForwardLiveKit -benchtime 20000x ./video/livekit
func BenchmarkForwardLiveKit(b *testing.B) {
	for _, subs := range []int{1, 3} { // a room seats four (MaxParticipants)
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			srv := livekittest.Start(b)
			eng, err := livekit.New(livekit.Config{URL: srv.URL, APIKey: srv.APIKey, APISecret: srv.APISecret,
				Allow: func(context.Context) error { return nil }})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := eng.CreateRoom(ctx, visitA); err != nil {
				b.Fatal(err)
			}
			var got atomic.Uint64
			for i := range subs {
				g, err := eng.Token(ctx, visitA, token.Claims{VisitID: visitA, ParticipantID: fmt.Sprintf("sub%d", i), Role: token.Guest})
				if err != nil {
					b.Fatal(err)
				}
				dialLK(b, srv, g.Token, nil, &got)
			}
			g, err := eng.Token(ctx, visitA, token.Claims{VisitID: visitA, ParticipantID: clinician, Role: token.Clinician})
			if err != nil {
				b.Fatal(err)
			}
			track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "TR_haven_a", "haven")
			if err != nil {
				b.Fatal(err)
			}
			dialLK(b, srv, g.Token, track, nil)
			pumpLK(b, srv.PID(), subs, track.WriteRTP, got.Load)
		})
	}
}

// lkClient is a LiveKit participant: the signaling WebSocket and a
// publisher and a subscriber peer connection.
type lkClient struct {
	conn     *websocket.Conn
	pub, sub *webrtc.PeerConnection
	mu       sync.Mutex
}

func (c *lkClient) send(ctx context.Context, r *lkp.SignalRequest) {
	b, _ := proto.Marshal(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.conn.Write(ctx, websocket.MessageBinary, b)
}

func benchAPI(b *testing.B) *webrtc.API {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return strings.HasPrefix(name, "lo") })
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		b.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m))
}

// dialLK joins with accessToken; with track it publishes it, and every
// RTP packet its subscriber receives counts in got.
func dialLK(b *testing.B, srv *livekittest.Server, accessToken string, track *webrtc.TrackLocalStaticRTP, got *atomic.Uint64) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	u := fmt.Sprintf("ws://127.0.0.1:%d/rtc?access_token=%s&protocol=15&sdk=go&auto_subscribe=1", srv.Port, url.QueryEscape(accessToken))
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		b.Fatal(err)
	}
	conn.SetReadLimit(1 << 22)
	b.Cleanup(func() { conn.CloseNow() })
	api := benchAPI(b)
	c := &lkClient{conn: conn}
	if c.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		b.Fatal(err)
	}
	if c.sub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.pub.Close(); c.sub.Close() })
	trickle := func(target lkp.SignalTarget) func(*webrtc.ICECandidate) {
		return func(cand *webrtc.ICECandidate) {
			if cand == nil {
				return
			}
			j, _ := json.Marshal(cand.ToJSON())
			c.send(ctx, &lkp.SignalRequest{Message: &lkp.SignalRequest_Trickle{Trickle: &lkp.TrickleRequest{CandidateInit: string(j), Target: target}}})
		}
	}
	c.pub.OnICECandidate(trickle(lkp.SignalTarget_PUBLISHER))
	c.sub.OnICECandidate(trickle(lkp.SignalTarget_SUBSCRIBER))
	if got != nil {
		c.sub.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			buf := make([]byte, 1500)
			for {
				if _, _, err := t.Read(buf); err != nil {
					return
				}
				got.Add(1)
			}
		})
	}
	joined := make(chan struct{})
	published := make(chan struct{})
	go func() {
		var once, pubOnce sync.Once
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var m lkp.SignalResponse
			if proto.Unmarshal(data, &m) != nil {
				continue
			}
			switch x := m.Message.(type) {
			case *lkp.SignalResponse_Join:
				once.Do(func() { close(joined) })
			case *lkp.SignalResponse_TrackPublished:
				pubOnce.Do(func() { close(published) })
			case *lkp.SignalResponse_Offer:
				if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: x.Offer.Sdp}); err != nil {
					continue
				}
				ans, err := c.sub.CreateAnswer(nil)
				if err != nil || c.sub.SetLocalDescription(ans) != nil {
					continue
				}
				c.send(ctx, &lkp.SignalRequest{Message: &lkp.SignalRequest_Answer{Answer: &lkp.SessionDescription{Type: "answer", Sdp: ans.SDP, Id: x.Offer.Id}}})
			case *lkp.SignalResponse_Answer:
				_ = c.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: x.Answer.Sdp})
			case *lkp.SignalResponse_Trickle:
				var init webrtc.ICECandidateInit
				if json.Unmarshal([]byte(x.Trickle.CandidateInit), &init) != nil {
					continue
				}
				if x.Trickle.Target == lkp.SignalTarget_PUBLISHER {
					_ = c.pub.AddICECandidate(init)
				} else {
					_ = c.sub.AddICECandidate(init)
				}
			}
		}
	}()
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.send(ctx, &lkp.SignalRequest{Message: &lkp.SignalRequest_PingReq{PingReq: &lkp.Ping{Timestamp: time.Now().UnixMilli()}}})
			}
		}
	}()
	select {
	case <-joined:
	case <-time.After(20 * time.Second):
		b.Fatalf("no join answer\n%s", srv.Log())
	}
	if track == nil {
		return
	}
	c.send(ctx, &lkp.SignalRequest{Message: &lkp.SignalRequest_AddTrack{AddTrack: &lkp.AddTrackRequest{Cid: track.ID(), Name: "mic", Type: lkp.TrackType_AUDIO, Source: lkp.TrackSource_MICROPHONE, DisableRed: true}}})
	select {
	case <-published:
	case <-time.After(20 * time.Second):
		b.Fatalf("the track was not published\n%s", srv.Log())
	}
	if _, err := c.pub.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		b.Fatal(err)
	}
	offer, err := c.pub.CreateOffer(nil)
	if err != nil || c.pub.SetLocalDescription(offer) != nil {
		b.Fatal(err)
	}
	c.send(ctx, &lkp.SignalRequest{Message: &lkp.SignalRequest_Offer{Offer: &lkp.SessionDescription{Type: "offer", Sdp: offer.SDP, Id: 1}}})
}

// pumpLK sends b.N packets in windows and reports the server's CPU per
// packet forwarded (to any subscriber), and the whole cost per packet.
func pumpLK(b *testing.B, pid, subs int, write func(*rtp.Packet) error, received func() uint64) {
	payload := make([]byte, 1000)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: 1}, Payload: payload}
	send := func(n int) {
		for range n {
			pkt.SequenceNumber++
			pkt.Timestamp += 960
			if err := write(pkt); err != nil {
				b.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for received() < uint64(subs) {
		if time.Now().After(deadline) {
			b.Fatal("no packets flow through LiveKit")
		}
		send(1)
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	base := received()
	const window = 32
	srv0, self0 := procCPU(b, pid), selfCPU()
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		n := min(window, b.N-sent)
		send(n)
		sent += n
		want := uint64(sent*subs) - uint64(8*subs)
		until := time.Now().Add(50 * time.Millisecond)
		for sent > 8 && received()-base < want && time.Now().Before(until) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	end := time.Now().Add(300 * time.Millisecond)
	for received()-base < uint64(sent*subs) && time.Now().Before(end) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	got := received() - base
	if got == 0 {
		b.Fatal("nothing received")
	}
	srvCPU, selfCost := procCPU(b, pid)-srv0, selfCPU()-self0
	b.ReportMetric(float64(srvCPU.Nanoseconds())/float64(got), "server-cpu-ns/pkt")
	b.ReportMetric(float64((srvCPU+selfCost).Nanoseconds())/float64(got), "cpu-ns/pkt")
	b.ReportMetric(1e9*float64(got)/float64(srvCPU.Nanoseconds()), "pkts/server-cpu-s")
	b.ReportMetric(100*(1-float64(got)/float64(sent*subs)), "loss-%")
}

// procCPU is a process's user + system CPU time, from /proc.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // clock ticks of 1/100 s (USER_HZ on Linux)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

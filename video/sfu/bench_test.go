package sfu_test

import (
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"haven/video/internal/peertest"
	"haven/video/sfu"
	"haven/video/signal"
	"haven/video/token"
)

// BenchmarkJoinToFirstRTP measures, on loopback, the time from a
// participant's admission (their join reaching the SFU) to the first RTP
// packet of the other participant arriving at their client, and to the
// first packet of theirs arriving at the other (which takes one more
// renegotiation). Each iteration is a fresh visit; the clinician is
// already in the room, publishing. The baseline is two pion peers
// connected directly (no SFU): from the start of their offer/answer to the
// first packet. It reports the median and 95th percentile in ms.
//
//	go test -run '^$' -bench JoinToFirstRTP -benchtime 40x ./video/sfu
func BenchmarkJoinToFirstRTP(b *testing.B) {
	b.Run("sfu", func(b *testing.B) {
		s := newSFU(b, sfu.Config{})
		var toPatient, toClinician []time.Duration
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			r := room(b, s, fmt.Sprintf("visit-%d", i))
			doc := mustJoin(b, r, "clinician-1", token.Clinician)
			// The clinician is connected and their media reaches the SFU
			// before the patient is admitted.
			if !peertest.WaitFor(bound, func() bool { return doc.c.PC.ConnectionState() == webrtc.PeerConnectionStateConnected }) {
				b.Fatal("clinician not connected")
			}
			time.Sleep(100 * time.Millisecond)
			b.StartTimer()

			start := time.Now()
			pat := mustJoin(b, r, "patient-1", token.Patient)
			select {
			case <-pat.c.First():
			case <-time.After(bound):
				b.Fatal("no media reached the admitted patient")
			}
			toPatient = append(toPatient, time.Since(start))
			if !peertest.WaitFor(bound, func() bool {
				return doc.c.Received("patient-1", sfu.KindVideo)+doc.c.Received("patient-1", sfu.KindAudio) > 0
			}) {
				b.Fatal("no media reached the clinician")
			}
			toClinician = append(toClinician, time.Since(start))

			b.StopTimer()
			pat.c.Close()
			doc.c.Close()
			s.End(r.VisitID())
			b.StartTimer()
		}
		report(b, "to-patient", toPatient)
		report(b, "to-clinician", toClinician)
	})
	b.Run("baseline", func(b *testing.B) {
		var first []time.Duration
		for b.Loop() {
			b.StopTimer()
			pub, sub := directPair(b)
			b.StartTimer()
			start := time.Now()
			got := make(chan struct{})
			var once atomic.Bool
			sub.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
				buf := make([]byte, 1500)
				if _, _, err := t.Read(buf); err == nil && once.CompareAndSwap(false, true) {
					close(got)
				}
			})
			track := publishSamples(b, pub)
			connect(b, pub, sub)
			select {
			case <-got:
			case <-time.After(bound):
				b.Fatal("no media between direct peers")
			}
			first = append(first, time.Since(start))
			b.StopTimer()
			close(track)
			pub.Close()
			sub.Close()
			b.StartTimer()
		}
		report(b, "to-patient", first)
	})
}

// report adds the median and 95th percentile of ds, in ms, to b's output.
func report(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	pct := func(p float64) float64 {
		i := int(p*float64(len(ds)-1) + 0.5)
		return float64(ds[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), name+"-p50-ms")
	b.ReportMetric(pct(0.95), name+"-p95-ms")
}

// BenchmarkForward measures the CPU time (user + system, the whole
// process: publisher, forwarder and subscriber) per RTP packet of 1,000
// bytes of payload delivered from one publisher to one subscriber:
//
//   - sfu: publisher -> SFU -> subscriber, all pion, DTLS-SRTP both hops;
//   - direct: publisher -> subscriber, pion, no SFU (the clients' own cost);
//   - baseline: the same bytes through a plain UDP echo between two
//     sockets (a relay that does nothing but copy), the floor any
//     forwarder on this machine pays for its socket calls and wake-ups.
//
// The SFU's own cost per forwarded packet is sfu minus direct. Packets go
// in windows of 32 so none are dropped for want of buffer.
//
// Visits per core: a two-party visit forwards each participant's audio
// (50 packets/s) and camera (about 120 packets/s at 1 Mbit/s) to the
// other, about 340 forwarded packets/s, so one core sustains about
// 1e9 / (340 x (sfu - direct) cpu-ns/pkt) visits, before TURN relaying,
// signaling and headroom.
//
//	go test -run '^$' -bench Forward -benchtime 20000x ./video/sfu
func BenchmarkForward(b *testing.B) {
	b.Run("sfu", func(b *testing.B) {
		s := newSFU(b, sfu.Config{})
		r := room(b, s, "visit-1")
		track := rtpTrack(b)
		pub := joinWith(b, r, "clinician-1", token.Clinician, track)
		sub, err := join(b, r, "patient-1", token.Patient, false)
		if err != nil {
			b.Fatal(err)
		}
		_ = pub
		pump(b, track.WriteRTP, func() uint64 { return sub.c.Received("clinician-1", sfu.KindVideo) })
	})
	b.Run("direct", func(b *testing.B) {
		pubPC, subPC := directPair(b)
		defer pubPC.Close()
		defer subPC.Close()
		track := rtpTrack(b)
		if _, err := pubPC.AddTrack(track); err != nil {
			b.Fatal(err)
		}
		var got atomic.Uint64
		subPC.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			buf := make([]byte, 1500)
			for {
				if _, _, err := t.Read(buf); err != nil {
					return
				}
				got.Add(1)
			}
		})
		connect(b, pubPC, subPC)
		pump(b, track.WriteRTP, got.Load)
	})
	b.Run("baseline", func(b *testing.B) { // the UDP echo
		listen := func() *net.UDPConn {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			return c
		}
		sender, echo, receiver := listen(), listen(), listen()
		go func() {
			buf := make([]byte, 1500)
			for {
				n, _, err := echo.ReadFromUDP(buf)
				if err != nil {
					return
				}
				echo.WriteToUDP(buf[:n], receiver.LocalAddr().(*net.UDPAddr))
			}
		}()
		var got atomic.Uint64
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, err := receiver.Read(buf); err != nil {
					return
				}
				got.Add(1)
			}
		}()
		to := echo.LocalAddr().(*net.UDPAddr)
		buf := make([]byte, 1500)
		pump(b, func(p *rtp.Packet) error {
			n, err := p.MarshalTo(buf)
			if err != nil {
				return err
			}
			_, err = sender.WriteToUDP(buf[:n], to)
			return err
		}, got.Load)
	})
}

// pump sends b.N packets through write in windows, waiting for the
// receiver to catch up, and reports CPU per packet received.
func pump(b *testing.B, write func(*rtp.Packet) error, received func() uint64) {
	payload := make([]byte, 1000)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}, Payload: payload}
	send := func(n int) {
		for range n {
			pkt.SequenceNumber++
			pkt.Timestamp += 3000
			if err := write(pkt); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Warm up until packets flow end to end.
	if !peertest.WaitFor(bound, func() bool { send(1); return received() > 0 }) {
		b.Fatal("no packets flow")
	}
	time.Sleep(100 * time.Millisecond)
	base := received()

	const window = 32
	cpu0 := cpuTime()
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		n := min(window, b.N-sent)
		send(n)
		sent += n
		deadline := time.Now().Add(50 * time.Millisecond)
		for received()-base < uint64(sent)-8 && uint64(sent) > 8 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	peertest.WaitFor(200*time.Millisecond, func() bool { return received()-base >= uint64(sent) })
	b.StopTimer()
	got := received() - base
	if got == 0 {
		b.Fatal("nothing received")
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(got), "cpu-ns/pkt")
	b.ReportMetric(100*(1-float64(got)/float64(sent)), "loss-%")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rtpTrack(b *testing.B) *webrtc.TrackLocalStaticRTP {
	t, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", "client")
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// joinWith seats a participant whose client publishes track (written by
// the benchmark) instead of synthetic samples.
func joinWith(b *testing.B, r *sfu.Room, id string, role token.Role, track webrtc.TrackLocal) *seat {
	s := &seat{id: id, ready: make(chan struct{})}
	c, err := peertest.New(api(b), func(m signal.Message) error {
		<-s.ready
		return s.p.Handle(m)
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	if _, err := c.PC.AddTrack(track); err != nil {
		b.Fatal(err)
	}
	s.c = c
	s.pipe = &pipe{c: c, closed: make(chan struct{})}
	s.p, _, err = r.Join(sfu.JoinRequest{ParticipantID: id, Role: role, Signal: s.pipe})
	close(s.ready)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func directPair(b *testing.B) (*webrtc.PeerConnection, *webrtc.PeerConnection) {
	pub, err := api(b).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	sub, err := api(b).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	return pub, sub
}

// connect runs offer/answer between two in-process peers, without trickle,
// as the SFU does.
func connect(b *testing.B, offerer, answerer *webrtc.PeerConnection) {
	if _, err := answerer.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		b.Fatal(err)
	}
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		b.Fatal(err)
	}
	g := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		b.Fatal(err)
	}
	<-g
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		b.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		b.Fatal(err)
	}
	g = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		b.Fatal(err)
	}
	<-g
	if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
		b.Fatal(err)
	}
}

// publishSamples adds a VP8 track to pc and writes a synthetic frame every
// 20ms, as peertest does, until the returned channel is closed.
func publishSamples(b *testing.B, pc *webrtc.PeerConnection) chan struct{} {
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", "client")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pc.AddTrack(tr); err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}, Payload: make([]byte, 1000)}
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			pkt.SequenceNumber++
			pkt.Timestamp += 1800
			_ = tr.WriteRTP(pkt)
		}
	}()
	return stop
}

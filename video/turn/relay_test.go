package turn_test

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"haven/video/internal/peertest"
	"haven/video/sfu"
	"haven/video/signal"
	"haven/video/token"
	"haven/video/turn"
)

type pipe struct{ c *peertest.Client }

func (p pipe) Send(m signal.Message) error { return p.c.Deliver(m) }
func (p pipe) Close()                      {}

// TestMediaReachesTheSFUThroughTheRelay runs two participants whose
// browsers may use relay candidates only (as behind a strict firewall):
// every packet goes client -> TURN relay -> SFU -> TURN relay -> client,
// with the relay allowed to reach the SFU's address and nothing else.
func TestMediaReachesTheSFUThroughTheRelay(t *testing.T) {
	relay, err := turn.Listen(turn.Config{
		ListenAddr:   "127.0.0.1:0",
		RelayIP:      net.IPv4(127, 0, 0, 1),
		Realm:        "haven.test",
		Secret:       secret,
		AllowedPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, // the SFU
	})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	s, err := sfu.New(sfu.Config{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	room, err := s.Room("visit-1")
	if err != nil {
		t.Fatal(err)
	}
	api, err := sfu.NewAPI(sfu.Config{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}

	clients := map[string]*peertest.Client{}
	for _, who := range []struct {
		id   string
		role token.Role
	}{{"clinician-1", token.Clinician}, {"patient-1", token.Patient}} {
		cred, err := relay.Credentials(who.id, 0)
		if err != nil {
			t.Fatal(err)
		}
		ready := make(chan *sfu.Participant, 1)
		var p *sfu.Participant
		c, err := peertest.NewWithConfig(api, webrtc.Configuration{
			ICEServers:         []webrtc.ICEServer{{URLs: cred.URLs, Username: cred.Username, Credential: cred.Password}},
			ICETransportPolicy: webrtc.ICETransportPolicyRelay,
		}, func(m signal.Message) error {
			if p == nil {
				p = <-ready
			}
			if p == nil {
				return errors.New("not joined")
			}
			return p.Handle(m)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Publish(); err != nil {
			t.Fatal(err)
		}
		joined, _, err := room.Join(sfu.JoinRequest{ParticipantID: who.id, Role: who.role, Signal: pipe{c}})
		ready <- joined
		if err != nil {
			t.Fatal(err)
		}
		clients[who.id] = c
	}
	for to, from := range map[string]string{"clinician-1": "patient-1", "patient-1": "clinician-1"} {
		c := clients[to]
		if !peertest.WaitFor(20*time.Second, func() bool { return c.Received(from, sfu.KindVideo) > 30 }) {
			t.Fatalf("%s received %d video packets from %s through the relay", to, c.Received(from, sfu.KindVideo), from)
		}
	}
	// Every candidate pair the clients use is a relayed one.
	for id, c := range clients {
		pair, err := c.PC.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			t.Fatalf("%s: no selected pair: %v", id, err)
		}
		if pair.Local.Typ != webrtc.ICECandidateTypeRelay {
			t.Fatalf("%s: local candidate %s, want relay", id, pair.Local.Typ)
		}
	}
}

package video_test

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"time"

	"haven/video"
	"haven/video/sfu"
	"haven/video/signal"
	"haven/video/token"
	"haven/video/turn"
)

// Example shows the wiring the server does: one SFU and one TURN server
// per process, the call endpoint behind the session middleware, and a join
// token minted when the clinician admits the patient.
func Example() {
	var (
		joinKey    = make([]byte, token.KeySize) // from the key store, never a literal
		turnSecret = make([]byte, 32)            // likewise
		publicIP   = net.IPv4(127, 0, 0, 1)      // the host's public address
	)

	media, err := sfu.New(sfu.Config{UDPPortMin: 50000, UDPPortMax: 50999, LoopbackOnly: true})
	if err != nil {
		panic(err)
	}
	defer media.Close()
	relay, err := turn.Listen(turn.Config{
		ListenAddr: "127.0.0.1:0",
		RelayIP:    publicIP,
		Realm:      "haven.example",
		Secret:     turnSecret,
		// Relays may reach the SFU and nothing else.
		AllowedPeers: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte(publicIP.To4())), 32)},
	})
	if err != nil {
		panic(err)
	}
	defer relay.Close()

	calls, err := video.NewHandler(video.Config{
		SFU:      media,
		TokenKey: joinKey,
		Spent:    token.NewMemorySpent(0, nil),
		Origin:   "https://haven.example",
		Authorize: func(ctx context.Context, c token.Claims) error {
			return nil // is the visit in call, is the user of its practice?
		},
		ICEServers: func(ctx context.Context, c token.Claims) ([]signal.ICEServer, error) {
			cred, err := relay.Credentials(c.ParticipantID, 0)
			if err != nil {
				return nil, err
			}
			return []signal.ICEServer{{URLs: cred.URLs, Username: cred.Username, Credential: cred.Password}}, nil
		},
		Audit: func(ctx context.Context, e video.Event) error {
			return nil // append to the audit log; an error refuses joins and invitations
		},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /visits/{visit}/call", calls) // behind the session middleware

	// At admission: a token for the patient, handed to their page, which
	// sends it as the first message on the call's WebSocket.
	tok, err := token.Mint(joinKey, token.Claims{VisitID: "visit-1", ParticipantID: "patient-1", Role: token.Patient}, time.Now())
	if err != nil {
		panic(err)
	}
	_ = tok
}

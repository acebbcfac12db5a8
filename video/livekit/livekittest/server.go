// Package livekittest runs a real livekit-server for tests: a separate
// process on free loopback ports, with a generated configuration (its own
// API key and secret, room auto-creation off so only Haven creates rooms,
// media on 127.0.0.1), stopped when the test ends. It is the LiveKit the
// engine tests in video/livekit and the two-browser call in web meet.
package livekittest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/livekit/protocol/auth"
	lkp "github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"
	"google.golang.org/protobuf/proto"

	"haven/internal/testkit"
)

// Version is the LiveKit server the tests run against (.ci/run builds it
// as livekit-server when missing).
const Version = "github.com/livekit/livekit-server@v1.13.11"

// Binary is the program's name in PATH or GOPATH/bin.
const Binary = "livekit-server"

// Server is a running livekit-server.
type Server struct {
	URL       string // ws://127.0.0.1:port
	APIKey    string
	APISecret string
	Port      int // the signaling port; the media port is UDPPort
	UDPPort   int

	cmd  *exec.Cmd
	done chan struct{}
	log  *testkit.ServerLog
}

// Path returns the installed livekit-server, or "" when there is none.
func Path() string { return testkit.FindTool(Binary) }

// Start runs a livekit-server until the test ends. Outside CI a missing
// binary skips the test; in CI it fails it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := Path()
	if bin == "" {
		how := "build " + Version + " as .ci/run does"
		if testkit.InCI() {
			tb.Fatalf("%s is not installed, and CI must run this test: %s", Binary, how)
		}
		tb.Skipf("%s is not installed (%s)", Binary, how)
	}
	var kb, sb [16]byte
	rand.Read(kb[:])
	rand.Read(sb[:])
	s := &Server{APIKey: "API" + hex.EncodeToString(kb[:6]), APISecret: hex.EncodeToString(sb[:]) + hex.EncodeToString(kb[:]),
		Port: freeTCP(tb), UDPPort: freeUDP(tb), log: &testkit.ServerLog{}}
	rtcTCP := freeTCP(tb)
	s.URL = fmt.Sprintf("ws://127.0.0.1:%d", s.Port)
	conf := fmt.Sprintf(`port: %d
bind_addresses: ["127.0.0.1"]
rtc:
  tcp_port: %d
  udp_port: %d
  node_ip: 127.0.0.1
  use_external_ip: false
  enable_loopback_candidate: true
keys:
  %s: %s
room:
  auto_create: false
logging:
  level: warn
`, s.Port, rtcTCP, s.UDPPort, s.APIKey, s.APISecret)
	path := filepath.Join(tb.TempDir(), "livekit.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	s.cmd = exec.Command(bin, "--config", path)
	s.cmd.Env = testkit.OutsideEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	tb.Cleanup(s.stop)
	// Ready when its HTTP port answers.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.done:
			tb.Fatalf("livekit-server exited at start:\n%s", s.log.String())
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", s.Port))
		if err == nil {
			resp.Body.Close()
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("livekit-server did not answer within a minute:\n%s", s.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Log is what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// PID is the server's process id (for measuring its CPU).
func (s *Server) PID() int { return s.cmd.Process.Pid }

// stop kills the server: it keeps nothing worth a graceful drain (which
// waits for rooms to empty).
func (s *Server) stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

func freeTCP(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeUDP(tb testing.TB) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// api calls the server's room API with an admin token for room ("" for
// the calls that name none).
func (s *Server) api(tb testing.TB, room string) (context.Context, lkp.RoomService) {
	tb.Helper()
	g := &auth.VideoGrant{RoomList: true, RoomCreate: true, RoomAdmin: true, Room: room}
	jwt, err := auth.NewAccessToken(s.APIKey, s.APISecret).SetVideoGrant(g).SetValidFor(time.Minute).ToJWT()
	if err != nil {
		tb.Fatal(err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+jwt)
	ctx, err := twirp.WithHTTPRequestHeaders(context.Background(), h)
	if err != nil {
		tb.Fatal(err)
	}
	return ctx, lkp.NewRoomServiceProtobufClient(fmt.Sprintf("http://127.0.0.1:%d", s.Port), http.DefaultClient)
}

// Rooms lists the rooms that exist on the server.
func (s *Server) Rooms(tb testing.TB) []string {
	tb.Helper()
	ctx, rs := s.api(tb, "")
	res, err := rs.ListRooms(ctx, &lkp.ListRoomsRequest{})
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, r := range res.Rooms {
		names = append(names, r.Name)
	}
	return names
}

// Participants lists the identities in room.
func (s *Server) Participants(tb testing.TB, room string) []string {
	tb.Helper()
	ctx, rs := s.api(tb, room)
	res, err := rs.ListParticipants(ctx, &lkp.ListParticipantsRequest{Room: room})
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	for _, p := range res.Participants {
		ids = append(ids, p.Identity)
	}
	return ids
}

// ParticipantInfos is what the server holds about each participant in
// room (identity, name, metadata, attributes), for tests that check it
// learns nothing but pseudonyms.
func (s *Server) ParticipantInfos(tb testing.TB, room string) []*lkp.ParticipantInfo {
	tb.Helper()
	ctx, rs := s.api(tb, room)
	res, err := rs.ListParticipants(ctx, &lkp.ListParticipantsRequest{Room: room})
	if err != nil {
		tb.Fatal(err)
	}
	return res.Participants
}

// Participant is a client on LiveKit's signaling channel: what a browser
// opens first, and what the server closes when it removes a participant
// or deletes the room. It carries no media; the browser tests do.
type Participant struct {
	Joined *lkp.JoinResponse
	Gone   chan struct{} // closed when the server sends it away or the connection ends
	conn   *websocket.Conn
	cancel context.CancelFunc
}

// Join opens the signaling channel with an access token, as a client
// SDK does, and waits for the server's answer: the join, or the refusal.
func (s *Server) Join(tb testing.TB, accessToken string) (*Participant, error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	u := fmt.Sprintf("ws://127.0.0.1:%d/rtc?access_token=%s&protocol=15&sdk=go&auto_subscribe=0", s.Port, url.QueryEscape(accessToken))
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	conn, resp, err := websocket.Dial(dctx, u, nil)
	dcancel()
	if err != nil {
		cancel()
		if resp != nil {
			return nil, fmt.Errorf("refused: HTTP %d", resp.StatusCode)
		}
		return nil, err
	}
	conn.SetReadLimit(1 << 20)
	p := &Participant{Gone: make(chan struct{}), conn: conn, cancel: cancel}
	joined := make(chan *lkp.JoinResponse, 1)
	go func() {
		defer close(p.Gone)
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var m lkp.SignalResponse
			if proto.Unmarshal(b, &m) != nil {
				continue
			}
			switch x := m.Message.(type) {
			case *lkp.SignalResponse_Join:
				joined <- x.Join
			case *lkp.SignalResponse_Leave:
				return
			}
		}
	}()
	go func() { // keep the signaling channel alive, as a client does
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.Gone:
				return
			case <-t.C:
				b, _ := proto.Marshal(&lkp.SignalRequest{Message: &lkp.SignalRequest_PingReq{PingReq: &lkp.Ping{Timestamp: time.Now().UnixMilli()}}})
				_ = conn.Write(ctx, websocket.MessageBinary, b)
			}
		}
	}()
	tb.Cleanup(p.Close)
	select {
	case j := <-joined:
		p.Joined = j
		return p, nil
	case <-p.Gone:
		return nil, fmt.Errorf("the server closed the channel before the join")
	case <-time.After(20 * time.Second):
		p.Close()
		return nil, fmt.Errorf("no join answer within 20s")
	}
}

// Close leaves.
func (p *Participant) Close() {
	p.cancel()
	_ = p.conn.CloseNow()
}

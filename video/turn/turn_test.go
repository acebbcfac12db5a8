package turn_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/logging"
	pturn "github.com/pion/turn/v5"

	"haven/video/turn"
)

var secret = bytes.Repeat([]byte("s"), 32)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// start runs a TURN server on loopback whose relays may reach only
// 127.0.0.1 (where the tests' "SFU" listens).
func start(t *testing.T, clk *clock) *turn.Server {
	t.Helper()
	s, err := turn.Listen(turn.Config{
		ListenAddr:   "127.0.0.1:0",
		RelayIP:      net.IPv4(127, 0, 0, 1),
		Realm:        "haven.test",
		Secret:       secret,
		AllowedPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Now:          clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func client(t *testing.T, s *turn.Server, user, pass string) *pturn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelDisabled
	c, err := pturn.NewClient(&pturn.ClientConfig{
		TURNServerAddr: s.Addr().String(),
		STUNServerAddr: s.Addr().String(),
		Username:       user,
		Password:       pass,
		Realm:          "haven.test",
		Conn:           conn,
		RTO:            50 * time.Millisecond,
		LoggerFactory:  quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

// peer is a UDP socket standing in for the SFU: it echoes what it gets.
func peer(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			c.WriteToUDP(buf[:n], from)
		}
	}()
	return c
}

func TestFreshCredentialsAllocateARelayThatReachesTheSFU(t *testing.T) {
	clk := &clock{t: time.Now()}
	s := start(t, clk)
	cred, err := s.Credentials("patient-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := client(t, s, cred.Username, cred.Password).Allocate()
	if err != nil {
		t.Fatalf("allocate with fresh credentials: %v", err)
	}
	defer relay.Close()
	if ip := relay.LocalAddr().(*net.UDPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("relay on %v, want the configured relay IP", ip)
	}

	sfu := peer(t, "127.0.0.1:0")
	if _, err := relay.WriteTo([]byte("rtp"), sfu.LocalAddr()); err != nil {
		t.Fatalf("send through relay: %v", err)
	}
	buf := make([]byte, 100)
	relay.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := relay.ReadFrom(buf)
	if err != nil {
		t.Fatalf("echo through relay: %v", err)
	}
	if string(buf[:n]) != "rtp" || from.String() != sfu.LocalAddr().String() {
		t.Fatalf("got %q from %v", buf[:n], from)
	}
}

func TestExpiredCredentialsCannotAllocate(t *testing.T) {
	clk := &clock{t: time.Now()}
	s := start(t, clk)
	cred, err := s.Credentials("patient-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clk.add(time.Minute) // now == expiry
	if relay, err := client(t, s, cred.Username, cred.Password).Allocate(); err == nil {
		relay.Close()
		t.Fatal("expired credentials allocated a relay")
	}
}

func TestForgedCredentialsCannotAllocate(t *testing.T) {
	clk := &clock{t: time.Now()}
	s := start(t, clk)
	cred, _ := s.Credentials("patient-1", 0)
	exp := strconv.FormatInt(clk.now().Add(time.Hour).Unix(), 10)
	for name, up := range map[string][2]string{
		"WrongPassword":         {cred.Username, base64.StdEncoding.EncodeToString(make([]byte, 20))},
		"OtherSecret":           {exp + ":patient-1", mac([]byte("not the server's secret, 32 bytes"), exp+":patient-1")},
		"ExpiryEditedForward":   {exp + ":patient-1", cred.Password},
		"UserIDEdited":          {cred.Username[:len(cred.Username)-1] + "2", cred.Password},
		"NoExpiry":              {"patient-1", mac(secret, "patient-1")},
		"NegativeExpiry":        {"-5:patient-1", mac(secret, "-5:patient-1")},
		"UserIDWithColon":       {exp + ":a:b", mac(secret, exp+":a:b")},
		"HugeExpiryOverflowing": {"99999999999999999999:p", mac(secret, "99999999999999999999:p")},
	} {
		t.Run(name, func(t *testing.T) {
			if relay, err := client(t, s, up[0], up[1]).Allocate(); err == nil {
				relay.Close()
				t.Fatal("allocated")
			}
		})
	}
}

func TestRelayRefusesPeersOutsideTheAllowList(t *testing.T) {
	clk := &clock{t: time.Now()}
	s := start(t, clk)
	cred, _ := s.Credentials("patient-1", 0)
	c := client(t, s, cred.Username, cred.Password)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	// An attacker with valid credentials tries to use the relay to reach
	// the cloud metadata service, a private database, another loopback
	// service and an IPv6 address.
	internal := peer(t, "127.0.0.2:0")
	for _, target := range []net.Addr{
		&net.UDPAddr{IP: net.IPv4(169, 254, 169, 254), Port: 80},
		&net.UDPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 5432},
		internal.LocalAddr(),
		&net.UDPAddr{IP: net.ParseIP("::1"), Port: 53},
	} {
		if err := c.CreatePermission(target); err == nil {
			t.Errorf("permission to %v granted", target)
		}
		if _, err := relay.WriteTo([]byte("x"), target); err == nil {
			t.Errorf("data to %v relayed", target)
		}
	}
	// The allowed peer still works through the same allocation, so the
	// refusals above are the allow-list's doing.
	sfu := peer(t, "127.0.0.1:0")
	if err := c.CreatePermission(sfu.LocalAddr()); err != nil {
		t.Fatalf("permission to the SFU refused: %v", err)
	}
}

func TestEmptyAllowListRelaysNowhere(t *testing.T) {
	s, err := turn.Listen(turn.Config{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), Realm: "haven.test", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cred, _ := s.Credentials("p", 0)
	c := client(t, s, cred.Username, cred.Password)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if err := c.CreatePermission(peer(t, "127.0.0.1:0").LocalAddr()); err == nil {
		t.Fatal("an empty allow list granted a permission")
	}
}

func TestAllocationsPerUserAreCapped(t *testing.T) {
	clk := &clock{t: time.Now()}
	s, err := turn.Listen(turn.Config{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), Realm: "haven.test",
		Secret: secret, MaxAllocationsPerUser: 2, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cred, _ := s.Credentials("greedy", 0)
	for i := range 3 {
		relay, err := client(t, s, cred.Username, cred.Password).Allocate()
		if i < 2 && err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if i == 2 && err == nil {
			t.Fatal("third allocation granted over a cap of two")
		}
		if relay != nil {
			defer relay.Close()
		}
	}
	// Another user is not affected.
	other, _ := s.Credentials("other", 0)
	relay, err := client(t, s, other.Username, other.Password).Allocate()
	if err != nil {
		t.Fatalf("other user: %v", err)
	}
	relay.Close()
}

func TestCredentialsAreTURNRESTStyle(t *testing.T) {
	exp := time.Unix(1_900_000_000, 0)
	u, p, err := turn.Credentials(secret, "user-1", exp)
	if err != nil {
		t.Fatal(err)
	}
	if u != "1900000000:user-1" || p != mac(secret, u) {
		t.Fatalf("got %q %q", u, p)
	}
	if _, _, err := turn.Credentials(secret, "a:b", exp); err == nil {
		t.Fatal("user id with a colon accepted")
	}
	// The one id alphabet (haven.PlausibleID): no upper case.
	if _, _, err := turn.Credentials(secret, "User-1", exp); err == nil {
		t.Fatal("user id in upper case accepted")
	}
}

func TestListenRefusesWeakOrOpenConfigurations(t *testing.T) {
	for name, cfg := range map[string]turn.Config{
		"ShortSecret":    {ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), Realm: "r", Secret: []byte("short")},
		"AnyRelayIP":     {ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4zero, Realm: "r", Secret: secret},
		"NoRelayIP":      {ListenAddr: "127.0.0.1:0", Realm: "r", Secret: secret},
		"NoRealm":        {ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), Secret: secret},
		"BadListenAddrs": {ListenAddr: "nowhere:-1", RelayIP: net.IPv4(127, 0, 0, 1), Realm: "r", Secret: secret},
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := turn.Listen(cfg); err == nil {
				s.Close()
				t.Fatal("started")
			}
		})
	}
}

func mac(key []byte, msg string) string {
	m := hmac.New(sha1.New, key)
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestExpiredCredentialKeepsItsRelayOnlyWithinTheCallGrace(t *testing.T) {
	clk := &clock{t: time.Now()}
	s, err := turn.Listen(turn.Config{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), Realm: "haven.test", Secret: secret,
		AllowedPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, CallGrace: time.Hour, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cred, _ := s.Credentials("patient-1", time.Minute)
	c := client(t, s, cred.Username, cred.Password)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	sfu := peer(t, "127.0.0.1:0")

	// Half an hour into the visit the credential has expired, but the
	// relay it opened keeps working: a call must not drop at minute five.
	clk.add(30 * time.Minute)
	if err := c.CreatePermission(sfu.LocalAddr()); err != nil {
		t.Fatalf("within the grace: %v", err)
	}
	// A new allocation with it is refused.
	if r2, err := client(t, s, cred.Username, cred.Password).Allocate(); err == nil {
		r2.Close()
		t.Fatal("expired credential allocated")
	}
	// Past the grace, nothing.
	clk.add(time.Hour)
	if err := c.CreatePermission(peer(t, "127.0.0.1:0").LocalAddr()); err == nil {
		t.Fatal("permission granted past the grace")
	}
}

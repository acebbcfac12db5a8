// Package turn owns Haven's embedded TURN server: the relay a browser
// falls back to when a firewall or NAT keeps it from reaching the SFU
// directly, and the short-lived credentials that open it.
//
// A TURN server is a packet relay on the public internet; misconfigured, it
// is an open proxy into the network it runs in (cloud metadata services,
// databases on private addresses). So this one is closed by default:
//
//   - Credentials are TURN REST style (username "expiry:userID", password
//     base64(HMAC-SHA1(secret, username))), minted per participant when
//     they join a call and useless to anyone after expiry for new
//     allocations.
//   - A relay may exchange packets only with peers in AllowedPeers, which
//     in Haven is the SFU's own media address: every call goes through the
//     SFU, so a browser never needs a relay to anywhere else. Permissions
//     to any other address are refused (403), and so is data sent to one.
//   - Relays bind only to RelayIP, and allocations per user are capped.
//
// This package never logs credentials, and its pion logger is silenced:
// pion's messages would carry usernames (user ids) and addresses.
package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST credential scheme and browsers speak.
	"encoding/base64"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	pturn "github.com/pion/turn/v5"

	"haven"
)

const (
	// MinSecretSize is the least secret Listen accepts.
	MinSecretSize = 32
	// DefaultTTL is how long credentials minted by Server.Credentials are
	// good for starting an allocation.
	DefaultTTL = 5 * time.Minute
	// DefaultCallGrace is how long after its expiry a credential still
	// refreshes an allocation it already made, so a relay does not drop in
	// the middle of a long visit. It never creates a new allocation.
	DefaultCallGrace = 4 * time.Hour
	// DefaultMaxAllocationsPerUser caps one participant's relays; a browser
	// needs one or two per call.
	DefaultMaxAllocationsPerUser = 8
	maxUserID                    = haven.MaxIDLength
)

// Config configures a Server.
type Config struct {
	// ListenAddr is the UDP address to listen on ("127.0.0.1:0" in tests).
	ListenAddr string
	// URLs are advertised to browsers; default "turn:<listen addr>?transport=udp".
	URLs []string
	// RelayIP is the only address relays bind to and announce.
	RelayIP net.IP
	// RelayPortMin and RelayPortMax bound relay ports; both zero means any.
	RelayPortMin, RelayPortMax uint16
	// Realm is the TURN realm (the practice's host name, say).
	Realm string
	// Secret is shared by credential minting and checking; at least 32
	// bytes, from the key store, never in configuration files in the clear.
	Secret []byte
	// AllowedPeers lists the only peer addresses relays may reach. Empty
	// means none: a relay that can reach nothing is safe and useless, so
	// set it to the SFU's media address(es).
	AllowedPeers []netip.Prefix
	// CallGrace: see DefaultCallGrace.
	CallGrace time.Duration
	// MaxAllocationsPerUser: see DefaultMaxAllocationsPerUser.
	MaxAllocationsPerUser int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Server is a running TURN server.
type Server struct {
	cfg    Config
	conn   net.PacketConn
	server *pturn.Server

	mu     sync.Mutex
	allocs map[string]int // live allocations by user id
}

// Listen starts a TURN server on cfg.ListenAddr.
func Listen(cfg Config) (*Server, error) {
	if len(cfg.Secret) < MinSecretSize {
		return nil, haven.Errorf(haven.EINVALID, "TURN secret must be at least %d bytes", MinSecretSize)
	}
	if cfg.RelayIP == nil || cfg.RelayIP.IsUnspecified() {
		return nil, haven.Errorf(haven.EINVALID, "TURN relay IP must be a specific address")
	}
	if cfg.Realm == "" {
		return nil, haven.Errorf(haven.EINVALID, "TURN realm required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CallGrace <= 0 {
		cfg.CallGrace = DefaultCallGrace
	}
	if cfg.MaxAllocationsPerUser <= 0 {
		cfg.MaxAllocationsPerUser = DefaultMaxAllocationsPerUser
	}
	cfg.Secret = append([]byte(nil), cfg.Secret...)

	conn, err := net.ListenPacket("udp4", cfg.ListenAddr)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "TURN server cannot listen")
	}
	if len(cfg.URLs) == 0 {
		cfg.URLs = []string{"turn:" + conn.LocalAddr().String() + "?transport=udp"}
	}
	s := &Server{cfg: cfg, conn: conn, allocs: map[string]int{}}

	var relay pturn.RelayAddressGenerator = &pturn.RelayAddressGeneratorStatic{
		RelayAddress: cfg.RelayIP,
		Address:      cfg.RelayIP.String(),
	}
	if cfg.RelayPortMin != 0 || cfg.RelayPortMax != 0 {
		relay = &pturn.RelayAddressGeneratorPortRange{
			RelayAddress: cfg.RelayIP,
			Address:      cfg.RelayIP.String(),
			MinPort:      cfg.RelayPortMin,
			MaxPort:      cfg.RelayPortMax,
		}
	}
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelDisabled

	s.server, err = pturn.NewServer(pturn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   s.authenticate,
		QuotaHandler:  s.underQuota,
		LoggerFactory: quiet,
		EventHandler: pturn.EventHandler{
			OnAllocationCreated: func(_, _ net.Addr, _, userID, _ string, _ net.Addr, _ int) {
				s.mu.Lock()
				s.allocs[userID]++
				s.mu.Unlock()
			},
			OnAllocationDeleted: func(_, _ net.Addr, _, userID, _ string) {
				s.mu.Lock()
				if s.allocs[userID]--; s.allocs[userID] <= 0 {
					delete(s.allocs, userID)
				}
				s.mu.Unlock()
			},
		},
		PacketConnConfigs: []pturn.PacketConnConfig{{
			PacketConn:            conn,
			RelayAddressGenerator: relay,
			PermissionHandler:     s.permitted,
		}},
	})
	if err != nil {
		conn.Close()
		return nil, haven.Wrap(haven.EINVALID, err, "TURN server configuration refused")
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Close stops the server and drops every allocation.
func (s *Server) Close() error { return s.server.Close() }

// Credential is what a browser needs to use the relay.
type Credential struct {
	URLs     []string
	Username string
	Password string
	Expiry   time.Time
}

// Credentials mints a credential for userID good for ttl (DefaultTTL when
// <= 0) from now.
func (s *Server) Credentials(userID string, ttl time.Duration) (Credential, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	exp := s.cfg.Now().Add(ttl)
	u, p, err := Credentials(s.cfg.Secret, userID, exp)
	if err != nil {
		return Credential{}, err
	}
	return Credential{URLs: append([]string(nil), s.cfg.URLs...), Username: u, Password: p, Expiry: exp}, nil
}

// Credentials returns a TURN REST username and password for userID that
// expire at expiry.
func Credentials(secret []byte, userID string, expiry time.Time) (username, pass string, err error) {
	if !haven.PlausibleID(userID) {
		return "", "", haven.Errorf(haven.EINVALID, "TURN user id must be 1 to %d lower-case letters, digits, '-' or '_'", maxUserID)
	}
	username = strconv.FormatInt(expiry.Unix(), 10) + ":" + userID
	return username, password(secret, username), nil
}

func password(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// authenticate is pion's AuthHandler. A credential past its expiry may not
// start an allocation; within CallGrace it may still refresh one it made,
// add permissions and bind channels (those requests come from the 5-tuple
// of an allocation that was made while the credential was fresh).
func (s *Server) authenticate(ra *pturn.RequestAttributes) (string, []byte, bool) {
	expStr, userID, ok := strings.Cut(ra.Username, ":")
	if !ok || !haven.PlausibleID(userID) || len(expStr) > 12 {
		return "", nil, false
	}
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil || exp <= 0 {
		return "", nil, false
	}
	now := s.cfg.Now().Unix()
	limit := exp
	if ra.Method != stun.MethodAllocate {
		limit = exp + int64(s.cfg.CallGrace/time.Second)
	}
	if now >= limit {
		return "", nil, false
	}
	// The key is derived from the password we would have minted; a client
	// that does not know the secret cannot produce a matching
	// MESSAGE-INTEGRITY, and pion refuses the request.
	return userID, pturn.GenerateAuthKey(ra.Username, ra.Realm, password(s.cfg.Secret, ra.Username)), true
}

func (s *Server) underQuota(userID, _ string, _ net.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allocs[userID] < s.cfg.MaxAllocationsPerUser
}

// permitted is pion's PermissionHandler, consulted for CreatePermission
// and ChannelBind (and so for every packet a relay forwards).
func (s *Server) permitted(_ net.Addr, peer net.IP) bool {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.cfg.AllowedPeers {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

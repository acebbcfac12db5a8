package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"haven/store/sqlstore"
	"haven/video/sfu"
	"haven/video/token"
	"haven/video/turn"
	"haven/web"
)

// videoConfig is how `haven serve` runs video visits: the join-token key,
// the embedded TURN server's address, the address media is exchanged on,
// and the UDP ports the SFU may use (for a firewall rule).
type videoConfig struct {
	KeyPath    string
	TURNAddr   string
	MediaIP    string
	MediaPorts string

	mediaIP          net.IP
	portMin, portMax uint16
}

func (v *videoConfig) register(fs *flag.FlagSet) {
	// No video setting is a secret, so registering cannot fail.
	_ = registerSettings(fs, []setting{
		{"video-key", "HAVEN_VIDEO_KEY", "", "file holding the 32-byte video join-token key, created on first start (default <data-dir>/keys/video.key); every node of one deployment needs the same file", false, &v.KeyPath},
		{"turn-addr", "HAVEN_TURN_ADDR", "127.0.0.1:3478", "UDP address of the embedded TURN relay browsers fall back to behind firewalls", false, &v.TURNAddr},
		{"media-ip", "HAVEN_MEDIA_IP", "127.0.0.1", "the address browsers reach this host's media on (its public IP beyond one machine); the TURN relay may reach only this address", false, &v.MediaIP},
		{"media-ports", "HAVEN_MEDIA_PORTS", "50000-50100", "UDP port range of the embedded SFU, low-high, for a firewall rule", false, &v.MediaPorts},
	})
}

// validate checks the settings and fills defaults; errors name the flag.
func (v *videoConfig) validate(dataDir string) error {
	if v.KeyPath == "" {
		v.KeyPath = filepath.Join(dataDir, "keys", "video.key")
	}
	if v.mediaIP = net.ParseIP(v.MediaIP); v.mediaIP == nil || v.mediaIP.To4() == nil || v.mediaIP.IsUnspecified() {
		return fmt.Errorf("--media-ip: %q must be one specific IPv4 address", v.MediaIP)
	}
	lo, hi, ok := strings.Cut(v.MediaPorts, "-")
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if !ok || err1 != nil || err2 != nil || a == 0 || a > b {
		return fmt.Errorf("--media-ports: %q is not a range low-high of UDP ports", v.MediaPorts)
	}
	v.portMin, v.portMax = uint16(a), uint16(b)
	host, port, err := net.SplitHostPort(v.TURNAddr)
	if err != nil {
		return fmt.Errorf("--turn-addr: %q is not host:port", v.TURNAddr)
	}
	if (host == "" || net.ParseIP(host).IsUnspecified()) && port == "0" {
		return fmt.Errorf("--turn-addr: listening on every address needs a fixed port, which browsers are told")
	}
	return nil
}

// loadVideoKey reads the join-token key, creating it (32 random bytes,
// owner-only) on first start. A key of the wrong size is an error rather
// than replaced: nodes sharing a deployment must share the key.
func loadVideoKey(path string, out io.Writer) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, errShort(err)
		}
		key := make([]byte, token.KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return loadVideoKey(path, out) // another node or process won the race
		}
		if err != nil {
			return nil, errShort(err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, errShort(err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, errShort(err)
		}
		if err := f.Close(); err != nil {
			return nil, errShort(err)
		}
		fmt.Fprintf(out, "created a video join-token key at %s\n", path)
		return key, nil
	}
	if err != nil {
		return nil, errShort(err)
	}
	if len(b) != token.KeySize {
		return nil, fmt.Errorf("%s holds %d bytes; a video key is %d random bytes", path, len(b), token.KeySize)
	}
	return b, nil
}

// turnSecret derives the TURN credential secret from the video key, so
// every node that shares the key mints credentials every node's relay
// accepts, with no second secret to distribute. The label keeps the two
// uses of the key apart.
func turnSecret(videoKey []byte) []byte {
	m := hmac.New(sha256.New, videoKey)
	m.Write([]byte("haven turn credential secret v1"))
	return m.Sum(nil)
}

// videoStack is the media half of a serving process.
type videoStack struct {
	sfu  *sfu.SFU
	turn *turn.Server
}

// startVideo starts the SFU and the TURN relay. The relay may send only to
// the media address: it is a way into the SFU, not into the network.
func startVideo(v *videoConfig, key []byte) (*videoStack, error) {
	sc := sfu.Config{UDPPortMin: v.portMin, UDPPortMax: v.portMax}
	if v.mediaIP.IsLoopback() {
		sc.LoopbackOnly = true
	} else {
		sc.PublicIPs = []string{v.mediaIP.String()}
	}
	media, err := sfu.New(sc)
	if err != nil {
		return nil, fmt.Errorf("--media-ports: %s", oneLine(err))
	}
	// Browsers are told the relay's address; listening on every address,
	// that is the media address.
	var urls []string
	if host, port, _ := net.SplitHostPort(v.TURNAddr); host == "" || net.ParseIP(host).IsUnspecified() {
		urls = []string{"turn:" + net.JoinHostPort(v.mediaIP.String(), port) + "?transport=udp"}
	}
	peer, _ := netip.AddrFromSlice(v.mediaIP.To4())
	relay, err := turn.Listen(turn.Config{
		ListenAddr:   v.TURNAddr,
		URLs:         urls,
		RelayIP:      v.mediaIP,
		Realm:        "haven",
		Secret:       turnSecret(key),
		AllowedPeers: []netip.Prefix{netip.PrefixFrom(peer, 32)},
	})
	if err != nil {
		media.Close()
		return nil, fmt.Errorf("--turn-addr: %s", oneLine(err))
	}
	return &videoStack{sfu: media, turn: relay}, nil
}

// web returns what the visit pages need.
func (v *videoStack) web(key []byte, db *sqlstore.DB) *web.VideoConfig {
	return &web.VideoConfig{SFU: v.sfu, TURN: v.turn, TokenKey: key, Spent: db.SpentTokens()}
}

// Close ends every call and stops the relay.
func (v *videoStack) Close() {
	v.sfu.Close()
	v.turn.Close()
}

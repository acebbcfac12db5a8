package main

import (
	"context"
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

	"haven"
	"haven/store/sqlstore"
	"haven/video/livekit"
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

	// Engine is what carries the media: the embedded SFU, or a LiveKit
	// server (an outside system, registered in the vendor registry).
	Engine        string
	LiveKitURL    string
	LiveKitKey    string
	LiveKitSecret string

	mediaIP          net.IP
	portMin, portMax uint16
	// livekitAllow is the vendor registry's gate for LiveKit, set by
	// recognizeVendors before startVideo.
	livekitAllow func(context.Context) error
}

// Video engines.
const (
	engineEmbedded = "embedded"
	engineLiveKit  = "livekit"
)

func (v *videoConfig) register(fs *flag.FlagSet) error {
	return registerSettings(fs, []setting{
		{"video-engine", "HAVEN_VIDEO_ENGINE", engineEmbedded, "what carries video visits' media: embedded (this process's SFU and TURN relay) or livekit (a LiveKit server; needs --livekit-url, --livekit-api-key, --livekit-api-secret and a vendor entry with a current business associate agreement)", false, &v.Engine},
		{"livekit-url", "HAVEN_LIVEKIT_URL", "", "with --video-engine livekit: the LiveKit server browsers and Haven reach, wss://host[:port]", false, &v.LiveKitURL},
		{"livekit-api-key", "HAVEN_LIVEKIT_API_KEY", "", "with --video-engine livekit: the API key Haven signs LiveKit tokens and server requests under", false, &v.LiveKitKey},
		{"livekit-api-secret", "HAVEN_LIVEKIT_API_SECRET", "", "with --video-engine livekit: that key's secret (at least 32 characters); prefer HAVEN_LIVEKIT_API_SECRET_FILE", true, &v.LiveKitSecret},
		{"video-key", "HAVEN_VIDEO_KEY", "", "file holding the 32-byte video join-token key, created on first start (default <data-dir>/keys/video.key); every node of one deployment needs the same file", false, &v.KeyPath},
		{"turn-addr", "HAVEN_TURN_ADDR", "127.0.0.1:3478", "UDP address of the embedded TURN relay browsers fall back to behind firewalls", false, &v.TURNAddr},
		{"media-ip", "HAVEN_MEDIA_IP", "127.0.0.1", "the address browsers reach this host's media on (its public IP beyond one machine); the TURN relay may reach only this address", false, &v.MediaIP},
		{"media-ports", "HAVEN_MEDIA_PORTS", "50000-50100", "UDP port range of the embedded SFU, low-high, for a firewall rule", false, &v.MediaPorts},
	})
}

// validate checks the settings and fills defaults; errors name the flag.
func (v *videoConfig) validate(dataDir string) error {
	switch v.Engine {
	case engineEmbedded:
		if v.LiveKitURL != "" || v.LiveKitKey != "" || v.LiveKitSecret != "" {
			return fmt.Errorf("--livekit-url, --livekit-api-key and --livekit-api-secret need --video-engine livekit")
		}
	case engineLiveKit:
		switch {
		case v.LiveKitURL == "":
			return fmt.Errorf("--livekit-url: --video-engine livekit needs the LiveKit server's wss:// URL")
		case v.LiveKitKey == "":
			return fmt.Errorf("--livekit-api-key: --video-engine livekit needs LiveKit's API key")
		case v.LiveKitSecret == "":
			return fmt.Errorf("--livekit-api-secret: --video-engine livekit needs the API key's secret (or HAVEN_LIVEKIT_API_SECRET_FILE)")
		}
		// The rest is checked by the engine, without contacting it.
		if _, err := livekit.New(livekit.Config{URL: v.LiveKitURL, APIKey: v.LiveKitKey, APISecret: v.LiveKitSecret,
			Allow: func(context.Context) error { return nil }}); err != nil {
			return fmt.Errorf("--livekit-url, --livekit-api-key, --livekit-api-secret: %s", haven.ErrorMessage(err))
		}
	default:
		return fmt.Errorf("--video-engine: %q is not embedded or livekit", v.Engine)
	}
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
	return loadKeyFile(path, token.KeySize, "video join-token key", out)
}

// loadKeyFile reads a key file of size random bytes, creating it (mode
// 0600, said on out) if it does not exist yet. Several processes creating
// it at once end with one key.
func loadKeyFile(path string, size int, what string, out io.Writer) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, errShort(err)
		}
		key := make([]byte, size)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return loadKeyFile(path, size, what, out) // another node or process won the race
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
		fmt.Fprintf(out, "created a %s at %s\n", what, path)
		return key, nil
	}
	if err != nil {
		return nil, errShort(err)
	}
	if len(b) != size {
		return nil, fmt.Errorf("%s holds %d bytes; a %s is %d random bytes", path, len(b), what, size)
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

// videoStack is the media half of a serving process: the embedded SFU
// and TURN relay, or the LiveKit engine.
type videoStack struct {
	sfu     *sfu.SFU
	turn    *turn.Server
	livekit *livekit.Engine
}

// startVideo starts the SFU and the TURN relay, or with --video-engine
// livekit readies the LiveKit engine, which asks the vendor registry
// before each request (the SFU and relay are then not started). The relay
// may send only to the media address: it is a way into the SFU, not into
// the network.
func startVideo(v *videoConfig, key []byte) (*videoStack, error) {
	if v.Engine == engineLiveKit {
		if v.livekitAllow == nil {
			return nil, fmt.Errorf("--video-engine livekit: LiveKit is not in the vendor registry")
		}
		eng, err := livekit.New(livekit.Config{URL: v.LiveKitURL, APIKey: v.LiveKitKey, APISecret: v.LiveKitSecret, Allow: v.livekitAllow})
		if err != nil {
			return nil, fmt.Errorf("--livekit-url: %s", haven.ErrorMessage(err))
		}
		return &videoStack{livekit: eng}, nil
	}
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
	return &web.VideoConfig{SFU: v.sfu, TURN: v.turn, LiveKit: v.livekit, TokenKey: key, Spent: db.SpentTokens()}
}

// Close ends every call on the embedded SFU and stops the relay. LiveKit's
// rooms outlive this process: other nodes may be serving them.
func (v *videoStack) Close() {
	if v.sfu != nil {
		v.sfu.Close()
		v.turn.Close()
	}
}

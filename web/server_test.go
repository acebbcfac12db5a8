package web_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/web"
)

type readiness struct{ err error }

func (r readiness) Ready(context.Context) error { return r.err }

// listener is a loopback port for a test server, and its base URL, so
// the server's parts (identity's links) can know the URL before it exists.
func listener(tb testing.TB) (net.Listener, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln, "https://" + ln.Addr().String()
}

// serveOn serves s over TLS on ln, with a fresh self-signed certificate,
// until the test or benchmark ends, and returns the certificate.
func serveOn(tb testing.TB, s *web.Server, ln net.Listener) tls.Certificate {
	tb.Helper()
	cert, _, err := web.LoadOrCreateCertificate(tb.TempDir(), "", "")
	if err != nil {
		tb.Fatalf("certificate: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, web.TLSConfig(cert)) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("shutdown: %v", err)
		}
	})
	return cert
}

// newWebServer builds a server from cfg, discarding its log unless cfg
// names one.
func newWebServer(tb testing.TB, cfg web.Config) *web.Server {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := web.NewServer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// startServer serves s on a loopback port with a fresh self-signed
// certificate and returns its base URL and a client trusting nothing but it.
func startServer(t *testing.T, s *web.Server) (string, *http.Client, tls.Certificate) {
	t.Helper()
	ln, base := listener(t)
	cert := serveOn(t, s, ln)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	return base, client, cert
}

func newServer(t *testing.T, ready error) *web.Server {
	return newWebServer(t, web.Config{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Ready: readiness{ready}})
}

func TestTLS12HandshakeIsRefused(t *testing.T) {
	base, _, _ := startServer(t, newServer(t, nil))
	addr := strings.TrimPrefix(base, "https://")
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v})
		if err == nil {
			conn.Close()
			t.Fatalf("handshake with max version %x succeeded; only TLS 1.3 may", v)
		}
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS 1.3 handshake: %v", err)
	}
	defer conn.Close()
	if st := conn.ConnectionState(); st.Version != tls.VersionTLS13 {
		t.Fatalf("negotiated %x, want TLS 1.3", st.Version)
	}
}

// TestPostQuantumKeyExchangeIsNegotiated protects recorded traffic against
// a future quantum computer: a client offering X25519MLKEM768 must get it.
func TestPostQuantumKeyExchangeIsNegotiated(t *testing.T) {
	base, _, _ := startServer(t, newServer(t, nil))
	conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{
		InsecureSkipVerify: true, CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().CurveID; got != tls.X25519MLKEM768 {
		t.Fatalf("key exchange %v, want X25519MLKEM768", got)
	}
}

func TestSelfSignedCertificateIsECDSAP256ForLocalhost(t *testing.T) {
	_, _, cert := startServer(t, newServer(t, nil))
	leaf := cert.Leaf
	if leaf.PublicKeyAlgorithm.String() != "ECDSA" || leaf.VerifyHostname("localhost") != nil || leaf.VerifyHostname("127.0.0.1") != nil {
		t.Fatalf("certificate: alg %v names %v %v", leaf.PublicKeyAlgorithm, leaf.DNSNames, leaf.IPAddresses)
	}
	if fp := web.Fingerprint(cert); len(fp) != 95 {
		t.Fatalf("fingerprint %q", fp)
	}
}

func TestEveryResponseCarriesSecurityHeaders(t *testing.T) {
	base, client, _ := startServer(t, newServer(t, nil))
	want := map[string]string{
		"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "no-referrer",
		"Cache-Control":             "no-store",
		"X-Frame-Options":           "DENY",
	}
	for _, path := range []string{"/", "/healthz", "/readyz", "/metrics", "/no-such-page"} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", path, k, got, v)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, d := range []string{"script-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "default-src 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows inline or eval: %q", path, csp)
		}
		pp := resp.Header.Get("Permissions-Policy")
		if !strings.Contains(pp, "geolocation=()") {
			t.Errorf("%s: Permissions-Policy %q", path, pp)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no request id", path)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	base, client, _ := startServer(t, newServer(t, nil))
	for path, code := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 403} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	base, client, _ = startServer(t, newServer(t, haven.Errorf(haven.EUNAVAILABLE, "schema behind")))
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(body), "schema") {
		t.Fatalf("not-ready: %d %q", resp.StatusCode, body)
	}
}

func TestOversizedBodyIsRefused(t *testing.T) {
	s := newServer(t, nil)
	s.HandleForTest("POST /echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				return
			}
		}
	}))
	base, client, _ := startServer(t, s)
	resp, err := client.Post(base+"/echo", "application/octet-stream", strings.NewReader(strings.Repeat("x", web.MaxBodyBytes+1)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// A body without Content-Length (chunked) is cut off while streaming.
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte(strings.Repeat("y", web.MaxBodyBytes+10))); pw.Close() }()
	resp, err = client.Post(base+"/echo", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked status %d", resp.StatusCode)
	}
}

func TestSlowHeadersAreCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the header timeout")
	}
	base, _, _ := startServer(t, newServer(t, nil))
	conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")) // never finishes its headers
	conn.SetReadDeadline(time.Now().Add(web.ReadHeaderTimeout + 5*time.Second))
	buf := make([]byte, 512)
	n, _ := conn.Read(buf)
	if strings.Contains(string(buf[:n]), "200 OK") {
		t.Fatal("a request with unfinished headers was answered")
	}
	if _, err := conn.Read(buf); err == nil {
		t.Fatal("connection still open after the header timeout")
	}
}

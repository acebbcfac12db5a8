package web

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestSessionTicketsLiveHoursNotDays: a session ticket lets its client
// resume through SessionTicketKeys-1 rotations of a running server's
// ticket keys and not through one more, and that lifetime is hours (Go's
// own keys last 7 days).
func TestSessionTicketsLiveHoursNotDays(t *testing.T) {
	if SessionTicketLifetime > 12*time.Hour || SessionTicketLifetime < time.Hour {
		t.Fatalf("session tickets live %v", SessionTicketLifetime)
	}
	s, err := NewServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := LoadOrCreateCertificate(t.TempDir(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, TLSConfig(cert)) }()
	t.Cleanup(func() { cancel(); <-done })

	// Each client keeps its own tickets and opens a new connection for
	// every request, so DidResume tells whether its last ticket worked.
	newClient := func() *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(4)}}}
	}
	resumed := func(c *http.Client) bool {
		t.Helper()
		res, err := c.Get("https://" + ln.Addr().String() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body) // reads the ticket that follows the handshake
		res.Body.Close()
		return res.TLS.DidResume
	}
	early, late := newClient(), newClient()
	if resumed(early) || resumed(late) {
		t.Fatal("a first connection resumed")
	}
	keys := s.tickets.Load()
	for range SessionTicketKeys - 1 {
		keys.rotate()
	}
	if !resumed(early) {
		t.Fatalf("a ticket did not survive %d rotations", SessionTicketKeys-1)
	}
	keys.rotate()
	if resumed(late) {
		t.Fatalf("a ticket outlived %d rotations (%v)", SessionTicketKeys, SessionTicketLifetime)
	}
}

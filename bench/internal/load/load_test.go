package load

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRefusesTargetsOffThisMachine(t *testing.T) {
	for _, u := range []string{
		"https://10.0.0.1:8443/healthz",
		"https://192.168.1.10/healthz",
		"https://[2001:db8::1]:443/",
		"https://example.org/healthz",
		"https://localhost.example.org/",
		"https://127.0.0.1.nip.io/",
		"https://0.0.0.0:8443/",
		"http://127.0.0.1:8080/healthz", // not TLS
		"127.0.0.1:8443",
	} {
		if err := CheckLoopback(u); err == nil {
			t.Errorf("CheckLoopback(%q) = nil, want refusal", u)
		}
		if _, err := Run(context.Background(), Options{URL: u, Connections: 1, Duration: time.Second, MaxRequests: 1}); err == nil {
			t.Errorf("Run accepted %q", u)
		}
	}
	for _, u := range []string{"https://127.0.0.1:8443/healthz", "https://localhost:1/", "https://[::1]:8443/", "https://127.1.2.3/"} {
		if err := CheckLoopback(u); err != nil {
			t.Errorf("CheckLoopback(%q) = %v, want nil", u, err)
		}
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 50, 0.9: 90, 0.99: 99, 1: 100, 0.001: 1} {
		if got := Percentile(s, q); got != want {
			t.Errorf("Percentile(1..100, %v) = %d, want %d", q, got, want)
		}
	}
	if Percentile(nil, 0.5) != 0 {
		t.Error("Percentile of no samples is not 0")
	}
	if Percentile([]time.Duration{7}, 0.99) != 7 {
		t.Error("Percentile of one sample is not that sample")
	}
}

// tlsServer is a loopback HTTPS server that counts the connections it
// accepts.
func tlsServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestRunIsBoundedByCountAndKeepsConnectionsAlive(t *testing.T) {
	var served atomic.Int64
	srv, conns := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Bench") != "yes" {
			http.Error(w, "missing header", http.StatusBadRequest)
			return
		}
		served.Add(1)
		w.Write([]byte("ok"))
	})
	h := http.Header{}
	if err := ParseHeader(h, "X-Bench: yes"); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Options{
		URL:         srv.URL + "/healthz",
		Header:      h,
		Connections: 3,
		Duration:    time.Minute, // the count bound must end the run long before
		MaxRequests: 300,
		Warmup:      0,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 {
		t.Fatalf("%d errors", res.Errors)
	}
	if res.Requests < 1 || res.Requests > 300 {
		t.Fatalf("measured %d requests, want 1..300", res.Requests)
	}
	// Three priming requests, then at most MaxRequests measured ones.
	if got := served.Load(); got != res.Requests+3 {
		t.Fatalf("server answered %d requests, loadgen measured %d (+3 priming)", got, res.Requests)
	}
	if got := conns.Load(); got != 3 {
		t.Fatalf("server saw %d connections, want 3 kept alive", got)
	}
	if res.TLSVersion != "TLS 1.3" || res.Proto != "HTTP/1.1" {
		t.Fatalf("spoke %s over %s, want HTTP/1.1 over TLS 1.3", res.Proto, res.TLSVersion)
	}
	if !(res.P50us > 0 && res.P50us <= res.P90us && res.P90us <= res.P99us && res.P99us <= res.MaxUs) {
		t.Fatalf("percentiles out of order: %+v", res)
	}
}

func TestRunIsBoundedByTime(t *testing.T) {
	srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	res, err := Run(context.Background(), Options{
		URL:         srv.URL,
		Connections: 2,
		Duration:    200 * time.Millisecond,
		MaxRequests: 1 << 40, // the time bound must end the run
		Warmup:      50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests < 1 {
		t.Fatalf("no requests measured: %+v", res)
	}
}

func TestFailedAnswersAreErrorsNotLatencies(t *testing.T) {
	var n atomic.Int64
	srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		// The priming request succeeds; after it every other answer fails.
		if k := n.Add(1); k > 1 && k%2 == 0 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	})
	res, err := Run(context.Background(), Options{URL: srv.URL, Connections: 1, Duration: time.Minute, MaxRequests: 40})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 20 || res.Requests != 20 {
		t.Fatalf("measured %d successes and %d errors, want 20 of each", res.Requests, res.Errors)
	}
}

func TestRunFailsWhenTheServerIsDown(t *testing.T) {
	srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	if res, err := Run(context.Background(), Options{URL: srv.URL, Connections: 1, Duration: time.Second, MaxRequests: 5}); err == nil {
		t.Fatalf("Run against a failing server succeeded: %+v", res)
	}
}

// TestEachRequestGetsItsOwnToken: {{n}} in a body is replaced by a token
// no other request sends, so a row can create records that must be unique.
func TestEachRequestGetsItsOwnToken(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	dup := false
	srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		dup = dup || seen[string(b)] || strings.Contains(string(b), "{{n}}")
		seen[string(b)] = true
		mu.Unlock()
		w.Write([]byte("ok"))
	})
	res, err := Run(context.Background(), Options{URL: srv.URL, Method: "POST", Body: []byte(`{"mrn":"B-{{n}}","email":"b-{{n}}@x.example"}`),
		Connections: 3, Duration: time.Minute, MaxRequests: 100})
	if err != nil || res.Errors != 0 {
		t.Fatalf("%+v, %v", res, err)
	}
	if dup || len(seen) < 100 {
		t.Fatalf("%d distinct bodies for %d requests, or one sent twice or unreplaced", len(seen), res.Requests+3)
	}
}

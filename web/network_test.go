package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"haven/internal/testkit"
	"haven/web"
)

func prefixes(t *testing.T, list string) []netip.Prefix {
	t.Helper()
	p, err := web.ParsePrefixes(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestForwardedForIsBelievedOnlyFromTrustedProxies: behind a trusted
// proxy each client counts on its own address; from any other peer a
// forged X-Forwarded-For changes nothing, so an attacker cannot dodge the
// address limit (or frame someone else) by writing one.
func TestForwardedForIsBelievedOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	h := newWebServer(t, web.Config{Logger: slog.New(slog.NewTextHandler(logs, nil)), TrustedProxies: prefixes(t, "10.0.0.0/8, 2001:db8:ffff::/48"),
		Limits: &web.RateLimits{Counter: openDB(t, testkit.SQLite(t)), PerAddress: 1,
			Now: (&fixedClock{t: time.Date(2026, 5, 4, 10, 0, 30, 0, time.UTC)}).now}}).Handler() // no minute turns mid-test
	const proxy, attacker = "10.1.2.3:55000", "198.51.100.7:5000"
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }

	// Through the proxy: two clients, one request each, both served; the
	// log names the client, not the proxy.
	for _, c := range []string{"203.0.113.5", "203.0.113.6"} {
		if w := send(h, "GET", "/nowhere", proxy, xff(c)); w.Code == http.StatusTooManyRequests {
			t.Fatalf("client %s behind the trusted proxy held back by another's count", c)
		}
		if !strings.Contains(logs.String(), "client="+c) {
			t.Fatalf("log does not name client %s:\n%s", c, logs)
		}
	}
	// A client forging a hop before the proxy's own entry is still itself.
	if w := send(h, "GET", "/nowhere", proxy, xff("192.0.2.99, 203.0.113.5")); w.Code != http.StatusTooManyRequests {
		t.Fatalf("forged leftmost entry behind the proxy escaped the count: %d", w.Code)
	}
	// Chained trusted proxies are walked past.
	if w := send(h, "GET", "/nowhere", "[2001:db8:ffff::1]:443", xff("203.0.113.7, 10.9.9.9")); w.Code == http.StatusTooManyRequests {
		t.Fatal("client behind two trusted proxies counted as someone else")
	}

	// From an untrusted peer the header is ignored: the second request,
	// whatever it claims, is the same address's second.
	if w := send(h, "GET", "/nowhere", attacker, xff("203.0.113.50")); w.Code == http.StatusTooManyRequests {
		t.Fatal("first request refused")
	}
	if strings.Contains(logs.String(), "client=203.0.113.50") {
		t.Fatal("a forged X-Forwarded-For from an untrusted peer reached the log")
	}
	if w := send(h, "GET", "/nowhere", attacker, xff("203.0.113.51")); w.Code != http.StatusTooManyRequests {
		t.Fatalf("forged X-Forwarded-For from an untrusted peer escaped the address limit: %d", w.Code)
	}
}

// TestForwardedForReachesTheAuditOnlyFromTrustedProxies: the address a
// failed sign-in is audited with is the client's behind a trusted proxy,
// and the peer's when an untrusted peer forges the header.
func TestForwardedForReachesTheAuditOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	cfg := st.web
	cfg.TrustedProxies = prefixes(t, "10.0.0.0/8")
	h := newWebServer(t, cfg).Handler()
	login := func(peer, forwarded string) {
		form := url.Values{"email": {doctor}, "password": {"not-the-password"}}
		send(h, "POST", "/login", peer, map[string]string{"X-Forwarded-For": forwarded, "Sec-Fetch-Site": "same-origin",
			"Content-Type": "application/x-www-form-urlencoded", "Body": form.Encode()})
	}
	login("10.1.2.3:1000", "203.0.113.5")
	login("198.51.100.7:1000", "203.0.113.66")
	ctx := context.Background()
	seen := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !(seen["203.0.113.5"] && seen["198.51.100.7"]) {
		rows, err := st.db.SQL().QueryContext(ctx, `SELECT client_addr FROM audit_events`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a string
			rows.Scan(&a)
			seen[a] = true
		}
		rows.Close()
		time.Sleep(50 * time.Millisecond)
	}
	if !seen["203.0.113.5"] {
		t.Errorf("the client behind the trusted proxy is not in the audit log: %v", seen)
	}
	if !seen["198.51.100.7"] {
		t.Errorf("the untrusted peer is not in the audit log: %v", seen)
	}
	if seen["203.0.113.66"] || seen["10.1.2.3"] {
		t.Errorf("a forged or proxy address reached the audit log: %v", seen)
	}
}

// TestMetricsAllowListLetsOnlyItsNetworksIn: a scraper on an allowed
// network reads /metrics without the token, directly or through a trusted
// proxy; anyone else, forged X-Forwarded-For or not, is refused, and with
// a token configured still needs it.
func TestMetricsAllowListLetsOnlyItsNetworksIn(t *testing.T) {
	t.Parallel()
	for _, token := range []string{"", metricsToken} {
		h := newWebServer(t, web.Config{MetricsToken: token, MetricsAllow: prefixes(t, "192.0.2.0/28"),
			TrustedProxies: prefixes(t, "10.0.0.1")}).Handler()
		refused := http.StatusForbidden
		if token != "" {
			refused = http.StatusUnauthorized
		}
		for _, c := range []struct {
			peer, xff string
			want      int
		}{
			{"192.0.2.5:9000", "", http.StatusOK},
			{"10.0.0.1:9000", "192.0.2.6", http.StatusOK},
			{"198.51.100.7:9000", "", refused},
			{"198.51.100.7:9000", "192.0.2.5", refused},
			{"192.0.2.16:9000", "", refused},
			{"10.0.0.1:9000", "198.51.100.7", refused},
		} {
			w := send(h, "GET", "/metrics", c.peer, map[string]string{"X-Forwarded-For": c.xff})
			if w.Code != c.want || (w.Code == http.StatusOK) != strings.Contains(w.Body.String(), "go_goroutines") {
				t.Errorf("token %t, peer %s, forwarded %q: %d, want %d", token != "", c.peer, c.xff, w.Code, c.want)
			}
		}
	}
}

// TestParsePrefixesNamesTheBadEntry: a mistyped network is refused with
// its text, not dropped.
func TestParsePrefixesNamesTheBadEntry(t *testing.T) {
	got, err := web.ParsePrefixes(" 10.0.0.0/8 ,192.0.2.7, 2001:db8::/32,")
	if err != nil || len(got) != 3 || got[1].String() != "192.0.2.7/32" {
		t.Fatalf("good list: %v, %v", got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "10.0.0", "clinic.example", "::ffff:10.0.0.0/104"} {
		if _, err := web.ParsePrefixes("192.0.2.0/24," + bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

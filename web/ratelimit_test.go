package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/internal/testkit"
	"haven/store/sqlstore"
	"haven/web"
)

func openDB(t *testing.T, dsn string) *sqlstore.DB { return openDBB(t, dsn) }

func openDBB(t testing.TB, dsn string) *sqlstore.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// fixedClock is a clock standing at one moment until moved. The rate
// limiter's flush loop reads it from its own goroutine.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// send serves one request from addr (the connection's peer) through h,
// with hdr's headers and its "Body" as the body.
func send(h http.Handler, method, path, addr string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(hdr["Body"]))
	r.RemoteAddr = addr
	for k, v := range hdr {
		if k != "Body" {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// flushAll flushes the servers' rate limit counts in turn, and then the
// first again so that it reads back what the others flushed.
func flushAll(t *testing.T, servers ...*web.Server) {
	t.Helper()
	for _, s := range append(servers, servers[0]) {
		if err := s.FlushRateCounts(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTwoNodesTogetherOverTheLimitAreBothRefused: an attacker spreads
// requests over two nodes on one database so that neither node alone sees
// the limit; with nothing but the nodes' own flush loops, within a few
// flush intervals both refuse it with 429 and Retry-After, while another
// address still goes through on both.
func TestTwoNodesTogetherOverTheLimitAreBothRefused(t *testing.T) {
	t.Parallel()
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			const limit = 10
			// The window stands still mid-minute: on the wall clock a minute
			// turning between the burst and the polls starts a new count, and
			// no node would ever refuse (a CI rehearsal met it). The flush
			// loops still run on real time.
			clock := &fixedClock{t: time.Now().UTC().Truncate(time.Minute).Add(30 * time.Second)}
			node := func() http.Handler {
				return newWebServer(t, web.Config{Limits: &web.RateLimits{Counter: openDB(t, dsn), PerAddress: limit,
					FlushEvery: 20 * time.Millisecond, Now: clock.now}}).Handler()
			}
			a, b := node(), node()
			const attacker, other = "203.0.113.9:7000", "203.0.113.10:7000"
			for i := range limit/2 + 1 { // 6 on each node: under the limit alone, over it together
				for _, h := range []http.Handler{a, b} {
					if w := send(h, "GET", "/nowhere", attacker, nil); w.Code == http.StatusTooManyRequests {
						t.Fatalf("request %d refused by a node that has seen at most %d", i+1, i+1)
					}
				}
			}
			for name, h := range map[string]http.Handler{"a": a, "b": b} {
				// At most limit/2-1 polls: even counting them, no node alone
				// reaches the limit, so a refusal is the other node's count.
				for poll := 1; ; poll++ {
					time.Sleep(250 * time.Millisecond)
					w := send(h, "GET", "/api/v1/nowhere", attacker, nil)
					if w.Code == http.StatusTooManyRequests {
						if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
							t.Errorf("node %s: Retry-After %q", name, w.Header().Get("Retry-After"))
						}
						break
					}
					if poll == limit/2-1 {
						t.Fatalf("node %s still lets the attacker through after %d requests across two nodes", name, 2*(limit/2+1)+poll)
					}
				}
				if w := send(h, "GET", "/nowhere", other, nil); w.Code == http.StatusTooManyRequests {
					t.Errorf("node %s held back another address", name)
				}
			}
		})
	}
}

// TestAddressLimitIsSharedAcrossServers: two servers, each with its own
// handle on one database, count one address's requests together; the one
// over the limit gets 429 with Retry-After (the seconds to the window's
// end), another address is not held back, health checks are never
// counted, and the next window starts afresh.
func TestAddressLimitIsSharedAcrossServers(t *testing.T) {
	t.Parallel()
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			clock := &fixedClock{t: time.Date(2026, 5, 4, 10, 0, 15, 0, time.UTC)}
			node := func() *web.Server {
				return newWebServer(t, web.Config{Limits: &web.RateLimits{Counter: openDB(t, dsn), PerAddress: 4, Now: clock.now}})
			}
			sa, sb := node(), node()
			a, b := sa.Handler(), sb.Handler()
			const attacker, other = "198.51.100.7:5000", "198.51.100.8:5000"
			for i, h := range []http.Handler{a, b, a, b} {
				if w := send(h, "GET", "/healthz", attacker, nil); w.Code != http.StatusOK {
					t.Fatalf("health check %d: %d", i, w.Code)
				}
				if w := send(h, "GET", "/nowhere", attacker, nil); w.Code == http.StatusTooManyRequests {
					t.Fatalf("request %d within the limit refused", i+1)
				}
				flushAll(t, sa, sb) // as the flush loops would within FlushEvery
			}
			w := send(b, "GET", "/api/v1/nowhere", attacker, nil)
			if w.Code != http.StatusTooManyRequests {
				t.Fatalf("5th request across two servers: %d, want 429", w.Code)
			}
			if ra := w.Header().Get("Retry-After"); ra != "45" {
				t.Errorf("Retry-After = %q, want the 45 s left in the window", ra)
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			json.Unmarshal(w.Body.Bytes(), &body)
			if body.Error.Code != "rate_limited" || body.Error.Message == "" {
				t.Errorf("429 body: %s", w.Body)
			}
			flushAll(t, sa, sb)
			if w := send(a, "GET", "/", attacker, nil); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
				t.Errorf("a page over the limit: %d %q", w.Code, w.Header().Get("Retry-After"))
			}
			if w := send(a, "GET", "/healthz", attacker, nil); w.Code != http.StatusOK {
				t.Errorf("health check over the limit: %d", w.Code)
			}
			if w := send(a, "GET", "/static/app.css", attacker, nil); w.Code == http.StatusTooManyRequests {
				t.Errorf("a static asset over the limit: %d", w.Code)
			}
			if w := send(a, "GET", "/nowhere", other, nil); w.Code == http.StatusTooManyRequests {
				t.Error("another address was held back")
			}
			clock.add(45 * time.Second)
			if w := send(a, "GET", "/nowhere", attacker, nil); w.Code == http.StatusTooManyRequests {
				t.Error("still refused in the next window")
			}
		})
	}
}

// TestIPv6AddressesCountByTheirSlash64: one host cannot escape the limit
// by stepping through the addresses of its /64.
func TestIPv6AddressesCountByTheirSlash64(t *testing.T) {
	t.Parallel()
	db := openDB(t, testkit.SQLite(t))
	clock := &fixedClock{t: time.Date(2026, 5, 4, 10, 0, 30, 0, time.UTC)} // no minute turns mid-test
	h := newWebServer(t, web.Config{Limits: &web.RateLimits{Counter: db, PerAddress: 3, Now: clock.now}}).Handler()
	for i := range 3 {
		send(h, "GET", "/nowhere", "[2001:db8:1:2::"+strconv.Itoa(i+1)+"]:443", nil)
	}
	if w := send(h, "GET", "/nowhere", "[2001:db8:1:2::99]:443", nil); w.Code != http.StatusTooManyRequests {
		t.Fatalf("4th address of one /64: %d, want 429", w.Code)
	}
	if w := send(h, "GET", "/nowhere", "[2001:db8:1:3::1]:443", nil); w.Code == http.StatusTooManyRequests {
		t.Fatal("another /64 held back")
	}
}

// TestUserLimitIsSharedAcrossServersAndPerUser: a signed-in user's API
// requests count across two servers on one database; over the limit they
// get 429 with Retry-After, while another user at the same address, and
// the same user's pages, go on.
func TestUserLimitIsSharedAcrossServersAndPerUser(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	doc, front := st.client(firefox), st.client(firefox)
	doc.signIn(doctor, "")
	front.signIn(desk, "")
	clock := &fixedClock{t: time.Date(2026, 5, 4, 10, 0, 50, 0, time.UTC)}
	node := func() *web.Server {
		cfg := st.web
		cfg.Limits = &web.RateLimits{Counter: st.db, PerUser: 3, Now: clock.now}
		return newWebServer(t, cfg)
	}
	sa, sb := node(), node()
	a, b := sa.Handler(), sb.Handler()
	cookie := func(c *client) map[string]string {
		return map[string]string{"User-Agent": firefox, "Cookie": web.SessionCookie + "=" + c.cookie(web.SessionCookie).Value +
			"; " + web.DeviceCookie + "=" + c.cookie(web.DeviceCookie).Value}
	}
	const addr = "127.0.0.1:4000" // where the sessions began
	for i, h := range []http.Handler{a, b, a} {
		if w := send(h, "GET", "/api/v1/session", addr, cookie(doc)); w.Code != http.StatusOK {
			t.Fatalf("API request %d within the limit: %d %s", i+1, w.Code, w.Body)
		}
		flushAll(t, sa, sb)
	}
	w := send(b, "GET", "/api/v1/session", addr, cookie(doc))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "10" {
		t.Fatalf("4th API request across two servers: %d Retry-After %q, want 429 and 10", w.Code, w.Header().Get("Retry-After"))
	}
	// The FHIR API counts the same, and answers as FHIR does: an
	// OperationOutcome, throttled.
	w = send(a, "GET", "/fhir/R4/metadata", addr, cookie(doc))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "application/fhir+json") ||
		!strings.Contains(w.Body.String(), `"OperationOutcome"`) || !strings.Contains(w.Body.String(), `"throttled"`) {
		t.Fatalf("a FHIR request over the limit: %d Retry-After %q %s %s", w.Code, w.Header().Get("Retry-After"), w.Header().Get("Content-Type"), w.Body)
	}
	if w := send(a, "GET", "/api/v1/session", addr, cookie(front)); w.Code != http.StatusOK {
		t.Errorf("another user at the same address: %d", w.Code)
	}
	if w := send(a, "GET", "/app", addr, cookie(doc)); w.Code == http.StatusTooManyRequests {
		t.Error("a page counted against the API limit")
	}
	clock.add(10 * time.Second)
	if w := send(a, "GET", "/api/v1/session", addr, cookie(doc)); w.Code != http.StatusOK {
		t.Errorf("next window: %d", w.Code)
	}
}

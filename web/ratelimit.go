package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"haven"
)

// Rate limits: every request counts against its client address (an IPv4
// address alone, an IPv6 address by its /64, as the sign-in throttle groups
// them), and every API request of a signed-in user also against that user.
// Counts are kept per fixed window and shared through the database
// (RequestCounter), so several servers on one database share them. A
// request over a limit is answered 429 with Retry-After: the seconds until
// the window ends.
//
// Each node counts in memory and flushes what it counted to the database
// every FlushEvery (100 ms by default) in one statement, reading back the
// shared totals: a write per request would cost the audited chart read a
// large share of its speed (0.3-0.5 ms, on SQLite a second write
// transaction per page view). A node decides on the shared total as of its
// last flush plus what it counted since. The error is one-sided and
// bounded: a node never refuses a client below the limit, and lets through
// at most what the client got through the other nodes in the last two
// flush intervals (their counts reach the table within one interval, and
// this node reads them back within the next). With N nodes and a client
// sending r requests a second to each, that is at most (N-1)·r·2·FlushEvery
// over the limit in a window — 20 requests at 100 ms, 50 per second per
// node and two nodes, against a limit of thousands a minute. A node
// forgets keys idle for a flush interval while under half their limit (so
// a flood from many addresses cannot fill its memory); such a key's next
// requests count from 0 here for at most one interval, which cannot carry
// it past the limit unless it sends half the limit in that interval.

// RequestCounter keeps the shared counts: every node sees the same
// (sqlstore.DB).
type RequestCounter interface {
	// AddRequestCounts adds adds[i] to keys[i]'s count in the window
	// beginning at window and returns each key's new count, in order.
	AddRequestCounts(ctx context.Context, window time.Time, keys []string, adds []int) ([]int, error)
	// PurgeRequestCounts drops the counts of windows begun before cutoff.
	PurgeRequestCounts(ctx context.Context, cutoff time.Time) (int, error)
}

// RateLimits configures the limits. A zero limit is no limit.
type RateLimits struct {
	Counter    RequestCounter
	PerAddress int              // requests per Window from one client address
	PerUser    int              // API requests per Window by one signed-in user
	PerClient  int              // token and FHIR requests per Window by one OAuth client (smart.go)
	Window     time.Duration    // default DefaultRateWindow
	FlushEvery time.Duration    // how often counts go to the database; default DefaultRateFlush
	Now        func() time.Time // the clock; time.Now when nil
}

// The limits are on by default, at ceilings no clinic's normal use comes
// near: 12000 a minute per address (a whole clinic behind one NAT address)
// and 6000 per user (a script registering patients through the API as fast
// as the database takes them). They stop a flood or a runaway script, not
// a clinic. Counting costs a map update per request and a statement per
// node every DefaultRateFlush.
const (
	DefaultRateWindow     = time.Minute
	DefaultRateFlush      = 100 * time.Millisecond
	DefaultPerAddressRate = 12000
	DefaultPerUserRate    = 6000
)

// unlimitedPaths are never counted: a load balancer's health checks must
// not use up, or be refused by, the address limit. Nor are the static
// assets (/static/), fingerprinted and cached: counting one costs more than
// serving it, and a page's assets would spend its allowance.
var unlimitedPaths = map[string]bool{"/healthz": true, "/readyz": true}

type rateLimiter struct {
	RateLimits
	logger  *slog.Logger
	refused *prometheus.CounterVec
	purged  atomic.Int64 // the window (Unix µs) this node last purged before

	mu       sync.Mutex
	counts   map[string]*rateCount
	flushing bool // a flush loop runs (it stops when nothing is left to flush)
}

// rateCount is one key's count in one window as this node knows it.
type rateCount struct {
	window  int64 // the window's start, Unix µs
	limit   int
	shared  int // the shared total as of this node's last flush
	pending int // counted here since, not yet in the database
}

func newRateLimiter(cfg *RateLimits, reg *prometheus.Registry, logger *slog.Logger) (*rateLimiter, error) {
	if cfg == nil || (cfg.PerAddress <= 0 && cfg.PerUser <= 0 && cfg.PerClient <= 0) {
		return nil, nil
	}
	if cfg.Counter == nil {
		return nil, haven.Errorf(haven.EINVALID, "web: rate limits need a counter")
	}
	l := &rateLimiter{RateLimits: *cfg, logger: logger, counts: map[string]*rateCount{}}
	if l.Window <= 0 {
		l.Window = DefaultRateWindow
	}
	if l.FlushEvery <= 0 {
		l.FlushEvery = DefaultRateFlush
	}
	if l.Now == nil {
		l.Now = time.Now
	}
	l.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "haven_http_rate_limited_total", Help: "Requests refused by a rate limit, by limit (address, user or client).",
	}, []string{"limit"})
	reg.MustRegister(l.refused)
	return l, nil
}

// count counts one request against key in window and returns the total as
// this node knows it: the shared count at its last flush and its own since.
// It starts the flush loop when none runs.
func (l *rateLimiter) count(key string, window time.Time, limit int) int {
	w := window.UnixMicro()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.counts[key]
	// A clock stepped back keeps counting in the newer window rather than
	// lose its total.
	if c == nil || c.window < w {
		c = &rateCount{window: w}
		l.counts[key] = c
	}
	c.limit = limit
	c.pending++
	if !l.flushing {
		l.flushing = true
		go l.flushLoop()
	}
	return c.shared + c.pending
}

// flushLoop flushes every FlushEvery until a flush leaves nothing pending,
// so an idle node runs no goroutine and sends no statement.
func (l *rateLimiter) flushLoop() {
	t := time.NewTicker(l.FlushEvery)
	defer t.Stop()
	for range t.C {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := l.flush(ctx)
		cancel()
		if err != nil {
			l.logger.Warn("rate limit counts not flushed; the requests they counted stay let through", "err", err)
		}
		l.mu.Lock()
		idle := true
		for _, c := range l.counts {
			if c.pending > 0 {
				idle = false
				break
			}
		}
		if idle {
			l.flushing = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
	}
}

// flush sends what this node counted since its last flush to the database
// and reads back the shared totals, one statement per window counted in
// (one, or two at a window's turn). Keys at half their limit or more are
// read back even with nothing new here, so a client near the limit is
// seen as the other nodes count it. A failed flush drops its counts, as a
// failed count let its request through before counting was batched: the
// database being slow must not turn into refusing everyone.
func (l *rateLimiter) flush(ctx context.Context) error {
	now := l.Now()
	current := now.Truncate(l.Window).UnixMicro()
	type batch struct {
		keys []string
		adds []int
	}
	batches := map[int64]*batch{}
	l.mu.Lock()
	for k, c := range l.counts {
		if c.window < current && c.pending == 0 {
			delete(l.counts, k) // a past window limits nothing
			continue
		}
		if c.pending == 0 && 2*c.shared < c.limit {
			// Idle since the last flush and far from its limit: forget
			// it, so that memory holds only the keys of the last interval
			// and those near their limits, however many addresses a flood
			// comes from. Its next request starts from 0 here and reads
			// the shared total back at the next flush.
			delete(l.counts, k)
			continue
		}
		if c.pending == 0 && c.window < current {
			continue
		}
		b := batches[c.window]
		if b == nil {
			b = &batch{}
			batches[c.window] = b
		}
		b.keys = append(b.keys, k)
		b.adds = append(b.adds, c.pending)
	}
	l.mu.Unlock()
	var errs []error
	for w, b := range batches {
		totals, err := l.Counter.AddRequestCounts(ctx, time.UnixMicro(w), b.keys, b.adds)
		l.mu.Lock()
		for i, k := range b.keys {
			c := l.counts[k]
			if c == nil || c.window != w {
				continue
			}
			c.pending -= b.adds[i] // requests counted during the statement stay pending
			if err == nil {
				c.shared = totals[i]
			}
			if w < current && c.pending == 0 {
				delete(l.counts, k)
			}
		}
		l.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if l.purged.Swap(current) != current {
		// This node's first flush in a new window clears the windows
		// before the last one.
		if _, err := l.Counter.PurgeRequestCounts(ctx, time.UnixMicro(current).Add(-l.Window)); err != nil {
			errs = append(errs, fmt.Errorf("purging rate limit counts: %w", err))
		}
	}
	return errors.Join(errs...)
}

// FlushRateCounts sends the counts this server has not yet shared to the
// database and reads back the shared totals of keys near their limits. The
// flush loop does it every FlushEvery; Serve does it once on shutdown so a
// stopping node's counts are not lost, and tests call it to make two
// servers' counts meet at a chosen moment.
func (s *Server) FlushRateCounts(ctx context.Context) error {
	if s.limits == nil {
		return nil
	}
	return s.limits.flush(ctx)
}

// rateLimitedError is ETOOMANY with the wait until the window ends.
type rateLimitedError struct {
	err  *haven.Error
	wait time.Duration
}

func (e *rateLimitedError) Error() string { return e.err.Error() }
func (e *rateLimitedError) Unwrap() error { return e.err }

// countRequest counts one request against key and returns a
// rateLimitedError when it is over limit.
func (s *Server) countRequest(key string, limit int, what string) error {
	l := s.limits
	now := l.Now()
	window := now.Truncate(l.Window)
	if l.count(key, window, limit) <= limit {
		return nil
	}
	l.refused.WithLabelValues(what).Inc()
	wait := window.Add(l.Window).Sub(now)
	msg := "too many requests from your network; please wait a moment and try again"
	if what == "user" {
		msg = "too many requests from your account; please wait a moment and try again"
	}
	return &rateLimitedError{err: haven.Errorf(haven.ETOOMANY, "%s", msg), wait: wait}
}

// limitAddress counts every request against its client address. It sits
// before sign-in, so a flood costs one counter update per request and no
// session lookup.
func (s *Server) limitAddress(next http.Handler) http.Handler {
	if s.limits == nil || s.limits.PerAddress <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !unlimitedPaths[r.URL.Path] && !strings.HasPrefix(r.URL.Path, "/static/") {
			if err := s.countRequest(addressRateKey(clientAddr(r)), s.limits.PerAddress, "address"); err != nil {
				s.limitedAnswer(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// limitUser counts every API request of a signed-in user against them.
func (s *Server) limitUser(next http.Handler) http.Handler {
	if s.limits == nil || s.limits.PerUser <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := haven.ActorFromContext(r.Context()); ok && a.UserID != "" && isAPIPath(r.URL.Path) {
			if err := s.countRequest("user:"+a.UserID, s.limits.PerUser, "user"); err != nil {
				s.limitedAnswer(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func isAPIPath(p string) bool {
	return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/fhir/") || strings.HasPrefix(p, "/oauth2/")
}

// limitedAnswer answers a refused request: an OperationOutcome for the
// FHIR API, JSON for the other APIs, a page for a browser.
func (s *Server) limitedAnswer(w http.ResponseWriter, r *http.Request, err error) {
	if strings.HasPrefix(r.URL.Path, FHIRBase+"/") {
		s.fhirError(w, r, err)
		return
	}
	if isAPIPath(r.URL.Path) || r.URL.Path == "/metrics" {
		s.apiError(w, r, err)
		return
	}
	s.pageError(w, r, err)
}

// addressRateKey groups an IPv6 client by its /64, which one host or
// household controls whole; an IPv4 address stands alone.
func addressRateKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return "addr:raw:" + addr
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + a.String()
}

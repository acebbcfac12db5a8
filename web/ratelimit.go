package web

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"haven"
)

// Rate limits: every request counts against its client address (an IPv4
// address alone, an IPv6 address by its /64, as the sign-in throttle groups
// them), and every API request of a signed-in user also against that user.
// Counts are kept per fixed window in the database (RequestCounter), so
// several servers on one database share them. A request over a limit is
// answered 429 with Retry-After: the seconds until the window ends.

// RequestCounter counts requests per key and window where every node sees
// the same counts (sqlstore.DB).
type RequestCounter interface {
	// CountRequest adds one to key's count in the window beginning at
	// window and returns the new count.
	CountRequest(ctx context.Context, key string, window time.Time) (int, error)
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
	Now        func() time.Time // the clock; time.Now when nil
}

// The limits are off by default. Counting is one write to the database
// per request (an upsert of the window's row: 0.3-0.5 ms on either
// database, BenchmarkAddressLimit), which would cost the audited chart
// read a large share of its speed, on SQLite a second write transaction
// per page view. A deployment that wants a ceiling on floods sets them;
// values no clinic's normal use comes near are 12000 a minute per address
// (a whole clinic behind one NAT address) and 6000 per user (a script
// registering patients through the API as fast as the database takes
// them). Counting in memory and flushing to the database in batches would
// make them cheap enough to be on by default; it is not done yet.
const (
	DefaultRateWindow     = time.Minute
	DefaultPerAddressRate = 0
	DefaultPerUserRate    = 0
)

// unlimitedPaths are never counted: a load balancer's health checks must
// not use up, or be refused by, the address limit. Nor are the static
// assets (/static/), fingerprinted and cached: counting one costs more than
// serving it, and a page's assets would spend its allowance.
var unlimitedPaths = map[string]bool{"/healthz": true, "/readyz": true}

type rateLimiter struct {
	RateLimits
	purged  atomic.Int64 // the window (Unix µs) this node last purged before
	refused *prometheus.CounterVec
}

func newRateLimiter(cfg *RateLimits, reg *prometheus.Registry) (*rateLimiter, error) {
	if cfg == nil || (cfg.PerAddress <= 0 && cfg.PerUser <= 0 && cfg.PerClient <= 0) {
		return nil, nil
	}
	if cfg.Counter == nil {
		return nil, haven.Errorf(haven.EINVALID, "web: rate limits need a counter")
	}
	l := &rateLimiter{RateLimits: *cfg}
	if l.Window <= 0 {
		l.Window = DefaultRateWindow
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

// rateLimitedError is ETOOMANY with the wait until the window ends.
type rateLimitedError struct {
	err  *haven.Error
	wait time.Duration
}

func (e *rateLimitedError) Error() string { return e.err.Error() }
func (e *rateLimitedError) Unwrap() error { return e.err }

// countRequest counts one request against key and returns a rateLimitedError when
// it is over limit. A counter that fails lets the request through (and is
// logged): the database being slow must not turn into refusing everyone.
func (s *Server) countRequest(r *http.Request, key string, limit int, what string) error {
	l := s.limits
	now := l.Now()
	window := now.Truncate(l.Window)
	ctx := r.Context()
	n, err := l.Counter.CountRequest(ctx, key, window)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.Logger.Warn("rate limit count failed; request let through", "request_id", RequestID(ctx), "limit", what, "err", err)
		}
		return nil
	}
	if w := window.UnixMicro(); l.purged.Swap(w) != w {
		// The first request of a new window on this node clears the
		// windows before the last one.
		go func(cutoff time.Time) {
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, err := l.Counter.PurgeRequestCounts(pctx, cutoff); err != nil {
				s.Logger.Warn("purging rate limit counts", "err", err)
			}
		}(window.Add(-l.Window))
	}
	if n <= limit {
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
			if err := s.countRequest(r, addressRateKey(clientAddr(r)), s.limits.PerAddress, "address"); err != nil {
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
			if err := s.countRequest(r, "user:"+a.UserID, s.limits.PerUser, "user"); err != nil {
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

// limitedAnswer answers a refused request: JSON for the API, a page for a
// browser.
func (s *Server) limitedAnswer(w http.ResponseWriter, r *http.Request, err error) {
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

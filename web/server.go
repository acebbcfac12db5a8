// Package web is Haven's HTTP surface: the TLS 1.3 server, the middleware
// every request passes (request ids, security headers, body limits, logs and
// metrics without PHI), health endpoints, pages and the JSON API.
//
// Handlers authenticate and then call services with an Actor in the context;
// they never open sealed values themselves and never hold the keyring.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"haven"
	"haven/identity"
	"haven/service"
	"haven/smart"
	"haven/video/livekit"
	"haven/video/sfu"
)

// Limits against slow and oversized clients.
const (
	MaxBodyBytes      = 1 << 20 // default request body limit; upload routes raise their own
	MaxHeaderBytes    = 32 << 10
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 60 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	ShutdownTimeout   = 20 * time.Second
	TransferTimeout   = 30 * time.Minute // file uploads and downloads
)

// Readiness is what /readyz asks: is the database reachable and current.
type Readiness interface {
	Ready(ctx context.Context) error
}

// Config is what a server is built from. The process that runs it
// (cmd/haven) constructs the services, owns them and their background
// work, and closes them after the server has stopped; the server only
// calls them. A part left nil is off: its routes are not registered.
type Config struct {
	Logger *slog.Logger
	Ready  Readiness
	// Service serves charts, files, care teams, break-glass, the audit
	// log and the compliance tools, and with Video the visits.
	Service *service.Service
	// Identity serves sign-in, sessions, accounts and registration.
	Identity *identity.Service
	// Passkeys serves passkeys and security keys; it needs Identity.
	Passkeys *identity.Passkeys
	// Video is the visits' media side; it needs Service.
	Video *VideoConfig
	// AuditVerifierKey is the audit checkpoint verifier key, shown with a
	// patient's access history so their browser can check checkpoints.
	AuditVerifierKey string
	// MetricsToken is the bearer token /metrics asks for; with none,
	// /metrics answers no one (metrics.go).
	MetricsToken string
	// MetricsAllow lists the networks a scraper may reach /metrics from
	// without the token (metrics.go).
	MetricsAllow []netip.Prefix
	// TrustedProxies are the load balancers whose X-Forwarded-For is
	// believed (network.go); with none, the client is the connection's peer.
	TrustedProxies []netip.Prefix
	// Limits are the request rate limits (ratelimit.go); nil is none.
	Limits *RateLimits
	// SMART is the SMART on FHIR authorization server (smart.go); nil
	// serves no apps, and the FHIR API takes sessions only.
	SMART *smart.Service
	// IntegrationURL is the public https:// origin of the integration
	// listener (integration.go), where clients present certificates;
	// "" when the deployment serves none.
	IntegrationURL string
}

// Server routes requests through Haven's middleware to its handlers.
type Server struct {
	Logger   *slog.Logger
	Ready    Readiness
	mux      *http.ServeMux
	uploads  *http.ServeMux // routes allowed bodies larger than MaxBodyBytes
	registry *prometheus.Registry
	metrics  *httpMetrics
	scrape   http.Handler // the Prometheus exposition of registry
	token    string       // the metrics bearer token
	allow    []netip.Prefix
	trusted  []netip.Prefix
	limits   *rateLimiter
	assets   http.Handler

	svc      *service.Service
	id       *identity.Service
	passkeys *identity.Passkeys
	calls    http.Handler // the call WebSocket (package video)
	sfu      *sfu.SFU
	livekit  *livekit.Engine // with --video-engine livekit, instead of sfu
	now      func() time.Time
	auditKey string

	tickets atomic.Pointer[ticketKeys] // the session ticket keys Serve rotates
	smart   *smart.Service             // the SMART authorization server, or nil
	mtlsURL string                     // Config.IntegrationURL
}

// NewServer returns a server with every route of the table (routes.go)
// whose part cfg provides.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Passkeys != nil && cfg.Identity == nil {
		return nil, haven.Errorf(haven.EINVALID, "web: passkeys need identity")
	}
	if cfg.Video != nil && cfg.Service == nil {
		return nil, haven.Errorf(haven.EINVALID, "web: visits need the service")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	s := &Server{Logger: cfg.Logger, Ready: cfg.Ready, mux: http.NewServeMux(), uploads: http.NewServeMux(), registry: reg,
		metrics: newHTTPMetrics(reg), scrape: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), token: cfg.MetricsToken,
		assets: staticHandler(), svc: cfg.Service, smart: cfg.SMART, id: cfg.Identity, passkeys: cfg.Passkeys, auditKey: cfg.AuditVerifierKey, now: time.Now,
		allow: cfg.MetricsAllow, trusted: cfg.TrustedProxies, mtlsURL: strings.TrimRight(cfg.IntegrationURL, "/")}
	var err error
	if s.limits, err = newRateLimiter(cfg.Limits, reg, cfg.Logger); err != nil {
		return nil, err
	}
	if cfg.Video != nil {
		if err := s.useVideo(*cfg.Video); err != nil {
			return nil, err
		}
	}
	s.register()
	return s, nil
}

// Registry is where other packages register their Prometheus metrics.
// Metric labels carry route patterns and codes, never ids or PHI.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// uploadLimit is a route's body limit, found by matching the request
// against the upload routes.
type uploadLimit int64

func (uploadLimit) ServeHTTP(http.ResponseWriter, *http.Request) {}

// bodyLimit returns the body limit for r.
func (s *Server) bodyLimit(r *http.Request) int64 {
	if h, pattern := s.uploads.Handler(r); pattern != "" {
		return int64(h.(uploadLimit))
	}
	return MaxBodyBytes
}

// Handler returns the full middleware chain around the routes.
func (s *Server) Handler() http.Handler {
	var h http.Handler = s.mux
	h = s.limitBody(h)
	h = s.limitUser(h) // per signed-in user on the API (ratelimit.go)
	h = s.observe(h)
	h = s.withIdentity(h) // sessions and cross-origin refusal (auth.go)
	h = s.limitAddress(h) // per client address, before any session lookup (ratelimit.go)
	h = securityHeaders(h)
	h = s.withClientAddr(h) // the client's address, through trusted proxies only (network.go)
	h = withRequestID(h)
	h = s.recoverPanics(h)
	return h
}

// Serve serves HTTPS on ln until ctx is cancelled, then shuts down
// gracefully: new connections are refused and requests in flight get
// ShutdownTimeout to finish, so nothing acknowledged is cut off.
func (s *Server) Serve(ctx context.Context, ln net.Listener, cfg *tls.Config) error {
	return s.serve(ctx, ln, cfg, s.Handler(), true)
}

// serve is Serve and ServeIntegration: h on ln with cfg. keep stores the
// listener's session ticket keys for the tests that look at them.
func (s *Server) serve(ctx context.Context, ln net.Listener, cfg *tls.Config, h http.Handler, keep bool) error {
	// Session ticket keys of this server's own, rotated (tlscert.go).
	cfg = cfg.Clone()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	keys := rotateTicketKeys(ctx, cfg)
	if keep {
		s.tickets.Store(keys)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         cfg,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, cfg)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if ferr := s.FlushRateCounts(sctx); ferr != nil {
		s.Logger.Warn("flushing rate limit counts at shutdown", "err", ferr)
	}
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.Ready != nil {
		if err := s.Ready.Ready(ctx); err != nil {
			s.Logger.Warn("not ready", "err", err, "request_id", RequestID(r.Context()))
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready\n"))
			return
		}
	}
	w.Write([]byte("ready\n"))
}

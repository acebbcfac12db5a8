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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

// Server routes requests through Haven's middleware to its handlers.
type Server struct {
	Logger   *slog.Logger
	Ready    Readiness
	mux      *routeMux
	uploads  *http.ServeMux // routes allowed bodies larger than MaxBodyBytes
	auth     *authState     // sign-in and sessions, once UseIdentity is called
	registry *prometheus.Registry
	metrics  *httpMetrics
}

// NewServer returns a server with the health and metrics endpoints
// registered. Callers add pages and API routes with Handle.
func NewServer(logger *slog.Logger, ready Readiness) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	s := &Server{Logger: logger, Ready: ready, mux: &routeMux{ServeMux: http.NewServeMux()}, uploads: http.NewServeMux(), registry: reg, metrics: newHTTPMetrics(reg)}
	s.mux.HandleFunc("GET /healthz", s.handleHealthz)
	s.mux.HandleFunc("GET /readyz", s.handleReadyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /{$}", s.handleHome)
	s.mux.Handle("GET /static/", staticHandler())
	s.mux.HandleFunc("GET "+OpenAPIPath, handleOpenAPI) // the API's description (openapi.go)
	return s
}

// routeMux is the server's ServeMux, remembering every pattern registered
// on it. The API's OpenAPI document is held against this list by a test,
// so a route cannot be added, or one described, without the other.
type routeMux struct {
	*http.ServeMux
	mu       sync.Mutex
	patterns []string
}

// Handle registers h as http.ServeMux does, then records the pattern; a
// pattern the ServeMux refuses panics before it is recorded.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.record(pattern)
}

// HandleFunc registers f as http.ServeMux does, then records the pattern.
func (m *routeMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.ServeMux.HandleFunc(pattern, f)
	m.record(pattern)
}

func (m *routeMux) record(pattern string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.patterns = append(m.patterns, pattern)
}

// Registry is where other packages register their Prometheus metrics.
// Metric labels carry route patterns and codes, never ids or PHI.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Handle registers a handler for a ServeMux pattern such as
// "GET /api/v1/patients/{id}".
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// uploadLimit is a route's body limit, found by matching the request
// against the upload routes.
type uploadLimit int64

func (uploadLimit) ServeHTTP(http.ResponseWriter, *http.Request) {}

// HandleUpload registers h for pattern with a body limit of max bytes
// instead of MaxBodyBytes. Such handlers must stream the body.
func (s *Server) HandleUpload(pattern string, max int64, h http.Handler) {
	s.uploads.Handle(pattern, uploadLimit(max))
	s.mux.Handle(pattern, h)
}

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
	h = s.observe(h)
	h = s.withIdentity(h) // sessions and cross-origin refusal (auth.go)
	h = securityHeaders(h)
	h = withRequestID(h)
	h = s.recoverPanics(h)
	return h
}

// Serve serves HTTPS on ln until ctx is cancelled, then shuts down
// gracefully: new connections are refused and requests in flight get
// ShutdownTimeout to finish, so nothing acknowledged is cut off.
func (s *Server) Serve(ctx context.Context, ln net.Listener, cfg *tls.Config) error {
	srv := &http.Server{
		Handler:           s.Handler(),
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

package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"haven"
)

// Metrics are labelled by route pattern, method and status, so no label
// carries an id, PHI or anything else a client chooses freely: a label
// value a client could vary would let it grow the server's memory one
// series at a time.

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "haven_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "haven_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// OtherMethod is the method label of every request whose method is not
// one of HTTP's standard ones.
const OtherMethod = "OTHER"

// methodLabel is r.Method as a metric label: the standard methods as they
// are, any other (a client may send any token) folded into OtherMethod.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return OtherMethod
}

// MinMetricsToken is the shortest metrics token accepted: it stands
// between the internet and the server's internals, so it must not be
// guessable.
const MinMetricsToken = 16

// handleMetrics serves the Prometheus metrics to a scraper that presents
// the metrics token as a bearer token, or that connects from a network on
// the metrics allow-list (the client address as network.go finds it, so a
// forwarded address counts only through a trusted proxy). With neither
// configured, metrics are off: 403 for everyone, since a server behind a
// proxy on the same machine cannot tell a local scraper from the internet
// by address.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if len(s.allow) > 0 {
		if a, err := netip.ParseAddr(clientAddr(r)); err == nil && inAny(a, s.allow) {
			s.scrape.ServeHTTP(w, r)
			return
		}
	}
	if s.token == "" {
		s.apiError(w, r, haven.Errorf(haven.EFORBIDDEN, "metrics are off for this address; set a metrics token or allow-list to scrape them"))
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	// Hashes of equal length, so the comparison takes the same time
	// whatever was sent.
	want, sent := sha256.Sum256([]byte(s.token)), sha256.Sum256([]byte(strings.TrimSpace(got)))
	if !ok || subtle.ConstantTimeCompare(want[:], sent[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="haven metrics"`)
		s.apiError(w, r, haven.Errorf(haven.EUNAUTHORIZED, "metrics need the metrics token as a bearer token"))
		return
	}
	s.scrape.ServeHTTP(w, r)
}

package web

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
)

// The integration listener: a second HTTPS listener for systems, not
// people, that asks every client for a certificate (mutual TLS, RFC
// 8705). It serves only the integration endpoints (the token and
// revocation endpoints, the FHIR API and POST /api/v1/hl7) through the
// same middleware as the main listener. Asking for a certificate on the
// main listener would make a browser holding any certificate (a smart
// card, a company's device certificate) ask its user to pick one on every
// visit; on a listener of its own, people never meet the question.
//
// It asks for a certificate and does not verify it against a CA: a
// client's certificate is pinned at registration by its thumbprint
// (package smart for apps and backend systems, the lab registry for
// labs), and the handshake proves the client holds its key. A connection
// without one is served as on the main listener; only what is bound to a
// certificate is refused without it.

// IntegrationTLSConfig is the integration listener's TLS configuration:
// Haven's (TLSConfig), asking for a client certificate.
func IntegrationTLSConfig(cert tls.Certificate) *tls.Config {
	cfg := TLSConfig(cert)
	cfg.ClientAuth = tls.RequestClientCert
	return cfg
}

// integrationPath reports whether the integration listener serves path.
func integrationPath(path string) bool {
	switch path {
	case "/oauth2/token", "/oauth2/revoke", "/api/v1/hl7", "/healthz", FHIRBase:
		return true
	}
	return strings.HasPrefix(path, FHIRBase+"/")
}

// ServeIntegration serves the integration endpoints on ln with cfg
// (IntegrationTLSConfig) until ctx is cancelled, as Serve does; every
// other path is 404.
func (s *Server) ServeIntegration(ctx context.Context, ln net.Listener, cfg *tls.Config) error {
	all := s.Handler()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !integrationPath(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		all.ServeHTTP(w, r)
	})
	return s.serve(ctx, ln, cfg, h, false)
}

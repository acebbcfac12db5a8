package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"haven/web"
)

// integrationConfig is the integration listener of `haven serve`: a
// second HTTPS port for systems (backend services, labs posting HL7) that
// asks for client certificates, so tokens bound to a certificate can be
// used (mutual TLS, RFC 8705; web/integration.go). Browsers keep the main
// port, which never asks them for a certificate.
type integrationConfig struct {
	Addr, URL string
}

func (c *integrationConfig) register(fs *flag.FlagSet) error {
	return registerSettings(fs, []setting{
		{"integration-addr", "HAVEN_INTEGRATION_ADDR", "", "address of the integration listener (HTTPS asking for client certificates: the token endpoint, the FHIR API and POST /api/v1/hl7 for systems registered with a certificate), e.g. :8444; off when empty", false, &c.Addr},
		{"integration-url", "HAVEN_INTEGRATION_URL", "", "the https:// address systems reach the integration listener at, announced in the SMART configuration (default: --public-url's host with the port of --integration-addr)", false, &c.URL},
	})
}

func (c *integrationConfig) validate() error {
	if c.URL != "" && c.Addr == "" {
		return fmt.Errorf("--integration-url needs --integration-addr")
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || u.Scheme != "https" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("--integration-url: %q must be an https:// address, such as https://clinic.example:8444", c.URL)
		}
		c.URL = strings.TrimSuffix(c.URL, "/")
	}
	return nil
}

// listen opens the integration listener, when configured, and settles its
// public address from publicURL's host and the port it listens on.
func (c *integrationConfig) listen(publicURL string) (net.Listener, error) {
	if c.Addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("--integration-addr: cannot listen on %s: %v", c.Addr, listenCause(err))
	}
	if c.URL == "" {
		u, _ := url.Parse(publicURL)
		c.URL = "https://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	return ln, nil
}

// serveIntegration serves the integration listener, when there is one,
// until ctx ends or stop is called; stop waits for it to finish.
func serveIntegration(ctx context.Context, env *Env, srv *web.Server, ln net.Listener, cert tls.Certificate) (stop func()) {
	if ln == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeIntegration(ctx, ln, web.IntegrationTLSConfig(cert)); err != nil {
			env.Logger.Error("integration listener", "err", oneLine(err))
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

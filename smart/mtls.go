package smart

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	"haven"
)

// Mutual TLS for integrations (RFC 8705). A backend system may be
// registered with its client certificate (self-signed or not: it is
// pinned by its thumbprint, not trusted through a CA). When it is:
//
//   - the token endpoint takes the certificate, presented in the TLS
//     handshake, as the client's authentication on its own
//     (self_signed_tls_client_auth, when no keys are registered) or as a
//     second factor beside its signed assertion (private_key_jwt), and
//     refuses the client without it;
//   - every access token issued over a connection with a client
//     certificate is bound to that certificate (its x5t#S256 thumbprint
//     is kept with the grant), and is refused on any request that does not
//     present the same certificate: a stolen token is worth nothing
//     without the private key, which never leaves the client.
//
// The TLS handshake proves the key: the client signs the handshake with
// it. Which listener asks for certificates is cmd/haven's and web's; this
// file only reads what the handshake gave.

// AuthSelfSignedTLS is RFC 8705's name for authenticating by a pinned
// client certificate.
const AuthSelfSignedTLS = "self_signed_tls_client_auth"

// Thumbprint is a certificate's SHA-256 thumbprint as RFC 8705 writes it
// (x5t#S256): the base64url of the hash of its DER.
func Thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Presented is the thumbprint of the client certificate r's connection
// presented, or "" when it presented none or one not valid at now.
func Presented(r *http.Request, now time.Time) string {
	if r == nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	c := r.TLS.PeerCertificates[0]
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return ""
	}
	return Thumbprint(c.Raw)
}

// sameThumbprint compares two thumbprints in constant time; "" matches
// nothing.
func sameThumbprint(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// parseCertificate reads a client certificate in PEM for registration.
func parseCertificate(p string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(p)))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, haven.Errorf(haven.EINVALID, "give the client certificate in PEM form (the text from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----)")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, haven.Errorf(haven.EINVALID, "the client certificate cannot be read")
	}
	return cert, nil
}

// authenticateClient is the token and revocation endpoints' client
// authentication: fosite's (a secret, a signed assertion, or none for a
// public app), and RFC 8705's. A client registered with a certificate and
// no keys is authenticated by presenting it; one registered with both
// must present the certificate besides its assertion. Either is refused
// without the certificate, whatever else it presents.
func (s *Service) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	presented := Presented(r, s.gate.Now())
	if form.Get("client_assertion_type") == "" && r.Header.Get("Authorization") == "" {
		if id := form.Get("client_id"); id != "" {
			if c, err := s.store.GetClient(ctx, id); err == nil {
				if cl, ok := c.(*Client); ok && cl.Row.CertThumbprint != "" && cl.Row.JWKS == "" {
					if !sameThumbprint(presented, cl.Row.CertThumbprint) {
						return nil, fosite.ErrInvalidClient.WithHint("The client must present its registered certificate.")
					}
					return cl, nil
				}
			}
		}
	}
	c, err := s.fosite.DefaultClientAuthenticationStrategy(ctx, r, form)
	if err != nil {
		return nil, err
	}
	if cl, ok := c.(*Client); ok && cl.Row.CertThumbprint != "" && !sameThumbprint(presented, cl.Row.CertThumbprint) {
		return nil, fosite.ErrInvalidClient.WithHint("The client must present its registered certificate.")
	}
	return c, nil
}

// BindToken binds the grant a token request is about to be answered with
// to the certificate the request presented (RFC 8705 section 3), and
// refuses a request that renews a bound grant (a refresh) without the
// certificate it is bound to. The caller refuses with the error.
func (s *Service) BindToken(r *http.Request, g *Grant) error {
	presented := Presented(r, s.gate.Now())
	if g.Cert != "" {
		if !sameThumbprint(presented, g.Cert) {
			return fosite.ErrInvalidGrant.WithHint("The grant is bound to a client certificate this request did not present.")
		}
		return nil
	}
	g.Cert = presented
	return nil
}

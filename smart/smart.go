// Package smart is Haven's SMART on FHIR authorization server: the apps
// and backend systems a practice admin registered, the OAuth 2 flows they
// use (authorization code with PKCE for apps, client credentials with a
// signed assertion for backend systems), refresh tokens that rotate, and
// revocation. The token logic is ory/fosite's; this package stores its
// grants in the database (never a token in the clear) and turns a token
// back into the Haven actor it acts for, narrowed by its scopes and
// patient, so the FHIR API decides and audits a token's reads through the
// same gate as a session's.
//
// It authenticates no user itself: an app's user signs in with Haven's own
// sign-in (session and second factor) before she is asked to consent.
package smart

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"

	"haven"
	"haven/audit"
	"haven/service"
	"haven/store/sqlstore"
)

// Lifetimes of what the server hands out. An access token is short, so a
// stolen one is worth little; a refresh token is longer, rotates at every
// use, and a reused one ends its whole family.
const (
	AccessTTL  = 30 * time.Minute
	RefreshTTL = 7 * 24 * time.Hour
	CodeTTL    = time.Minute
)

// Paths of the server's endpoints, relative to the public origin.
const (
	AuthorizePath = "/oauth2/authorize"
	TokenPath     = "/oauth2/token"
	RevokePath    = "/oauth2/revoke"
)

// Service is the authorization server of one deployment.
type Service struct {
	gate     *service.Gate
	db       *sqlstore.DB
	store    *store
	provider fosite.OAuth2Provider
	fosite   *fosite.Fosite // the same provider, for its default client authentication (mtls.go)
	baseURL  string
	jwk      jose.JSONWebKey // the id_token signing key's public half (openid.go)
}

// New returns the authorization server over db, auditing through gate.
// baseURL is the public https:// origin: a backend system's assertion must
// name its token endpoint there, or at one of the aliases, the other
// origins the endpoint is served at (the integration listener's, where
// clients present certificates: RFC 8705's mtls_endpoint_aliases).
func New(ctx context.Context, gate *service.Gate, db *sqlstore.DB, baseURL string, aliases ...string) (*Service, error) {
	secret, err := tokenSecret(ctx, gate, db)
	if err != nil {
		return nil, fmt.Errorf("smart: the token secret: %w", err)
	}
	key, err := idTokenKey(ctx, gate, db)
	if err != nil {
		return nil, fmt.Errorf("smart: the id_token key: %w", err)
	}
	baseURL = strings.TrimRight(baseURL, "/")
	cfg := &fosite.Config{
		IDTokenLifespan:                idTokenLifespan,
		IDTokenIssuer:                  baseURL + "/fhir/R4",
		AccessTokenLifespan:            AccessTTL,
		RefreshTokenLifespan:           RefreshTTL,
		AuthorizeCodeLifespan:          CodeTTL,
		GlobalSecret:                   secret,
		ScopeStrategy:                  scopeStrategy,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
		EnforcePKCE:                    true, // every app, public or not: SMART 2 requires it
		EnablePKCEPlainChallengeMethod: false,
		RefreshTokenScopes:             []string{"offline_access"},
		TokenURL:                       baseURL + TokenPath,
		MinParameterEntropy:            8,
		SendDebugMessagesToClients:     false,
	}
	st := &store{db: db, now: gate.Now}
	s := &Service{gate: gate, db: db, store: st, baseURL: baseURL, jwk: publicJWK(key)}
	oidc := compose.NewOpenIDConnectStrategy(func(context.Context) (any, error) { return key, nil }, cfg)
	s.provider = compose.Compose(cfg, st, &compose.CommonStrategy{CoreStrategy: compose.NewOAuth2HMACStrategy(cfg),
		OpenIDConnectTokenStrategy: oidc, Signer: oidc.Signer},
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2PKCEFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2TokenIntrospectionFactory,
	)
	s.fosite = s.provider.(*fosite.Fosite)
	cfg.ClientAuthenticationStrategy = s.authenticateClient
	tu := tokenURLs{Config: cfg, urls: []string{cfg.TokenURL}}
	for _, a := range aliases {
		tu.urls = append(tu.urls, strings.TrimRight(a, "/")+TokenPath)
	}
	s.fosite.Config = tu
	return s, nil
}

// tokenURLs is fosite's configuration with every address of the token
// endpoint an assertion may name as its audience.
type tokenURLs struct {
	*fosite.Config
	urls []string
}

func (t tokenURLs) GetTokenURLs(context.Context) []string { return t.urls }

// Provider is fosite's provider, for the web layer's endpoints.
func (s *Service) Provider() fosite.OAuth2Provider { return s.provider }

// Configuration is the SMART configuration document
// (.well-known/smart-configuration) for a server reached at origin.
// mtlsOrigin is the integration listener's origin, where clients present
// their certificates (RFC 8705's mtls_endpoint_aliases), or "" when the
// deployment has none.
func Configuration(origin, mtlsOrigin string) map[string]any {
	c := map[string]any{
		"issuer":                                origin + "/fhir/R4",
		"authorization_endpoint":                origin + AuthorizePath,
		"token_endpoint":                        origin + TokenPath,
		"revocation_endpoint":                   origin + RevokePath,
		"grant_types_supported":                 []string{"authorization_code", "refresh_token", "client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"none", "client_secret_basic", "private_key_jwt", AuthSelfSignedTLS},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS384", "ES384"},
		"jwks_uri":                              origin + JWKSPath,
		"id_token_signing_alg_values_supported": []string{IDTokenAlg},
		"response_types_supported":              []string{"code"},
		"code_challenge_methods_supported":      []string{"S256"},
		"scopes_supported": []string{"openid", "fhirUser", "launch", "launch/patient", "offline_access", "patient/*.rs", "user/*.rs",
			"system/*.rs", "patient/*.read", "user/*.read", "system/*.read"},
		"capabilities": []string{"launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
			"client-confidential-asymmetric", "context-ehr-patient", "context-standalone-patient", "permission-offline",
			"permission-patient", "permission-user", "permission-v1", "permission-v2", "authorize-post", "sso-openid-connect"},
		"tls_client_certificate_bound_access_tokens": true,
	}
	if mtlsOrigin != "" {
		c["mtls_endpoint_aliases"] = map[string]string{"token_endpoint": mtlsOrigin + TokenPath, "revocation_endpoint": mtlsOrigin + RevokePath}
	}
	return c
}

// RegisteredClient is a registered app or backend system as the
// database keeps it (no secret: a confidential app's is hashed).
type RegisteredClient = sqlstore.SMARTClient

// NewClient is what an admin registers.
type NewClient struct {
	Name         string
	RedirectURIs []string
	LaunchURL    string   // where "Open in app" on a chart sends a clinician (EHR launch); optional
	Public       bool     // an app without a secret (PKCE only)
	Scopes       []string // the most it may ever be granted
	JWKS         string   // a backend system's public keys; makes it a backend client
	Networks     []string // CIDRs a backend system may call from
	// TLSCert is a backend system's client certificate (PEM): with it the
	// system authenticates by presenting the certificate (and, with JWKS,
	// its assertion besides), and its tokens are bound to it (mtls.go).
	TLSCert string
}

// Registered is a client just added, with its secret shown once.
type Registered struct {
	Client sqlstore.SMARTClient
	Secret string // a confidential app's secret; "" otherwise
}

// practiceAdmin returns the signed-in actor when she administers her
// practice's apps: the practice admin only.
func practiceAdmin(ctx context.Context) (haven.Actor, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return a, err
	}
	if a.Role != haven.RolePracticeAdmin || a.PracticeID == "" {
		return a, haven.Errorf(haven.EFORBIDDEN, "only the practice admin manages apps")
	}
	return a, nil
}

// AddClient registers an app or backend system for the admin's practice,
// audited. The web page asks for the admin's step-up first.
func (s *Service) AddClient(ctx context.Context, nc NewClient) (*Registered, error) {
	a, err := practiceAdmin(ctx)
	if err != nil {
		return nil, err
	}
	ev := audit.ForActor(a, "smart.client.add")
	ev.Purpose, ev.Decision = audit.PurposeOperations, haven.DecisionAllow
	return s.addClient(ctx, a.PracticeID, a.UserID, ev, nc)
}

// OperatorAddClient registers a client for a practice from the command
// line (haven smart clients add), audited in the practice's log as the
// operator's act.
func (s *Service) OperatorAddClient(ctx context.Context, practiceID string, nc NewClient) (*Registered, error) {
	if _, err := s.db.FindPracticeByID(ctx, practiceID); err != nil {
		return nil, err
	}
	return s.addClient(ctx, practiceID, service.OperatorActorID, service.OperatorEvent(practiceID, "smart.client.add", "smart_client", "", ""), nc)
}

func (s *Service) addClient(ctx context.Context, practiceID, by string, ev audit.Event, nc NewClient) (*Registered, error) {
	c, err := validate(nc)
	if err != nil {
		return nil, err
	}
	c.ID, c.PracticeID, c.CreatedBy, c.CreatedAt = newID(), practiceID, by, s.gate.Now()
	out := &Registered{}
	if !c.Public && c.JWKS == "" && c.CertThumbprint == "" {
		out.Secret = newID() + newID()
		h, err := (&fosite.BCrypt{Config: &fosite.Config{}}).Hash(ctx, []byte(out.Secret))
		if err != nil {
			return nil, err
		}
		c.SecretHash = string(h)
	}
	ev.ResourceKind, ev.ResourceID = "smart_client", c.ID
	if err := s.gate.Record(ctx, ev); err != nil {
		return nil, err
	}
	if err := s.db.CreateSMARTClient(ctx, c); err != nil {
		return nil, err
	}
	out.Client = c
	return out, nil
}

// Clients lists the admin's practice's clients.
func (s *Service) Clients(ctx context.Context) ([]sqlstore.SMARTClient, error) {
	a, err := practiceAdmin(ctx)
	if err != nil {
		return nil, err
	}
	return s.db.ListSMARTClients(ctx, a.PracticeID)
}

// OperatorClients lists a practice's clients for the command line.
func (s *Service) OperatorClients(ctx context.Context, practiceID string) ([]sqlstore.SMARTClient, error) {
	return s.db.ListSMARTClients(ctx, practiceID)
}

// RevokeClient cuts a client off: it is refused from now on and every
// token it holds ends at once, audited.
func (s *Service) RevokeClient(ctx context.Context, id string) error {
	a, err := practiceAdmin(ctx)
	if err != nil {
		return err
	}
	ev := audit.ForActor(a, "smart.client.revoke")
	ev.ResourceKind, ev.ResourceID, ev.Purpose, ev.Decision = "smart_client", id, audit.PurposeOperations, haven.DecisionAllow
	return s.revokeClient(ctx, a.PracticeID, id, ev)
}

// OperatorRevokeClient is RevokeClient from the command line.
func (s *Service) OperatorRevokeClient(ctx context.Context, practiceID, id string) error {
	return s.revokeClient(ctx, practiceID, id, service.OperatorEvent(practiceID, "smart.client.revoke", "smart_client", id, ""))
}

func (s *Service) revokeClient(ctx context.Context, practiceID, id string, ev audit.Event) error {
	c, err := s.db.FindSMARTClient(ctx, id)
	if err != nil || c.PracticeID != practiceID || !c.RevokedAt.IsZero() {
		return haven.Errorf(haven.ENOTFOUND, "no such app")
	}
	if err := s.gate.Record(ctx, ev); err != nil {
		return err
	}
	return s.db.RevokeSMARTClient(ctx, practiceID, id, s.gate.Now())
}

func validate(nc NewClient) (sqlstore.SMARTClient, error) {
	c := sqlstore.SMARTClient{Name: strings.TrimSpace(nc.Name), Public: nc.Public, JWKS: strings.TrimSpace(nc.JWKS), LaunchURL: strings.TrimSpace(nc.LaunchURL)}
	if c.LaunchURL != "" {
		if u, err := url.Parse(c.LaunchURL); err != nil || !fosite.IsRedirectURISecure(context.Background(), u) || u.Host == "" {
			return c, haven.Errorf(haven.EINVALID, "the launch address must be https (or http on this machine)")
		}
	}
	if c.Name == "" || len(c.Name) > 100 {
		return c, haven.Errorf(haven.EINVALID, "give the app a name of up to 100 characters")
	}
	for _, u := range nc.RedirectURIs {
		if u = strings.TrimSpace(u); u != "" {
			pu, err := url.Parse(u)
			if err != nil || !fosite.IsValidRedirectURI(pu) || !fosite.IsRedirectURISecure(context.Background(), pu) {
				return c, haven.Errorf(haven.EINVALID, "a redirect address must be https (or http on this machine)")
			}
			c.RedirectURIs = append(c.RedirectURIs, u)
		}
	}
	for _, sc := range nc.Scopes {
		for _, one := range strings.Fields(sc) {
			if Words(one) == "" {
				return c, haven.Errorf(haven.EINVALID, "unknown scope %q", one)
			}
			c.Scopes = append(c.Scopes, one)
		}
	}
	if len(c.Scopes) == 0 {
		return c, haven.Errorf(haven.EINVALID, "name the scopes the app may ask for")
	}
	for _, n := range nc.Networks {
		if n = strings.TrimSpace(n); n != "" {
			if _, err := netip.ParsePrefix(n); err != nil {
				return c, haven.Errorf(haven.EINVALID, "a network must be a CIDR such as 10.0.0.0/8")
			}
			c.Networks = append(c.Networks, n)
		}
	}
	if strings.TrimSpace(nc.TLSCert) != "" {
		cert, err := parseCertificate(nc.TLSCert)
		if err != nil {
			return c, err
		}
		c.CertThumbprint, c.CertSubject, c.CertExpires = Thumbprint(cert.Raw), cert.Subject.String(), cert.NotAfter.UTC()
	}
	if c.JWKS != "" || c.CertThumbprint != "" {
		if c.Public {
			return c, haven.Errorf(haven.EINVALID, "a backend system with keys or a certificate is not public")
		}
		if c.JWKS != "" {
			if _, err := signingAlg(c.JWKS); err != nil {
				return c, err
			}
		}
		for _, sc := range c.Scopes {
			if p, ok := ParseScope(sc); !ok || p.Context != "system" {
				return c, haven.Errorf(haven.EINVALID, "a backend system's scopes are system/… scopes")
			}
		}
	} else {
		if len(c.RedirectURIs) == 0 {
			return c, haven.Errorf(haven.EINVALID, "an app needs at least one redirect address")
		}
		for _, sc := range c.Scopes {
			if p, ok := ParseScope(sc); ok && p.Context == "system" {
				return c, haven.Errorf(haven.EINVALID, "system/… scopes are for backend systems with keys or a certificate")
			}
		}
	}
	return c, nil
}

// signingAlg is the one algorithm a backend system's assertions must use,
// from its keys: RS384 for RSA, ES384 for EC (the two SMART Backend
// Services names). A key set with private parts is refused: the admin
// registers public keys only.
func signingAlg(jwks string) (string, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(jwks), &set); err != nil || len(set.Keys) == 0 {
		return "", haven.Errorf(haven.EINVALID, "the keys must be a JSON Web Key Set")
	}
	alg := ""
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			return "", haven.Errorf(haven.EINVALID, "register public keys only")
		}
		a := k.Algorithm
		if a == "" {
			if strings.HasPrefix(fmt.Sprintf("%T", k.Key), "*rsa.") {
				a = "RS384"
			} else {
				a = "ES384"
			}
		}
		if a != "RS384" && a != "ES384" {
			return "", haven.Errorf(haven.EINVALID, "keys must be for RS384 or ES384")
		}
		if alg != "" && alg != a {
			return "", haven.Errorf(haven.EINVALID, "use one algorithm for every key")
		}
		alg = a
	}
	return alg, nil
}

// Allowed reports whether a backend client may call from addr: anywhere
// when it names no networks.
func Allowed(c sqlstore.SMARTClient, addr string) bool {
	if len(c.Networks) == 0 {
		return true
	}
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(c.Networks, func(n string) bool {
		p, err := netip.ParsePrefix(n)
		return err == nil && p.Contains(ip.Unmap())
	})
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Access is what a presented access token acts for.
type Access struct {
	Actor    haven.Actor // the user (or, for a backend system, the client) it acts as
	ClientID string
	Scopes   []string
	Patient  string // the patient in context: the token reaches no other
	System   bool   // a backend system's token, acting for no user
	// Refused is why a backend system's token was refused on this request
	// (the access comes back with the error, for the caller to audit):
	// "network_not_allowed" or "certificate_not_presented".
	Refused string
}

// Resolve checks a presented access token against the database (every
// time: a revoked token is refused on the very next request, on every
// node) and returns what it acts for. A user's token acts as that user
// today (her current role, refused if her account is disabled), so the
// gate decides as it would for her pages.
func (s *Service) Resolve(ctx context.Context, token string, r *http.Request, clientAddr, requestID string) (*Access, error) {
	g := &Grant{}
	_, ar, err := s.provider.IntrospectToken(ctx, token, fosite.AccessToken, g)
	if err != nil {
		return nil, haven.Errorf(haven.EUNAUTHORIZED, "the access token is not valid")
	}
	g, _ = ar.GetSession().(*Grant)
	cl, _ := ar.GetClient().(*Client)
	if g == nil || cl == nil {
		return nil, haven.Errorf(haven.EUNAUTHORIZED, "the access token is not valid")
	}
	acc := &Access{ClientID: cl.Row.ID, Scopes: ar.GetGrantedScopes(), Patient: g.Patient}
	session := "smart:" + cl.Row.ID // every audit event of its use names the client
	// A token bound to a certificate is honoured only over a connection
	// that presents it; a client registered with a certificate has no
	// token that is not bound to it (one bound to a certificate it has
	// since replaced ends with the replacement).
	if g.Cert != "" || cl.Row.CertThumbprint != "" {
		if (cl.Row.CertThumbprint != "" && g.Cert != cl.Row.CertThumbprint) || !sameThumbprint(Presented(r, s.gate.Now()), g.Cert) {
			acc.System, acc.Refused = g.UserID == "", "certificate_not_presented"
			acc.Actor = haven.Actor{PracticeID: cl.Row.PracticeID}
			return acc, haven.Errorf(haven.EUNAUTHORIZED, "the access token is bound to a client certificate this request did not present")
		}
	}
	if g.UserID == "" {
		// A backend system acts for no user: it is the integration role
		// of its one practice, the client its actor, so policy decides
		// its reads and every audit event names it. Its signed key
		// assertion was its strong authentication (MFA). Its networks are
		// checked on every use, not only when the token was issued: a
		// token carried elsewhere is refused (the access is returned with
		// the refusal, for the caller to record it).
		acc.System = true
		acc.Actor = haven.Actor{UserID: cl.Row.ID, PracticeID: cl.Row.PracticeID, Role: haven.RoleIntegration, SessionID: session,
			MFA: true, ClientAddr: clientAddr, RequestID: requestID}
		if !Allowed(cl.Row, clientAddr) {
			acc.Refused = "network_not_allowed"
			return acc, haven.Errorf(haven.EFORBIDDEN, "the client may not call from this network")
		}
		return acc, nil
	}
	u, err := s.db.FindUserByID(ctx, g.UserID)
	if err != nil || u.Disabled || u.PracticeID != cl.Row.PracticeID {
		return nil, haven.Errorf(haven.EUNAUTHORIZED, "the access token is not valid")
	}
	acc.Actor = haven.Actor{UserID: u.ID, PracticeID: u.PracticeID, Role: u.Role, SessionID: session, MFA: true,
		AuthTime: g.AuthTime, ClientAddr: clientAddr, RequestID: requestID}
	return acc, nil
}

// secretField is where the token strategy's HMAC secret is sealed: under
// the platform's key, since it signs every practice's tokens.
var secretField = service.SealedField{Kind: "smart_secret", RecordID: "1", Field: "hmac"}

// tokenSecret returns the HMAC secret fosite signs tokens with, the same on
// every node, stored sealed: whoever reads the database (or a backup of it)
// cannot sign a token, and a token is honoured only while its signature's
// hash is in smart_grants besides.
func tokenSecret(ctx context.Context, gate *service.Gate, db *sqlstore.DB) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	candidate, err := gate.SealPractice(ctx, "", secretField, fresh)
	if err != nil {
		return nil, err
	}
	stored, err := db.SMARTSecret(ctx, candidate)
	if err != nil {
		return nil, err
	}
	return gate.OpenPractice(ctx, "", secretField, stored)
}

// Record appends an event about an app to its practice's audit log: a
// user's consent or refusal, a token issued to a backend system or
// refused it. The web layer words the event; only the record goes
// through here, so web never holds the gate that opens records.
func (s *Service) Record(ctx context.Context, ev audit.Event) error {
	return s.gate.Record(ctx, ev)
}

// LaunchTTL is how long an EHR launch waits for its app to ask for
// authorization.
const LaunchTTL = 5 * time.Minute

// launchContext is what a launch id stands for.
type launchContext struct {
	Patient string `json:"patient"`
	User    string `json:"user"`
}

// LaunchableApps returns the practice's apps a clinician can open from a
// chart (those registered with a launch address).
func (s *Service) LaunchableApps(ctx context.Context) ([]sqlstore.SMARTClient, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil || a.Role == haven.RolePatient || a.PracticeID == "" {
		return nil, err
	}
	all, err := s.db.ListSMARTClients(ctx, a.PracticeID)
	var out []sqlstore.SMARTClient
	for _, c := range all {
		if c.LaunchURL != "" && c.RevokedAt.IsZero() && c.JWKS == "" && c.CertThumbprint == "" {
			out = append(out, c)
		}
	}
	return out, err
}

// NewLaunch begins an EHR launch of app clientID for patientID by the
// signed-in user, whose access to the patient the caller has already
// decided through the gate: it returns the app's launch address with iss
// and an opaque launch id that stands for the patient, usable once, by
// this user only, for LaunchTTL. fhirBase is the FHIR server's root as the
// user reached it.
func (s *Service) NewLaunch(ctx context.Context, clientID, patientID, fhirBase string) (string, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return "", err
	}
	c, err := s.db.FindSMARTClient(ctx, clientID)
	if err != nil || c.PracticeID != a.PracticeID || !c.RevokedAt.IsZero() || c.LaunchURL == "" {
		return "", haven.Errorf(haven.ENOTFOUND, "no such app")
	}
	id := newID() + newID()
	data, _ := json.Marshal(launchContext{Patient: patientID, User: a.UserID})
	if err := s.db.PutSMARTGrant(ctx, sqlstore.SMARTGrant{SigHash: sqlstore.HashSignature(id), Kind: sqlstore.GrantLaunch,
		RequestID: newID(), ClientID: c.ID, Active: true, ExpiresAt: s.gate.Now().Add(LaunchTTL), Data: string(data)}); err != nil {
		return "", err
	}
	u, err := url.Parse(c.LaunchURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("iss", fhirBase)
	q.Set("launch", id)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Launch returns the patient a launch id stands for, for the signed-in
// user and app, and spends it when spend is set (the user's consent; the
// consent page only reads it). An id of another user or app, spent or
// expired, is refused.
func (s *Service) Launch(ctx context.Context, clientID, launch string, spend bool) (string, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return "", err
	}
	g, err := s.db.FindSMARTGrant(ctx, sqlstore.GrantLaunch, sqlstore.HashSignature(launch))
	var lc launchContext
	if err != nil || !g.Active || g.ClientID != clientID || g.ExpiresAt.Before(s.gate.Now()) ||
		json.Unmarshal([]byte(g.Data), &lc) != nil || lc.User != a.UserID {
		return "", haven.Errorf(haven.EFORBIDDEN, "the launch is not valid; open the app from the chart again")
	}
	if spend {
		if err := s.db.DeactivateSMARTGrant(ctx, sqlstore.GrantLaunch, g.SigHash); err != nil {
			return "", err
		}
	}
	return lc.Patient, nil
}

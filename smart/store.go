package smart

import (
	"context"
	"encoding/json"
	"maps"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"haven"
	"haven/store/sqlstore"
)

// store is fosite's storage over the database (sqlstore): clients, codes,
// PKCE challenges, access and refresh tokens and assertion ids, every one
// read from the database on every use, never cached, so a restart keeps
// them and a revocation on one node holds on every other at once.
type store struct {
	db  *sqlstore.DB
	now func() time.Time
}

// Grant is what a token acts for: the user who authorized it (none for a
// backend system), her practice and role, and the patient in context. It
// is fosite's session, stored as JSON with the token's row.
type Grant struct {
	ExpiresAt  map[fosite.TokenType]time.Time `json:"exp"`
	UserID     string                         `json:"user,omitempty"`
	PracticeID string                         `json:"practice"`
	Role       haven.Role                     `json:"role,omitempty"`
	Patient    string                         `json:"patient,omitempty"`
	AuthTime   time.Time                      `json:"auth_time"`
	// Cert is the x5t#S256 thumbprint of the client certificate the
	// grant's tokens are bound to (RFC 8705's cnf), or "" (mtls.go).
	Cert string `json:"cnf_x5t_s256,omitempty"`
	// Claims and Headers are the id_token's, when the app was granted
	// openid (openid.go).
	Claims  *jwt.IDTokenClaims `json:"id_claims,omitempty"`
	Headers *jwt.Headers       `json:"id_headers,omitempty"`
}

func (g *Grant) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if g.ExpiresAt == nil {
		g.ExpiresAt = map[fosite.TokenType]time.Time{}
	}
	g.ExpiresAt[key] = exp
}

func (g *Grant) GetExpiresAt(key fosite.TokenType) time.Time { return g.ExpiresAt[key] }
func (g *Grant) GetUsername() string                         { return g.UserID }
func (g *Grant) GetSubject() string                          { return g.UserID }

func (g *Grant) Clone() fosite.Session {
	c := *g
	c.ExpiresAt = map[fosite.TokenType]time.Time{}
	for k, v := range g.ExpiresAt {
		c.ExpiresAt[k] = v
	}
	if g.Claims != nil {
		cl := *g.Claims
		cl.Extra = maps.Clone(g.Claims.Extra)
		c.Claims = &cl
	}
	if g.Headers != nil {
		c.Headers = &jwt.Headers{Extra: maps.Clone(g.Headers.Extra)}
	}
	return &c
}

// keptForm is the part of a request's form stored with its grant: what
// the flow reads back later (the PKCE challenge, the redirect). A token
// request's form carries the code, the verifier and the refresh token,
// which must never reach the database.
var keptForm = []string{"scope", "redirect_uri", "code_challenge", "code_challenge_method", "aud", "launch", "response_type", "state",
	"nonce", "max_age", "prompt"}

// stored is a request as the grants table holds it.
type stored struct {
	ID          string     `json:"id"`
	RequestedAt time.Time  `json:"at"`
	ClientID    string     `json:"client"`
	Requested   []string   `json:"requested"`
	Granted     []string   `json:"granted"`
	Audience    []string   `json:"aud,omitempty"`
	Form        url.Values `json:"form"`
	Grant       *Grant     `json:"grant"`
}

func (s *store) put(ctx context.Context, kind, sig string, r fosite.Requester, active bool) error {
	g, _ := r.GetSession().(*Grant)
	if g == nil {
		g = &Grant{}
	}
	form := url.Values{}
	for _, k := range keptForm {
		if v, ok := r.GetRequestForm()[k]; ok {
			form[k] = v
		}
	}
	data, err := json.Marshal(stored{ID: r.GetID(), RequestedAt: r.GetRequestedAt(), ClientID: r.GetClient().GetID(),
		Requested: r.GetRequestedScopes(), Granted: r.GetGrantedScopes(), Audience: r.GetGrantedAudience(), Form: form, Grant: g})
	if err != nil {
		return err
	}
	exp := s.expiry(kind, g)
	return s.db.PutSMARTGrant(ctx, sqlstore.SMARTGrant{SigHash: sqlstore.HashSignature(sig), Kind: kind, RequestID: r.GetID(),
		ClientID: r.GetClient().GetID(), UserID: g.UserID, Active: active, ExpiresAt: exp, Data: string(data)})
}

// expiry is when a row may be purged: its token's end, or a day for the
// rows fosite gives no end of their own (a PKCE challenge lives as long as
// its code).
func (s *store) expiry(kind string, g *Grant) time.Time {
	var t time.Time
	switch kind {
	case sqlstore.GrantCode, sqlstore.GrantPKCE:
		t = g.GetExpiresAt(fosite.AuthorizeCode)
	case sqlstore.GrantAccess:
		t = g.GetExpiresAt(fosite.AccessToken)
	case sqlstore.GrantRefresh:
		t = g.GetExpiresAt(fosite.RefreshToken)
	}
	if t.IsZero() {
		t = s.now().Add(24 * time.Hour)
	}
	return t
}

// get reads back a grant; errInactive (fosite's own) comes with the
// request when the grant was used, as fosite needs to revoke its family.
func (s *store) get(ctx context.Context, kind, sig string, errInactive error) (fosite.Requester, error) {
	row, err := s.db.FindSMARTGrant(ctx, kind, sqlstore.HashSignature(sig))
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, fosite.ErrNotFound
	} else if err != nil {
		return nil, err
	}
	var st stored
	if err := json.Unmarshal([]byte(row.Data), &st); err != nil {
		return nil, err
	}
	cl, err := s.GetClient(ctx, st.ClientID)
	if err != nil {
		return nil, err
	}
	req := &fosite.Request{ID: st.ID, RequestedAt: st.RequestedAt, Client: cl, RequestedScope: st.Requested,
		GrantedScope: st.Granted, RequestedAudience: st.Audience, GrantedAudience: st.Audience, Form: st.Form, Session: st.Grant}
	if req.Form == nil {
		req.Form = url.Values{}
	}
	if !row.Active {
		if errInactive != nil {
			return req, errInactive
		}
		// An access token or PKCE challenge ended with its user's
		// credentials (sqlstore.EndUserSMARTGrants) is no token at all.
		return nil, fosite.ErrNotFound
	}
	return req, nil
}

// GetClient returns a client that is not revoked. Its practice comes
// along, so a token never reaches beyond it.
func (s *store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.db.FindSMARTClient(ctx, id)
	if haven.ErrorCode(err) == haven.ENOTFOUND || (err == nil && !c.RevokedAt.IsZero()) {
		return nil, fosite.ErrNotFound
	} else if err != nil {
		return nil, err
	}
	return toFosite(c)
}

// Client is a registered client as fosite sees it, keeping its practice
// and networks for the checks fosite does not make.
type Client struct {
	*fosite.DefaultOpenIDConnectClient
	Row sqlstore.SMARTClient
}

func toFosite(c sqlstore.SMARTClient) (*Client, error) {
	dc := &fosite.DefaultClient{ID: c.ID, RedirectURIs: c.RedirectURIs, Scopes: c.Scopes, Public: c.Public,
		ResponseTypes: []string{"code"}, Audience: nil}
	oc := &fosite.DefaultOpenIDConnectClient{DefaultClient: dc}
	switch {
	case c.JWKS != "":
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(c.JWKS), &set); err != nil {
			return nil, err
		}
		oc.JSONWebKeys = &set
		oc.TokenEndpointAuthMethod = "private_key_jwt"
		alg, err := signingAlg(c.JWKS)
		if err != nil {
			return nil, err
		}
		oc.TokenEndpointAuthSigningAlgorithm = alg
		dc.GrantTypes = []string{"client_credentials"}
	case c.CertThumbprint != "":
		// Authenticated by its certificate alone (mtls.go).
		oc.TokenEndpointAuthMethod = AuthSelfSignedTLS
		dc.GrantTypes = []string{"client_credentials"}
	case c.Public:
		oc.TokenEndpointAuthMethod = "none"
		dc.GrantTypes = []string{"authorization_code", "refresh_token"}
	default:
		dc.Secret = []byte(c.SecretHash)
		oc.TokenEndpointAuthMethod = "client_secret_basic"
		dc.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	return &Client{DefaultOpenIDConnectClient: oc, Row: c}, nil
}

func (s *store) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	used, err := s.db.SMARTAssertionUsed(ctx, jti, s.now())
	if err != nil {
		return err
	}
	if used {
		return fosite.ErrJTIKnown
	}
	return nil
}

func (s *store) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	err := s.db.UseSMARTAssertion(ctx, jti, exp)
	if haven.ErrorCode(err) == haven.ECONFLICT {
		return fosite.ErrJTIKnown
	}
	return err
}

func (s *store) CreateAuthorizeCodeSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.put(ctx, sqlstore.GrantCode, code, r, true)
}

func (s *store) GetAuthorizeCodeSession(ctx context.Context, code string, _ fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, sqlstore.GrantCode, code, fosite.ErrInvalidatedAuthorizeCode)
}

func (s *store) InvalidateAuthorizeCodeSession(ctx context.Context, code string) error {
	return s.db.DeactivateSMARTGrant(ctx, sqlstore.GrantCode, sqlstore.HashSignature(code))
}

func (s *store) CreatePKCERequestSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.put(ctx, sqlstore.GrantPKCE, sig, r, true)
}

func (s *store) GetPKCERequestSession(ctx context.Context, sig string, _ fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, sqlstore.GrantPKCE, sig, nil)
}

func (s *store) DeletePKCERequestSession(ctx context.Context, sig string) error {
	return s.db.DeleteSMARTGrant(ctx, sqlstore.GrantPKCE, sqlstore.HashSignature(sig))
}

func (s *store) CreateAccessTokenSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.put(ctx, sqlstore.GrantAccess, sig, r, true)
}

func (s *store) GetAccessTokenSession(ctx context.Context, sig string, _ fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, sqlstore.GrantAccess, sig, nil)
}

func (s *store) DeleteAccessTokenSession(ctx context.Context, sig string) error {
	return s.db.DeleteSMARTGrant(ctx, sqlstore.GrantAccess, sqlstore.HashSignature(sig))
}

func (s *store) CreateRefreshTokenSession(ctx context.Context, sig, _ string, r fosite.Requester) error {
	return s.put(ctx, sqlstore.GrantRefresh, sig, r, true)
}

func (s *store) GetRefreshTokenSession(ctx context.Context, sig string, _ fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, sqlstore.GrantRefresh, sig, fosite.ErrInactiveToken)
}

func (s *store) DeleteRefreshTokenSession(ctx context.Context, sig string) error {
	return s.db.DeleteSMARTGrant(ctx, sqlstore.GrantRefresh, sqlstore.HashSignature(sig))
}

// RotateRefreshToken retires the refresh token just used (kept, inactive,
// so its reuse is seen) and the access tokens issued with it.
func (s *store) RotateRefreshToken(ctx context.Context, requestID, _ string) error {
	if err := s.RevokeRefreshToken(ctx, requestID); err != nil {
		return err
	}
	return s.RevokeAccessToken(ctx, requestID)
}

func (s *store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.db.DeactivateSMARTGrants(ctx, sqlstore.GrantRefresh, requestID)
}

func (s *store) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.db.DeleteSMARTGrants(ctx, sqlstore.GrantAccess, requestID)
}

package smart

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"haven"
	"haven/service"
	"haven/store/sqlstore"
)

// OpenID Connect for SMART's openid and fhirUser scopes: an app granted
// openid gets, beside its access token, an id_token signed with the
// deployment's one key (RS256, which SMART asks servers to support),
// naming the user (sub, her Haven id) and, with fhirUser, the FHIR
// resource she is (Patient/… for a patient, Practitioner/… for a
// clinician). The public key is published at JWKSPath, and the OpenID
// discovery document at the FHIR server's .well-known, so an app checks
// the id_token without trusting the channel it came over. fosite makes
// and signs the token; this file keeps its key and fills its claims.

// JWKSPath is where the id_token signing key is published.
const JWKSPath = "/oauth2/jwks"

// IDTokenAlg is the one algorithm id_tokens are signed with.
const IDTokenAlg = "RS256"

// idTokenKeyBits is the signing key's size: an id_token is good for
// minutes and keeps nothing secret, so its signature need only outlast
// that (NIST's 112 bits, until 2030). The key is not rotated yet: it
// lives as long as the deployment's database.
const idTokenKeyBits = 2048

// keyField is where the id_token signing key is sealed: under the
// platform's key, as the token secret is.
var keyField = service.SealedField{Kind: "smart_secret", RecordID: "2", Field: "id_token_key"}

// idTokenKey returns the deployment's id_token signing key, the same on
// every node: made by the first node that finds none (a key is made only
// then, it takes a moment), stored sealed.
func idTokenKey(ctx context.Context, gate *service.Gate, db *sqlstore.DB) (*rsa.PrivateKey, error) {
	sealed, err := db.FindSMARTSecret(ctx, sqlstore.SMARTSecretIDTokenKey)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		key, gerr := rsa.GenerateKey(rand.Reader, idTokenKeyBits)
		if gerr != nil {
			return nil, gerr
		}
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		candidate, serr := gate.SealPractice(ctx, "", keyField, der)
		if serr != nil {
			return nil, serr
		}
		sealed, err = db.SMARTSecretAt(ctx, sqlstore.SMARTSecretIDTokenKey, candidate)
	}
	if err != nil {
		return nil, err
	}
	der, err := gate.OpenPractice(ctx, "", keyField, sealed)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, haven.Errorf(haven.EINTERNAL, "the id_token key is not an RSA key")
	}
	return key, nil
}

// publicJWK is the signing key's public half with its key id (its JWK
// thumbprint).
func publicJWK(key *rsa.PrivateKey) jose.JSONWebKey {
	jwk := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: IDTokenAlg, Use: "sig"}
	tp, _ := jwk.Thumbprint(crypto.SHA256)
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return jwk
}

// JWKS is the published key set: the id_token signing key's public half.
func (s *Service) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.jwk}}
}

// OpenIDConfiguration is the OpenID discovery document of the FHIR
// server's issuer (its .well-known/openid-configuration).
func OpenIDConfiguration(origin string) map[string]any {
	return map[string]any{
		"issuer":                                origin + "/fhir/R4",
		"authorization_endpoint":                origin + AuthorizePath,
		"token_endpoint":                        origin + TokenPath,
		"jwks_uri":                              origin + JWKSPath,
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{IDTokenAlg},
		"scopes_supported":                      []string{"openid", "fhirUser"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser"},
		"token_endpoint_auth_methods_supported": []string{"none", "client_secret_basic"},
		"code_challenge_methods_supported":      []string{"S256"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
	}
}

// OpenID fills the id_token claims of a grant a user is about to allow,
// when the app asked for openid: issuer the FHIR server's root (fhirBase),
// subject the user, and with fhirUser the FHIR resource she is, when she
// is one (a patient, a clinician).
func (s *Service) OpenID(g *Grant, ar fosite.AuthorizeRequester, fhirBase string) {
	if !ar.GetRequestedScopes().Has("openid") {
		return
	}
	c := g.IDTokenClaims()
	c.Issuer, c.Subject, c.AuthTime, c.RequestedAt = fhirBase, g.UserID, g.AuthTime.UTC(), ar.GetRequestedAt().UTC()
	if ar.GetRequestedScopes().Has("fhirUser") {
		switch g.Role {
		case haven.RolePatient:
			c.Add("fhirUser", fhirBase+"/Patient/"+g.UserID)
		case haven.RoleClinician:
			c.Add("fhirUser", fhirBase+"/Practitioner/"+g.UserID)
		}
	}
	g.IDTokenHeaders().Add("kid", s.jwk.KeyID)
}

// IDTokenClaims and IDTokenHeaders make a Grant fosite's OpenID Connect
// session: the id_token's claims travel with the grant, stored with it. A
// grant made before id_tokens were issued (openid granted, no claims)
// gets its user as subject when its refresh token is used, so it renews.
func (g *Grant) IDTokenClaims() *jwt.IDTokenClaims {
	if g.Claims == nil {
		g.Claims = &jwt.IDTokenClaims{Subject: g.UserID, AuthTime: g.AuthTime.UTC(), Extra: map[string]any{}}
	}
	return g.Claims
}

func (g *Grant) IDTokenHeaders() *jwt.Headers {
	if g.Headers == nil {
		g.Headers = &jwt.Headers{Extra: map[string]any{}}
	}
	return g.Headers
}

var _ openid.Session = (*Grant)(nil)

func (s *store) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.put(ctx, sqlstore.GrantOpenID, code, r, true)
}

func (s *store) GetOpenIDConnectSession(ctx context.Context, code string, _ fosite.Requester) (fosite.Requester, error) {
	r, err := s.get(ctx, sqlstore.GrantOpenID, code, nil)
	if err == fosite.ErrNotFound {
		return nil, openid.ErrNoSessionFound
	}
	return r, err
}

func (s *store) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return s.db.DeleteSMARTGrant(ctx, sqlstore.GrantOpenID, sqlstore.HashSignature(code))
}

// idTokenLifespan is how long an id_token is good for: it says who the
// user is at sign-in, nothing more, and an app reads it at once.
const idTokenLifespan = 5 * time.Minute

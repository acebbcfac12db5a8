package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"strings"
	"time"

	"haven"
)

// This file keeps what the SMART on FHIR / OAuth 2 authorization server
// needs to survive a restart and to be shared by several nodes on one
// database: the registered clients, the grants it issued (codes, PKCE
// challenges, access and refresh tokens) and the used assertion ids.
// Token signatures are stored as their SHA-256 only, and every lookup goes
// to the database, so a revocation is in force on every node at once.

// Kinds of SMART grant rows.
const (
	GrantCode    = "code"
	GrantPKCE    = "pkce"
	GrantAccess  = "access"
	GrantRefresh = "refresh"
	GrantLaunch  = "launch" // an EHR launch: the patient a clinician opened the app for
	GrantOpenID  = "openid" // an OpenID Connect request, kept with its code until the id_token is issued
)

// SMARTClient is one registered app or backend system of a practice.
type SMARTClient struct {
	ID           string
	PracticeID   string
	Name         string
	RedirectURIs []string
	LaunchURL    string // where a clinician's "Open in app" sends her (EHR launch), or ""
	Public       bool   // a browser or phone app: PKCE, no secret
	SecretHash   string // a confidential client's secret, hashed; "" for public or key-based clients
	Scopes       []string
	JWKS         string   // a backend system's public keys (a JSON Web Key Set), or ""
	Networks     []string // CIDRs a backend system may call from; none means anywhere
	// CertThumbprint is the SHA-256 thumbprint (RFC 8705's x5t#S256,
	// base64url) of a backend system's registered client certificate, or
	// "": its tokens are bound to that certificate.
	CertThumbprint string
	CertSubject    string    // the certificate's subject, for the admin's page
	CertExpires    time.Time // the certificate's end, for the admin's page
	CreatedBy      string
	CreatedAt      time.Time
	RevokedAt      time.Time // zero while the client may be used
}

// SMARTGrant is one stored code or token: its signature's hash, which
// authorization it belongs to, and the grant itself as JSON.
type SMARTGrant struct {
	SigHash   []byte
	Kind      string
	RequestID string
	ClientID  string
	UserID    string // the user it acts for; "" for a backend system or a launch
	Active    bool
	ExpiresAt time.Time
	Data      string
}

// HashSignature is the form a token's signature is stored and looked up
// in: whoever reads the table cannot present what they read.
func HashSignature(sig string) []byte {
	h := sha256.Sum256([]byte("haven smart v1\x00" + sig))
	return h[:]
}

func joinLines(v []string) string { return strings.Join(v, "\n") }

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func smartTime(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromMicros(us)
}

func smartMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

// CreateSMARTClient registers c.
func (d *DB) CreateSMARTClient(ctx context.Context, c SMARTClient) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO smart_clients (id, practice_id, name, redirect_uris, launch_url, public, secret_hash,
		scopes, jwks, networks, created_by, created_us, revoked_us, tls_cert_thumbprint, tls_cert_subject, tls_cert_expires_us)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13, $14, $15)`,
		c.ID, c.PracticeID, c.Name, joinLines(c.RedirectURIs), c.LaunchURL, boolInt(c.Public), c.SecretHash, joinLines(c.Scopes), c.JWKS,
		joinLines(c.Networks), c.CreatedBy, micros(c.CreatedAt), c.CertThumbprint, c.CertSubject, smartMicros(c.CertExpires))
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "a client with this id exists")
	}
	return err
}

const smartClientColumns = `id, practice_id, name, redirect_uris, launch_url, public, secret_hash, scopes, jwks, networks, created_by, created_us, revoked_us, tls_cert_thumbprint, tls_cert_subject, tls_cert_expires_us`

func scanSMARTClient(s scanner) (SMARTClient, error) {
	var c SMARTClient
	var uris, scopes, networks string
	var public int
	var created, revoked, certExpires int64
	err := s.Scan(&c.ID, &c.PracticeID, &c.Name, &uris, &c.LaunchURL, &public, &c.SecretHash, &scopes, &c.JWKS, &networks, &c.CreatedBy, &created, &revoked,
		&c.CertThumbprint, &c.CertSubject, &certExpires)
	c.RedirectURIs, c.Scopes, c.Networks = splitLines(uris), splitLines(scopes), splitLines(networks)
	c.Public = public != 0
	c.CreatedAt, c.RevokedAt, c.CertExpires = fromMicros(created), smartTime(revoked), smartTime(certExpires)
	return c, err
}

// FindSMARTClient returns the client id, revoked or not; ENOTFOUND when
// there is none.
func (d *DB) FindSMARTClient(ctx context.Context, id string) (SMARTClient, error) {
	c, err := scanSMARTClient(d.db.QueryRowContext(ctx, `SELECT `+smartClientColumns+` FROM smart_clients WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, haven.Errorf(haven.ENOTFOUND, "no such client")
	}
	return c, err
}

// ListSMARTClients returns a practice's clients, oldest first.
func (d *DB) ListSMARTClients(ctx context.Context, practiceID string) ([]SMARTClient, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+smartClientColumns+` FROM smart_clients WHERE practice_id = $1
		ORDER BY created_us, id`, practiceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SMARTClient
	for rows.Next() {
		c, err := scanSMARTClient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RevokeSMARTClient marks a practice's client revoked and ends every
// grant it holds, in one transaction: an app the admin cut off reads
// nothing more, on any node.
func (d *DB) RevokeSMARTClient(ctx context.Context, practiceID, id string, at time.Time) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE smart_clients SET revoked_us = $1 WHERE id = $2 AND practice_id = $3 AND revoked_us = 0`,
		micros(at), id, practiceID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return haven.Errorf(haven.ENOTFOUND, "no such client")
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM smart_grants WHERE client_id = $1`, id); err != nil {
		return err
	}
	return tx.Commit()
}

// PutSMARTGrant stores g (a new code, challenge or token).
func (d *DB) PutSMARTGrant(ctx context.Context, g SMARTGrant) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO smart_grants (sig_hash, kind, request_id, client_id, user_id, active, expires_us, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, g.SigHash, g.Kind, g.RequestID, g.ClientID, g.UserID, boolInt(g.Active), micros(g.ExpiresAt), g.Data)
	return err
}

// EndUserSMARTGrants ends every app's codes and tokens acting for userID:
// whoever held her old credential, or an app she authorized with it, is
// out with her sessions. It returns how many grants it ended.
func (d *DB) EndUserSMARTGrants(ctx context.Context, userID string) (int, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE smart_grants SET active = 0 WHERE user_id = $1 AND active = 1`, userID)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// FindSMARTGrant returns the grant of kind stored under sigHash, active or
// not; ENOTFOUND when there is none.
func (d *DB) FindSMARTGrant(ctx context.Context, kind string, sigHash []byte) (SMARTGrant, error) {
	var g SMARTGrant
	var active int
	var exp int64
	err := d.db.QueryRowContext(ctx, `SELECT sig_hash, kind, request_id, client_id, active, expires_us, data FROM smart_grants
		WHERE sig_hash = $1 AND kind = $2`, sigHash, kind).Scan(&g.SigHash, &g.Kind, &g.RequestID, &g.ClientID, &active, &exp, &g.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return g, haven.Errorf(haven.ENOTFOUND, "no such grant")
	}
	g.Active, g.ExpiresAt = active != 0, fromMicros(exp)
	return g, err
}

// DeactivateSMARTGrant marks one grant used (a redeemed code) without
// deleting it, so a replay is recognised as one.
func (d *DB) DeactivateSMARTGrant(ctx context.Context, kind string, sigHash []byte) error {
	_, err := d.db.ExecContext(ctx, `UPDATE smart_grants SET active = 0 WHERE sig_hash = $1 AND kind = $2`, sigHash, kind)
	return err
}

// DeleteSMARTGrant deletes one grant.
func (d *DB) DeleteSMARTGrant(ctx context.Context, kind string, sigHash []byte) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM smart_grants WHERE sig_hash = $1 AND kind = $2`, sigHash, kind)
	return err
}

// DeleteSMARTGrants deletes every grant of kind in one authorization.
func (d *DB) DeleteSMARTGrants(ctx context.Context, kind, requestID string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM smart_grants WHERE request_id = $1 AND kind = $2`, requestID, kind)
	return err
}

// DeactivateSMARTGrants marks every grant of kind in one authorization
// used: a refresh token that was rotated away stays known, so presenting
// it again is seen as the theft it is.
func (d *DB) DeactivateSMARTGrants(ctx context.Context, kind, requestID string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE smart_grants SET active = 0 WHERE request_id = $1 AND kind = $2`, requestID, kind)
	return err
}

// PurgeSMARTGrants deletes grants and assertion ids that expired before
// cutoff.
func (d *DB) PurgeSMARTGrants(ctx context.Context, cutoff time.Time) error {
	if _, err := d.db.ExecContext(ctx, `DELETE FROM smart_grants WHERE expires_us < $1`, micros(cutoff)); err != nil {
		return err
	}
	_, err := d.db.ExecContext(ctx, `DELETE FROM smart_assertions WHERE expires_us < $1`, micros(cutoff))
	return err
}

// UseSMARTAssertion records a backend system's assertion id until exp;
// ECONFLICT when it was used before (a replay).
func (d *DB) UseSMARTAssertion(ctx context.Context, jti string, exp time.Time) error {
	h := HashSignature("jti\x00" + jti)
	_, err := d.db.ExecContext(ctx, `INSERT INTO smart_assertions (jti_hash, expires_us) VALUES ($1, $2)`, h, micros(exp))
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "the assertion was used before")
	}
	return err
}

// SMARTAssertionUsed reports whether the assertion id jti is known and
// not yet expired at now.
func (d *DB) SMARTAssertionUsed(ctx context.Context, jti string, now time.Time) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM smart_assertions WHERE jti_hash = $1 AND expires_us >= $2`,
		HashSignature("jti\x00"+jti), micros(now)).Scan(&n)
	return n > 0, err
}

// SMARTSecret returns the token strategy's HMAC secret, sealed as the
// caller keeps it (the caller seals and opens it: storage sees ciphertext
// only). The first node to ask stores candidate, a fresh secret sealed;
// every later call, on any node, gets that one back, so all nodes sign
// alike.
func (d *DB) SMARTSecret(ctx context.Context, candidate []byte) ([]byte, error) {
	return d.SMARTSecretAt(ctx, SMARTSecretHMAC, candidate)
}

// The secrets of the SMART server, by their row in smart_secret.
const (
	SMARTSecretHMAC       = 1 // the token strategy's HMAC secret
	SMARTSecretIDTokenKey = 2 // the private key id_tokens are signed with
)

// SMARTSecretAt is SMARTSecret for the secret of row id.
func (d *DB) SMARTSecretAt(ctx context.Context, id int, candidate []byte) ([]byte, error) {
	if _, err := d.db.ExecContext(ctx, `INSERT INTO smart_secret (id, secret) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, id, candidate); err != nil {
		return nil, err
	}
	return d.FindSMARTSecret(ctx, id)
}

// FindSMARTSecret returns the sealed secret of row id, or ENOTFOUND when
// no node has made it yet.
func (d *DB) FindSMARTSecret(ctx context.Context, id int) ([]byte, error) {
	var s []byte
	err := d.db.QueryRowContext(ctx, `SELECT secret FROM smart_secret WHERE id = $1`, id).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, haven.Errorf(haven.ENOTFOUND, "no such secret")
	}
	return s, err
}

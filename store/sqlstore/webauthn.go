package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"haven"
)

// This file keeps WebAuthn passkeys and security keys, and the challenges
// of ceremonies in progress. A credential's public key and counter are not
// secrets; its nickname arrives sealed. A challenge is used up by the one
// DELETE that finds it, so no answer is accepted twice.

// WebAuthnCredential is one registered authenticator.
type WebAuthnCredential struct {
	ID                string // Haven's id for the row, used in pages and URLs
	CredentialID      []byte // the authenticator's credential id
	UserID            string
	PracticeID        string
	PublicKey         []byte // COSE_Key
	SignCount         uint32
	Transports        []string
	AAGUID            []byte
	AttestationFormat string
	UserVerified      bool
	BackupEligible    bool
	BackupState       bool
	Discoverable      bool         // a resident key, usable for passwordless sign-in
	Nickname          haven.Sealed // the user's name for it, sealed; may be nil
	CreatedAt         time.Time
	LastUsedAt        time.Time
}

const webauthnColumns = `id, credential_id, user_id, practice_id, public_key, sign_count, transports, aaguid, attestation_fmt,
	user_verified, backup_eligible, backup_state, discoverable, nickname_sealed, created_us, last_used_us`

func scanWebAuthn(s scanner) (WebAuthnCredential, error) {
	var c WebAuthnCredential
	var count, created int64
	var transports string
	var nickname []byte
	var used sql.NullInt64
	if err := s.Scan(&c.ID, &c.CredentialID, &c.UserID, &c.PracticeID, &c.PublicKey, &count, &transports, &c.AAGUID,
		&c.AttestationFormat, &c.UserVerified, &c.BackupEligible, &c.BackupState, &c.Discoverable, &nickname, &created, &used); err != nil {
		return WebAuthnCredential{}, err
	}
	c.SignCount = uint32(count)
	if transports != "" {
		c.Transports = strings.Split(transports, ",")
	}
	if len(nickname) > 0 {
		c.Nickname = haven.Sealed(nickname)
	}
	c.CreatedAt, c.LastUsedAt = fromMicros(created), fromNullMicros(used)
	return c, nil
}

var errNoCredential = haven.Errorf(haven.ENOTFOUND, "no such passkey")

// CreateWebAuthnCredential stores a newly registered authenticator. A
// credential id that any account already holds is ECONFLICT.
func (d *DB) CreateWebAuthnCredential(ctx context.Context, c WebAuthnCredential) error {
	if c.ID == "" || len(c.CredentialID) == 0 || c.UserID == "" || len(c.PublicKey) == 0 || c.CreatedAt.IsZero() {
		return haven.Errorf(haven.EINVALID, "a passkey needs an id, a credential id, a user, a public key and a creation time")
	}
	for _, t := range c.Transports {
		if t == "" || strings.Contains(t, ",") {
			return haven.Errorf(haven.EINVALID, "passkey transports must be non-empty names without commas")
		}
	}
	var nickname []byte
	if len(c.Nickname) > 0 {
		nickname = c.Nickname
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO webauthn_credentials (`+webauthnColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		c.ID, c.CredentialID, c.UserID, c.PracticeID, c.PublicKey, int64(c.SignCount), strings.Join(c.Transports, ","), c.AAGUID,
		c.AttestationFormat, c.UserVerified, c.BackupEligible, c.BackupState, c.Discoverable, nickname, micros(c.CreatedAt),
		nullMicros(c.LastUsedAt))
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "this passkey is already registered")
	}
	return err
}

// WebAuthnCredentials returns userID's authenticators, oldest first.
func (d *DB) WebAuthnCredentials(ctx context.Context, userID string) ([]WebAuthnCredential, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+webauthnColumns+` FROM webauthn_credentials WHERE user_id = $1
		ORDER BY created_us, id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []WebAuthnCredential
	for rows.Next() {
		c, err := scanWebAuthn(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// HasWebAuthnCredential reports whether userID has any authenticator.
func (d *DB) HasWebAuthnCredential(ctx context.Context, userID string) (bool, error) {
	var one int
	err := d.db.QueryRowContext(ctx, `SELECT 1 FROM webauthn_credentials WHERE user_id = $1 LIMIT 1`, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// WebAuthnCredentialByCredentialID finds the authenticator a passwordless
// sign-in presented, whoever owns it; ENOTFOUND if none.
func (d *DB) WebAuthnCredentialByCredentialID(ctx context.Context, credentialID []byte) (WebAuthnCredential, error) {
	c, err := scanWebAuthn(d.db.QueryRowContext(ctx, `SELECT `+webauthnColumns+` FROM webauthn_credentials
		WHERE credential_id = $1`, credentialID))
	if errors.Is(err, sql.ErrNoRows) {
		return WebAuthnCredential{}, errNoCredential
	}
	return c, err
}

// UseWebAuthnCredential records an accepted assertion: the new counter,
// backup state and time. It is a compare-and-set on the counter the
// assertion was checked against, so it reports false when another
// assertion moved the counter first; the caller must then refuse. It
// never moves a counter backwards or keeps it in place (except at zero,
// for authenticators that keep no counter), whatever the caller checked.
func (d *DB) UseWebAuthnCredential(ctx context.Context, id string, checkedCount, newCount uint32, backupState bool, at time.Time) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE webauthn_credentials SET sign_count = $1, backup_state = $2, last_used_us = $3
		WHERE id = $4 AND sign_count = $5 AND ($1 > sign_count OR ($1 = 0 AND sign_count = 0))`, int64(newCount), backupState, micros(at), id, int64(checkedCount))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DeleteWebAuthnCredential removes one of userID's authenticators; another
// user's id is ENOTFOUND, exactly like one that does not exist.
func (d *DB) DeleteWebAuthnCredential(ctx context.Context, userID, id string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errNoCredential
	}
	return nil
}

// DeleteUserWebAuthnCredentials removes every authenticator of userID (an
// administrator's reset of a user who lost their factors).
func (d *DB) DeleteUserWebAuthnCredentials(ctx context.Context, userID string) (int, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM webauthn_credentials WHERE user_id = $1`, userID)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// WebAuthnChallenge is a ceremony waiting for the browser's answer.
type WebAuthnChallenge struct {
	Hash        []byte // SHA-256 of the challenge sent to the browser
	Kind        string // what the answer is for: registration, second factor, passwordless sign-in
	UserID      string // the user it was issued for; empty for a passwordless sign-in
	Binding     string // whom it is bound to: a pending sign-in, a session, a device
	SessionData []byte // the WebAuthn library's ceremony state
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// CreateWebAuthnChallenge stores a ceremony's challenge.
func (d *DB) CreateWebAuthnChallenge(ctx context.Context, c WebAuthnChallenge) error {
	if len(c.Hash) == 0 || c.Kind == "" || c.Binding == "" || len(c.SessionData) == 0 || !c.ExpiresAt.After(c.CreatedAt) {
		return haven.Errorf(haven.EINVALID, "a challenge needs a hash, a kind, a binding, session data and a lifetime")
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO webauthn_challenges
		(challenge_hash, kind, user_id, binding, session_data, created_us, expires_us) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		c.Hash, c.Kind, c.UserID, c.Binding, c.SessionData, micros(c.CreatedAt), micros(c.ExpiresAt))
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "challenge exists")
	}
	return err
}

var errNoChallenge = haven.Errorf(haven.ENOTFOUND, "this sign-in request has expired or was already answered")

// UseWebAuthnChallenge deletes and returns the unexpired challenge with
// hash, of kind, bound to binding, in one statement: of two answers to one
// challenge exactly one gets it. Any mismatch is ENOTFOUND and leaves the
// row alone, so a stranger holding a challenge cannot spend its owner's.
func (d *DB) UseWebAuthnChallenge(ctx context.Context, hash []byte, kind, binding string, now time.Time) (WebAuthnChallenge, error) {
	c := WebAuthnChallenge{}
	var created, expires int64
	err := d.db.QueryRowContext(ctx, `DELETE FROM webauthn_challenges
		WHERE challenge_hash = $1 AND kind = $2 AND binding = $3 AND expires_us > $4
		RETURNING challenge_hash, kind, user_id, binding, session_data, created_us, expires_us`,
		hash, kind, binding, micros(now)).Scan(&c.Hash, &c.Kind, &c.UserID, &c.Binding, &c.SessionData, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return WebAuthnChallenge{}, errNoChallenge
	}
	if err != nil {
		return WebAuthnChallenge{}, err
	}
	c.CreatedAt, c.ExpiresAt = fromMicros(created), fromMicros(expires)
	return c, nil
}

// PurgeWebAuthnChallenges deletes challenges that expired before cutoff.
func (d *DB) PurgeWebAuthnChallenges(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM webauthn_challenges WHERE expires_us < $1`, micros(cutoff))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

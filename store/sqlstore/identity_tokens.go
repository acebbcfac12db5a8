package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"haven"
)

// This file keeps single-use, expiring tokens (sign-ins waiting for a
// second factor, password resets, invitations, email verifications), the
// devices that completed a sign-in, and the few user updates identity
// needs. Tokens are stored as their SHA-256: whoever reads this table
// cannot reset a password or accept an invitation with what they read.

// Kinds of AuthToken.
const (
	TokenLogin  = "login"  // password passed, second factor pending
	TokenReset  = "reset"  // password reset link
	TokenInvite = "invite" // invitation to join a practice's workforce
	TokenVerify = "verify" // email verification for a self-registered patient
)

// AuthToken is one stored token.
type AuthToken struct {
	Hash       []byte
	Kind       string
	UserID     string // the account it acts on; empty for an invitation
	PracticeID string
	Role       haven.Role
	Email      haven.Sealed // an invitation's or registration's address, sealed
	ClientAddr string
	DeviceHash string
	CreatedBy  string // user id of the admin who invited, for the audit trail
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     time.Time
	Attempts   int // wrong second factors against a pending sign-in
}

const tokenColumns = `token_hash, kind, user_id, practice_id, role, email_sealed, client_addr, device_hash, created_by,
	created_us, expires_us, used_us, attempts`

func scanToken(s scanner) (AuthToken, error) {
	var t AuthToken
	var role string
	var email []byte
	var created, expires int64
	var used sql.NullInt64
	if err := s.Scan(&t.Hash, &t.Kind, &t.UserID, &t.PracticeID, &role, &email, &t.ClientAddr, &t.DeviceHash, &t.CreatedBy,
		&created, &expires, &used, &t.Attempts); err != nil {
		return AuthToken{}, err
	}
	t.Role, t.Email = haven.Role(role), haven.Sealed(email)
	t.CreatedAt, t.ExpiresAt, t.UsedAt = fromMicros(created), fromMicros(expires), fromNullMicros(used)
	return t, nil
}

// CreateAuthToken stores a token.
func (d *DB) CreateAuthToken(ctx context.Context, t AuthToken) error {
	if len(t.Hash) == 0 || t.Kind == "" || t.CreatedAt.IsZero() || !t.ExpiresAt.After(t.CreatedAt) {
		return haven.Errorf(haven.EINVALID, "token needs a hash, a kind and a lifetime")
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO auth_tokens (`+tokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		t.Hash, t.Kind, t.UserID, t.PracticeID, string(t.Role), []byte(t.Email), t.ClientAddr, t.DeviceHash, t.CreatedBy,
		micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.UsedAt), t.Attempts)
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "token exists")
	}
	return err
}

var errNoToken = haven.Errorf(haven.ENOTFOUND, "this link or sign-in has expired or was already used")

// FindAuthToken returns the unused, unexpired token of kind with hash at
// now, or ENOTFOUND; it does not use it up.
func (d *DB) FindAuthToken(ctx context.Context, hash []byte, kind string, now time.Time) (AuthToken, error) {
	t, err := scanToken(d.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM auth_tokens
		WHERE token_hash = $1 AND kind = $2 AND used_us IS NULL AND expires_us > $3`, hash, kind, micros(now)))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return AuthToken{}, errNoToken
		}
		return AuthToken{}, err
	}
	return t, nil
}

// UseAuthToken marks the token used and returns it, in one statement, so a
// link clicked twice at once works once; ENOTFOUND if it is unknown,
// expired or used.
func (d *DB) UseAuthToken(ctx context.Context, hash []byte, kind string, now time.Time) (AuthToken, error) {
	return useAuthToken(ctx, d.db, hash, kind, now)
}

// rowQuerier is what both *sql.DB and *sql.Tx offer for one-row queries.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func useAuthToken(ctx context.Context, q rowQuerier, hash []byte, kind string, now time.Time) (AuthToken, error) {
	t, err := scanToken(q.QueryRowContext(ctx, `UPDATE auth_tokens SET used_us = $1
		WHERE token_hash = $2 AND kind = $3 AND used_us IS NULL AND expires_us > $1
		RETURNING `+tokenColumns, micros(now), hash, kind))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return AuthToken{}, errNoToken
		}
		return AuthToken{}, err
	}
	return t, nil
}

// CountTokenAttempt adds one failed attempt to an unused token and returns
// the new count.
func (d *DB) CountTokenAttempt(ctx context.Context, hash []byte) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `UPDATE auth_tokens SET attempts = attempts + 1 WHERE token_hash = $1 AND used_us IS NULL RETURNING attempts`, hash).Scan(&n)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, errNoToken
		}
		return 0, err
	}
	return n, nil
}

// EndUserTokens uses up every outstanding token of kind for userID (all
// kinds when kind is ""): after a password reset, no older reset link and
// no half-finished sign-in survives.
func (d *DB) EndUserTokens(ctx context.Context, userID, kind string, at time.Time) (int, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE auth_tokens SET used_us = $1
		WHERE user_id = $2 AND ($3 = '' OR kind = $3) AND used_us IS NULL`, micros(at), userID, kind)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// PendingInvitations lists a practice's unused, unexpired invitations,
// newest first.
func (d *DB) PendingInvitations(ctx context.Context, practiceID string, now time.Time) ([]AuthToken, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM auth_tokens
		WHERE kind = $1 AND practice_id = $2 AND used_us IS NULL AND expires_us > $3 ORDER BY created_us DESC`,
		TokenInvite, practiceID, micros(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuthToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// PurgeAuthTokens deletes tokens that expired before cutoff.
func (d *DB) PurgeAuthTokens(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM auth_tokens WHERE expires_us < $1`, micros(cutoff))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// RememberDevice records that the device whose cookie hashes to
// deviceHash completed a full sign-in as userID.
func (d *DB) RememberDevice(ctx context.Context, userID string, deviceHash []byte, at time.Time) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO known_devices (device_hash, user_id, created_us) VALUES ($1, $2, $3)
		ON CONFLICT (device_hash, user_id) DO NOTHING`, deviceHash, userID, micros(at))
	return err
}

// KnownDevice reports whether deviceHash completed a sign-in as any of userIDs.
func (d *DB) KnownDevice(ctx context.Context, deviceHash []byte, userIDs ...string) (bool, error) {
	for _, id := range userIDs {
		var one int
		err := d.db.QueryRowContext(ctx, `SELECT 1 FROM known_devices WHERE device_hash = $1 AND user_id = $2`, deviceHash, id).Scan(&one)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
	}
	return false, nil
}

// ForgetDevices forgets every device of userID (after a password reset:
// a device that knew the old password is no longer vouched for).
func (d *DB) ForgetDevices(ctx context.Context, userID string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM known_devices WHERE user_id = $1`, userID)
	return err
}

// SetPasswordHash replaces userID's password hash.
func (d *DB) SetPasswordHash(ctx context.Context, userID, hash string) error {
	res, err := d.db.ExecContext(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ENOTFOUND, "user %s not found", userID)
	}
	return nil
}

// ReplacePasswordHash replaces userID's password hash only if it is still
// old: a rehash on sign-in must not undo a password change that raced it.
func (d *DB) ReplacePasswordHash(ctx context.Context, userID, old, hash string) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3`, hash, userID, old)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetUserDisabled disables or re-enables an account.
func (d *DB) SetUserDisabled(ctx context.Context, userID string, disabled bool) error {
	res, err := d.db.ExecContext(ctx, `UPDATE users SET disabled = $1 WHERE id = $2`, disabled, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ENOTFOUND, "user %s not found", userID)
	}
	return nil
}

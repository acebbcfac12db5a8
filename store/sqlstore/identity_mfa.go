package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"haven"
	"haven/auth/recovery"
	"haven/auth/totp"
)

// This file keeps second factors: TOTP secrets (sealed by the service
// layer before they arrive) with the last accepted time step, and the
// hashes of unused recovery codes.

// TOTPRecord is a user's authenticator as stored.
type TOTPRecord struct {
	UserID       string
	Secret       haven.Sealed // the active secret; nil until one is confirmed
	LastStep     int64        // the last time step accepted; codes of this step or earlier are refused
	ConfirmedAt  time.Time
	Pending      haven.Sealed // a secret being enrolled, waiting for its first code
	PendingSince time.Time
}

// Active reports whether the user has a confirmed authenticator.
func (r TOTPRecord) Active() bool { return len(r.Secret) > 0 }

// TOTP returns userID's authenticator record; a user with none gets the
// zero record and no error.
func (d *DB) TOTP(ctx context.Context, userID string) (TOTPRecord, error) {
	r := TOTPRecord{UserID: userID}
	var secret, pending []byte
	var confirmed, pendingAt sql.NullInt64
	err := d.db.QueryRowContext(ctx, `SELECT secret_sealed, last_step, confirmed_us, pending_sealed, pending_us FROM mfa_totp WHERE user_id = $1`, userID).
		Scan(&secret, &r.LastStep, &confirmed, &pending, &pendingAt)
	if errors.Is(err, sql.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	r.Secret, r.Pending = haven.Sealed(secret), haven.Sealed(pending)
	r.ConfirmedAt, r.PendingSince = fromNullMicros(confirmed), fromNullMicros(pendingAt)
	return r, nil
}

// SetPendingTOTP stores a secret being enrolled, replacing any earlier
// pending one. The active secret, if any, keeps working until the new one
// is confirmed.
func (d *DB) SetPendingTOTP(ctx context.Context, userID string, sealed haven.Sealed, at time.Time) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO mfa_totp (user_id, pending_sealed, pending_us) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET pending_sealed = excluded.pending_sealed, pending_us = excluded.pending_us`,
		userID, []byte(sealed), micros(at))
	return err
}

// ConfirmTOTP makes the pending secret enrolled at pendingSince the active
// one, with step (the step of the code that confirmed it) as its last used
// step, so that confirming code cannot then sign in. It reports false if
// the pending secret changed or is gone: a compare-and-set, so two
// confirmations cannot interleave.
func (d *DB) ConfirmTOTP(ctx context.Context, userID string, pendingSince time.Time, step int64, at time.Time) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE mfa_totp SET secret_sealed = pending_sealed, last_step = $1, confirmed_us = $2,
		pending_sealed = NULL, pending_us = NULL
		WHERE user_id = $3 AND pending_us = $4 AND pending_sealed IS NOT NULL`,
		step, micros(at), userID, micros(pendingSince))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// AdvanceStep implements totp.StepStore: one UPDATE that moves the last
// used step forward only, so of two requests racing with one code exactly
// one succeeds.
func (d *DB) AdvanceStep(ctx context.Context, userID string, step int64) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE mfa_totp SET last_step = $1 WHERE user_id = $2 AND last_step < $1 AND secret_sealed IS NOT NULL`,
		step, userID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DeleteTOTP removes userID's authenticator, active and pending.
func (d *DB) DeleteTOTP(ctx context.Context, userID string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM mfa_totp WHERE user_id = $1`, userID)
	return err
}

// RecoveryCodes implements recovery.Store.
func (d *DB) RecoveryCodes(ctx context.Context, userID string) ([][]byte, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT code_hash FROM mfa_recovery_codes WHERE user_id = $1 ORDER BY code_hash`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// ConsumeRecoveryCode implements recovery.Store: a DELETE whose row count
// says whether this request, and no other, used the code.
func (d *DB) ConsumeRecoveryCode(ctx context.Context, userID string, hash []byte) (bool, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND code_hash = $2`, userID, hash)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReplaceRecoveryCodes implements recovery.Store.
func (d *DB) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1`, userID); err != nil {
		return err
	}
	now := micros(d.now())
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO mfa_recovery_codes (user_id, code_hash, created_us) VALUES ($1, $2, $3)`, userID, h, now); err != nil {
			return err
		}
	}
	return tx.Commit()
}

var (
	_ totp.StepStore = (*DB)(nil)
	_ recovery.Store = (*DB)(nil)
)

package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"haven"
	"haven/audit"
)

// This file serves the practice admin's people page: accounts with the
// facts about their sign-in that need no key (which factors are enrolled,
// when they last signed in), and a disable that cannot leave a practice
// without an active administrator.

// AccountRow is one account as the admin's people page needs it: the user,
// with email and name still sealed, and facts kept beside it.
type AccountRow struct {
	User          *haven.User
	TOTP          bool // an authenticator app is active (a pending one does not count)
	Passkeys      int  // registered passkeys and security keys
	RecoveryCodes int  // unused recovery codes
	// LastSignIn is the time of the account's latest completed sign-in in
	// its practice's audit log, or zero for none. The log, not the sessions
	// table, is the source: sessions are purged days after they end, the
	// log never is.
	LastSignIn time.Time
}

// accountFacts are the columns that follow userColumns in an account
// query. The last sign-in walks the actor index backwards and stops at the
// first match, so a busy account costs no more than its events since its
// last sign-in. $1 is the sign-in action's name, which the service owns.
const accountFacts = `,
	(SELECT COUNT(*) FROM mfa_totp t WHERE t.user_id = users.id AND t.secret_sealed IS NOT NULL),
	(SELECT COUNT(*) FROM webauthn_credentials w WHERE w.user_id = users.id),
	(SELECT COUNT(*) FROM mfa_recovery_codes r WHERE r.user_id = users.id),
	(SELECT a.time_us FROM audit_events a WHERE a.log_id = COALESCE(users.practice_id, '` + audit.PlatformLogID + `')
		AND a.actor_id = users.id AND a.action = $1 AND a.decision = '` + haven.DecisionAllow + `' ORDER BY a.seq DESC LIMIT 1)`

func scanAccount(s scanner) (AccountRow, error) {
	var r AccountRow
	var u haven.User
	var practice sql.NullString
	var role string
	var email, name []byte
	var totp int
	var last sql.NullInt64
	if err := s.Scan(&u.ID, &practice, &role, &u.EmailIndex, &email, &name, &u.PasswordHash, &u.Disabled, &u.CreatedAt,
		&totp, &r.Passkeys, &r.RecoveryCodes, &last); err != nil {
		return AccountRow{}, err
	}
	u.PracticeID = practice.String
	u.Role = haven.Role(role)
	u.Email, u.Name = haven.Sealed(email), haven.Sealed(name)
	u.CreatedAt = u.CreatedAt.UTC()
	r.User, r.TOTP, r.LastSignIn = &u, totp > 0, fromNullMicros(last)
	return r, nil
}

// PracticeAccounts returns every account of a practice with its sign-in
// facts, oldest first. signInAction names the audit action of a completed
// sign-in.
func (d *DB) PracticeAccounts(ctx context.Context, practiceID, signInAction string) ([]AccountRow, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+userColumns+accountFacts+`
		FROM users WHERE practice_id = $2 ORDER BY created_at, id`, signInAction, practiceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AccountRow
	for rows.Next() {
		r, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Account returns one account with its sign-in facts, whatever its
// practice (the caller decides whether the asker may see it), or
// ENOTFOUND.
func (d *DB) Account(ctx context.Context, userID, signInAction string) (AccountRow, error) {
	r, err := scanAccount(d.db.QueryRowContext(ctx, `SELECT `+userColumns+accountFacts+`
		FROM users WHERE id = $2`, signInAction, userID))
	if err != nil {
		return AccountRow{}, notFound(err, "user", userID)
	}
	return r, nil
}

// ErrLastAdmin is SetUserDisabledKeepingAdmin's refusal.
var ErrLastAdmin = haven.Errorf(haven.ECONFLICT, "the practice's last active administrator cannot be disabled")

// SetUserDisabledKeepingAdmin disables or re-enables an account, refusing
// to disable a practice's last active administrator (ErrLastAdmin): a
// practice nobody can administer cannot re-enable anyone, reset a lost
// factor or invite a replacement. The count and the update are one
// transaction holding a lock (SQLite's immediate transaction locks the
// database at BEGIN; PostgreSQL locks the practice's row), so two
// administrators disabling each other at the same moment cannot both win.
func (d *DB) SetUserDisabledKeepingAdmin(ctx context.Context, userID string, disabled bool) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var practice sql.NullString
	var role string
	if err := tx.QueryRowContext(ctx, `SELECT practice_id, role FROM users WHERE id = $1`, userID).Scan(&practice, &role); err != nil {
		return notFound(err, "user", userID)
	}
	if disabled && haven.Role(role) == haven.RolePracticeAdmin && practice.Valid {
		if d.dialect == Postgres {
			var id string
			if err := tx.QueryRowContext(ctx, `SELECT id FROM practices WHERE id = $1 FOR UPDATE`, practice.String).Scan(&id); err != nil {
				return notFound(err, "practice", practice.String)
			}
		}
		var others int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE practice_id = $1 AND role = $2 AND disabled = $3 AND id <> $4`,
			practice.String, string(haven.RolePracticeAdmin), false, userID).Scan(&others); err != nil {
			return err
		}
		if others == 0 {
			return ErrLastAdmin
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET disabled = $1 WHERE id = $2`, disabled, userID); err != nil {
		return err
	}
	return tx.Commit()
}

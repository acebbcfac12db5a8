package sqlstore

import (
	"context"
	"database/sql"

	"haven"
)

const userColumns = `id, practice_id, role, email_index, email_sealed, name_sealed, password_hash, disabled, created_at`

type scanner interface{ Scan(...any) error }

func scanUser(s scanner) (*haven.User, error) {
	var u haven.User
	var practice sql.NullString
	var role string
	var email, name []byte
	if err := s.Scan(&u.ID, &practice, &role, &u.EmailIndex, &email, &name, &u.PasswordHash, &u.Disabled, &u.CreatedAt); err != nil {
		return nil, err
	}
	u.PracticeID = practice.String
	u.Role = haven.Role(role)
	u.Email, u.Name = haven.Sealed(email), haven.Sealed(name)
	u.CreatedAt = u.CreatedAt.UTC()
	return &u, nil
}

// CreateUser stores a new user. Email and Name must already be sealed; the
// same blind-indexed email may exist once per practice.
func (d *DB) CreateUser(ctx context.Context, u *haven.User) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = d.now()
	}
	if err := u.Validate(); err != nil {
		return err
	}
	return insertUser(ctx, d.db, u)
}

// execer is what both *sql.DB and *sql.Tx offer, so helpers serve both.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertUser(ctx context.Context, db execer, u *haven.User) error {
	_, err := db.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		u.ID, nullString(u.PracticeID), string(u.Role), u.EmailIndex, []byte(u.Email), []byte(u.Name), u.PasswordHash, u.Disabled, u.CreatedAt.UTC())
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "a user with that email already exists in practice %s", u.PracticeID)
	}
	return err
}

// FindUserByID returns one user, or ENOTFOUND.
func (d *DB) FindUserByID(ctx context.Context, id string) (*haven.User, error) {
	u, err := scanUser(d.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "user", id)
	}
	return u, nil
}

// FindUsersByEmailIndex returns the accounts whose blind-indexed email
// matches, across practices (one person may be a patient of two clinics).
func (d *DB) FindUsersByEmailIndex(ctx context.Context, index []byte) ([]*haven.User, error) {
	return d.queryUsers(ctx, `SELECT `+userColumns+` FROM users WHERE email_index = $1 ORDER BY created_at, id`, index)
}

// ListUsers returns the users of one practice, oldest first.
func (d *DB) ListUsers(ctx context.Context, practiceID string) ([]*haven.User, error) {
	return d.queryUsers(ctx, `SELECT `+userColumns+` FROM users WHERE practice_id = $1 ORDER BY created_at, id`, practiceID)
}

func (d *DB) queryUsers(ctx context.Context, query string, args ...any) ([]*haven.User, error) {
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var us []*haven.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		us = append(us, u)
	}
	return us, rows.Err()
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"haven"
)

const keyColumns = `practice_id, id, kind, patient_id, version, wrapped_by, wrapped, state, created_at`

func scanKey(s scanner) (haven.WrappedKey, error) {
	var k haven.WrappedKey
	err := s.Scan(&k.PracticeID, &k.ID, &k.Kind, &k.PatientID, &k.Version, &k.WrappedBy, &k.Wrapped, &k.State, &k.CreatedAt)
	k.CreatedAt = k.CreatedAt.UTC()
	return k, err
}

// CreateKey inserts k, or returns ECONFLICT if its id or its (practice,
// kind, patient, version) exists: racing creators end with one key. Every
// new patient's first sealed field creates one, so it is a hot statement.
func (d *DB) CreateKey(ctx context.Context, k haven.WrappedKey) error {
	_, err := d.exec(ctx, createKeySQL, keyArgs(k)...)
	return keyConflict(err, k)
}

// createKeySQL inserts one key (CreateKey, and a new patient's data key
// in the transaction that creates her record: insertPatient).
const createKeySQL = `INSERT INTO wrapped_keys (` + keyColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

func keyArgs(k haven.WrappedKey) []any {
	return []any{k.PracticeID, k.ID, k.Kind, k.PatientID, k.Version, k.WrappedBy, k.Wrapped, k.State, k.CreatedAt.UTC()}
}

// keyConflict is ECONFLICT for an insert of k that found its id or its
// (practice, kind, patient, version) taken.
func keyConflict(err error, k haven.WrappedKey) error {
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "%s key %s v%d of practice %s exists", k.Kind, k.ID, k.Version, k.PracticeID)
	}
	return err
}

// keyVersionSQL and newestKeySQL are GetKey's two lookups, by the
// unique (practice, kind, patient, version): every new patient's first
// sealed field runs both (no data key yet; the practice key to wrap one),
// so they are hot statements.
const (
	keyVersionSQL = `SELECT ` + keyColumns + ` FROM wrapped_keys WHERE practice_id = $1 AND kind = $2 AND patient_id = $3 AND version = $4`
	newestKeySQL  = `SELECT ` + keyColumns + ` FROM wrapped_keys WHERE practice_id = $1 AND kind = $2 AND patient_id = $3 ORDER BY version DESC LIMIT 1`
)

// GetKey returns one key version, or the newest when version is 0.
func (d *DB) GetKey(ctx context.Context, practiceID, kind, patientID string, version int) (haven.WrappedKey, error) {
	var row *sql.Row
	if version > 0 {
		row = d.queryRow(ctx, keyVersionSQL, practiceID, kind, patientID, version)
	} else {
		row = d.queryRow(ctx, newestKeySQL, practiceID, kind, patientID)
	}
	k, err := scanKey(row)
	if err == sql.ErrNoRows {
		return k, haven.Errorf(haven.ENOTFOUND, "no %s key v%d for practice %s", kind, version, practiceID)
	}
	return k, err
}

// ListKeys pages through keys in id order after the given id; empty
// filters match anything.
func (d *DB) ListKeys(ctx context.Context, practiceID, kind, wrappedBy, after string, limit int) ([]haven.WrappedKey, error) {
	var where []string
	var args []any
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			where = append(where, fmt.Sprintf("%s = $%d", col, len(args)))
		}
	}
	add("practice_id", practiceID)
	add("kind", kind)
	add("wrapped_by", wrappedBy)
	args = append(args, after)
	where = append(where, fmt.Sprintf("id > $%d", len(args)))
	args = append(args, limit)
	q := `SELECT ` + keyColumns + ` FROM wrapped_keys WHERE ` + strings.Join(where, " AND ") +
		fmt.Sprintf(` ORDER BY id LIMIT $%d`, len(args))
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ks []haven.WrappedKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		ks = append(ks, k)
	}
	return ks, rows.Err()
}

// UpdateKey moves one key from prev's wrapping and state to next's, as a
// compare-and-swap, so concurrent rotations and shreds cannot interleave
// badly. Setting Wrapped to nil overwrites the stored bytes. The key-state
// version rises in the same transaction, so every node sees the change on
// its next use of a key.
func (d *DB) UpdateKey(ctx context.Context, prev, next haven.WrappedKey) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE wrapped_keys SET wrapped_by = $1, wrapped = $2, state = $3
		WHERE id = $4 AND wrapped_by = $5 AND state = $6`,
		next.WrappedBy, next.Wrapped, next.State, prev.ID, prev.WrappedBy, prev.State)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		if _, err := tx.ExecContext(ctx, `UPDATE key_state SET version = version + 1 WHERE id = 1`); err != nil {
			return err
		}
		return tx.Commit()
	}
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM wrapped_keys WHERE id = $1`, prev.ID).Scan(&one); err == sql.ErrNoRows {
		return haven.Errorf(haven.ENOTFOUND, "key %s not found", prev.ID)
	}
	return haven.Errorf(haven.ECONFLICT, "key %s changed concurrently", prev.ID)
}

// KeyState returns the key-state version and the current root's ID: one
// read of a one-row table by its primary key, made before every use of a
// data key.
const keyStateSQL = `SELECT version, root_id FROM key_state WHERE id = 1`

func (d *DB) KeyState(ctx context.Context) (version int64, rootID string, err error) {
	err = d.queryRow(ctx, keyStateSQL).Scan(&version, &rootID)
	if err == sql.ErrNoRows {
		return 0, "", haven.Errorf(haven.EINTERNAL, "the key_state row is missing: run haven migrate")
	}
	return version, rootID, err
}

// SetRoot records next as the current root if it is still prev, raising
// the key-state version; ECONFLICT otherwise.
func (d *DB) SetRoot(ctx context.Context, prev, next string) error {
	res, err := d.db.ExecContext(ctx, `UPDATE key_state SET root_id = $1, version = version + 1 WHERE id = 1 AND root_id = $2`, next, prev)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ECONFLICT, "the current root changed concurrently")
	}
	return nil
}

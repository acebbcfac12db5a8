package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"haven/auth/throttle"
)

// ThrottleStore returns the sign-in failure counts kept in this database,
// shared by every node: with counts in each node's memory, a load balancer
// would multiply an attacker's allowance by the number of nodes.
func (d *DB) ThrottleStore() throttle.Store { return throttleStore{d} }

type throttleStore struct{ d *DB }

// Get implements throttle.Store.
func (t throttleStore) Get(ctx context.Context, key string) (throttle.Record, error) {
	var r throttle.Record
	var last int64
	err := t.d.db.QueryRowContext(ctx, `SELECT failures, last_us FROM auth_throttle WHERE key = $1`, []byte(key)).Scan(&r.Failures, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return throttle.Record{}, nil
	}
	if err != nil {
		return throttle.Record{}, err
	}
	r.Last = fromMicros(last)
	return r, nil
}

// Update implements throttle.Store: the read, fn and the write happen in
// one transaction holding the row (SQLite's immediate transactions lock
// the database at BEGIN; PostgreSQL locks the row FOR UPDATE after making
// sure it exists), so concurrent failures are all counted.
func (t throttleStore) Update(ctx context.Context, key string, fn func(throttle.Record) throttle.Record) (throttle.Record, error) {
	tx, err := t.d.db.BeginTx(ctx, nil)
	if err != nil {
		return throttle.Record{}, err
	}
	defer tx.Rollback()
	lock := ""
	if t.d.dialect == Postgres {
		if _, err := tx.ExecContext(ctx, `INSERT INTO auth_throttle (key, failures, last_us) VALUES ($1, 0, 0) ON CONFLICT (key) DO NOTHING`, []byte(key)); err != nil {
			return throttle.Record{}, err
		}
		lock = " FOR UPDATE"
	}
	var cur throttle.Record
	var last int64
	err = tx.QueryRowContext(ctx, `SELECT failures, last_us FROM auth_throttle WHERE key = $1`+lock, []byte(key)).Scan(&cur.Failures, &last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return throttle.Record{}, err
	case cur.Failures > 0:
		cur.Last = fromMicros(last)
	default:
		cur = throttle.Record{}
	}
	next := fn(cur)
	if next.Failures <= 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM auth_throttle WHERE key = $1`, []byte(key)); err != nil {
			return throttle.Record{}, err
		}
		return throttle.Record{}, tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO auth_throttle (key, failures, last_us) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_us = excluded.last_us`,
		[]byte(key), next.Failures, micros(next.Last)); err != nil {
		return throttle.Record{}, err
	}
	return next, tx.Commit()
}

// PurgeThrottle deletes counts whose last failure is older than cutoff
// (the throttle forgets them anyway).
func (d *DB) PurgeThrottle(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM auth_throttle WHERE last_us < $1`, micros(cutoff))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

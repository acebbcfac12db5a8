package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"

	"haven"
)

// SpentTokens remembers redeemed video join tokens in the database, so a
// token is single-use across a restart and across every node sharing the
// database (an in-memory set would forget on restart and see only its own
// node's joins). It implements token.Spent. Only the token's random id is
// stored, never the token.
type SpentTokens struct {
	d         *DB
	lastPrune atomic.Int64 // unix seconds of the last prune
}

// SpentTokens returns the spent-token store over d.
func (d *DB) SpentTokens() *SpentTokens { return &SpentTokens{d: d} }

// pruneEvery bounds how often MarkSpent also deletes expired rows: often
// enough that the table holds minutes of joins, rarely enough that a join
// does not pay for a delete.
const pruneEvery = time.Minute

// PruneGrace is how long past its expiry a spent id is kept. Nodes'
// clocks differ a little; a node whose clock runs behind still accepts a
// token for that long after another node thinks it expired, so its id must
// still be there to refuse the replay. It is longer than any token lives.
const PruneGrace = 10 * time.Minute

// MarkSpent records tokenID as used until expiry. Of two redemptions of one
// id (concurrent, on any node) exactly one succeeds: the primary key
// decides, and the other gets ECONFLICT. Even a token this node thinks
// expired is recorded: whether it is expired is the verifier's clock's
// call, and a second node may disagree.
func (s *SpentTokens) MarkSpent(ctx context.Context, tokenID string, expiry time.Time) error {
	if tokenID == "" || len(tokenID) > 64 {
		return haven.Errorf(haven.EINVALID, "token id must be 1 to 64 characters")
	}
	now := s.d.now()
	if last := s.lastPrune.Load(); now.Unix()-last >= int64(pruneEvery/time.Second) && s.lastPrune.CompareAndSwap(last, now.Unix()) {
		if _, err := s.Prune(ctx); err != nil {
			return err
		}
	}
	_, err := s.d.db.ExecContext(ctx, `INSERT INTO video_spent_tokens (token_id, expires_us) VALUES ($1, $2)`, tokenID, micros(expiry))
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "join token already used")
	}
	return err
}

// Prune deletes the ids of tokens that expired more than PruneGrace ago
// and returns how many.
func (s *SpentTokens) Prune(ctx context.Context) (int64, error) {
	res, err := s.d.db.ExecContext(ctx, `DELETE FROM video_spent_tokens WHERE expires_us <= $1`, micros(s.d.now().Add(-PruneGrace)))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Len returns how many spent ids are held (tests and metrics).
func (s *SpentTokens) Len(ctx context.Context) (int, error) {
	var n int
	err := s.d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM video_spent_tokens`).Scan(&n)
	return n, err
}

// InviteGuest records that invitedBy invited userID to visitID's call.
// Inviting someone twice is not an error.
func (d *DB) InviteGuest(ctx context.Context, visitID, userID, invitedBy string) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO visit_guests (visit_id, user_id, invited_by, invited_us) VALUES ($1, $2, $3, $4)
		ON CONFLICT (visit_id, user_id) DO NOTHING`, visitID, userID, invitedBy, micros(d.now()))
	return err
}

// VisitGuests returns the ids of the users invited to visitID's call, in
// the order they were invited.
func (d *DB) VisitGuests(ctx context.Context, visitID string) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT user_id FROM visit_guests WHERE visit_id = $1 ORDER BY invited_us, user_id`, visitID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// GuestVisits returns the admitted visits userID is invited to, soonest
// first.
func (d *DB) GuestVisits(ctx context.Context, userID string) ([]*haven.Visit, error) {
	return d.queryVisits(ctx, `SELECT `+visitColumns+` FROM visits WHERE state = 'admitted'
		AND id IN (SELECT visit_id FROM visit_guests WHERE user_id = $1) ORDER BY starts_at`, userID)
}

// IsGuest reports whether userID was invited to visitID's call.
func (d *DB) IsGuest(ctx context.Context, visitID, userID string) (bool, error) {
	var one int
	err := d.db.QueryRowContext(ctx, `SELECT 1 FROM visit_guests WHERE visit_id = $1 AND user_id = $2`, visitID, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

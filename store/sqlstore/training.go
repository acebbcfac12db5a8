package sqlstore

import (
	"context"
	"time"

	"haven"
)

// RecordTraining stores a passed training module.
func (d *DB) RecordTraining(ctx context.Context, c haven.TrainingCompletion) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO training_completions (id, practice_id, user_id, module, score, total, completed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, c.ID, c.PracticeID, c.UserID, c.Module, c.Score, c.Total, c.CompletedAt.UTC())
	return err
}

// LatestTraining returns, for each user of the practice (or only userID,
// when not ""), their latest passed completion of each module. (The
// latest is chosen here, not with MAX(): SQLite answers MAX of a timestamp
// as text.)
func (d *DB) LatestTraining(ctx context.Context, practiceID, userID string) ([]haven.TrainingCompletion, error) {
	q := `SELECT id, practice_id, user_id, module, score, total, completed_at FROM training_completions WHERE practice_id = $1`
	args := []any{practiceID}
	if userID != "" {
		q += ` AND user_id = $2`
		args = append(args, userID)
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY user_id, module, completed_at DESC, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []haven.TrainingCompletion
	seen := map[[2]string]bool{}
	for rows.Next() {
		var c haven.TrainingCompletion
		if err := rows.Scan(&c.ID, &c.PracticeID, &c.UserID, &c.Module, &c.Score, &c.Total, &c.CompletedAt); err != nil {
			return nil, err
		}
		if k := [2]string{c.UserID, c.Module}; !seen[k] {
			seen[k] = true
			c.CompletedAt = c.CompletedAt.UTC()
			out = append(out, c)
		}
	}
	return out, rows.Err()
}

// TrainingFacts returns what a decision needs of one workforce member's
// training: when their account was made and their latest completion of
// each module. Only called when the practice requires training.
func (d *DB) TrainingFacts(ctx context.Context, practiceID, userID string) (time.Time, map[string]time.Time, error) {
	var created time.Time
	if err := d.db.QueryRowContext(ctx, `SELECT created_at FROM users WHERE id = $1 AND practice_id = $2`, userID, practiceID).Scan(&created); err != nil {
		return created, nil, notFound(err, "user", userID)
	}
	done, err := d.LatestTraining(ctx, practiceID, userID)
	if err != nil {
		return created, nil, err
	}
	latest := make(map[string]time.Time, len(done))
	for _, c := range done {
		latest[c.Module] = c.CompletedAt
	}
	return created.UTC(), latest, nil
}

// ContactCode is a stored email verification code: its keyed hash, the
// practice and recipient (blind index) it was sent for, its kind and time.
type ContactCode struct {
	Hash, Recipient []byte
	PracticeID      string
	Kind            string
	SentAt          time.Time
}

// PutContactCode stores a code sent in an email.
func (d *DB) PutContactCode(ctx context.Context, c ContactCode) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO contact_codes (code_hash, practice_id, recipient, kind, sent_at) VALUES ($1, $2, $3, $4, $5)`,
		c.Hash, c.PracticeID, c.Recipient, c.Kind, c.SentAt.UTC())
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "contact code already stored")
	}
	return err
}

// FindContactCode returns the code with this hash, or ENOTFOUND.
func (d *DB) FindContactCode(ctx context.Context, hash []byte) (*ContactCode, error) {
	var c ContactCode
	err := d.db.QueryRowContext(ctx, `SELECT code_hash, practice_id, recipient, kind, sent_at FROM contact_codes WHERE code_hash = $1`, hash).
		Scan(&c.Hash, &c.PracticeID, &c.Recipient, &c.Kind, &c.SentAt)
	if err != nil {
		return nil, notFound(err, "contact code", "")
	}
	c.SentAt = c.SentAt.UTC()
	return &c, nil
}

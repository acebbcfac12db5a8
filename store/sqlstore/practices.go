package sqlstore

import (
	"context"
	"time"

	"haven"
)

// CreatePractice stores a new practice. Its CreatedAt is set here.
func (d *DB) CreatePractice(ctx context.Context, p *haven.Practice) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = d.now()
	}
	if err := p.Validate(); err != nil {
		return err
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO practices (id, name, created_at) VALUES ($1, $2, $3)`,
		p.ID, p.Name, p.CreatedAt.UTC())
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "practice %s already exists", p.ID)
	}
	return err
}

// FindPracticeByID returns one practice, or ENOTFOUND.
func (d *DB) FindPracticeByID(ctx context.Context, id string) (*haven.Practice, error) {
	var p haven.Practice
	err := d.db.QueryRowContext(ctx, `SELECT id, name, created_at FROM practices WHERE id = $1`, id).
		Scan(&p.ID, &p.Name, &p.CreatedAt)
	if err != nil {
		return nil, notFound(err, "practice", id)
	}
	p.CreatedAt = p.CreatedAt.UTC()
	return &p, nil
}

// ListPractices returns every practice, oldest first. Practice names are
// public (they are what patients search for), so this carries no PHI.
func (d *DB) ListPractices(ctx context.Context) ([]*haven.Practice, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, name, created_at FROM practices ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ps []*haven.Practice
	for rows.Next() {
		var p haven.Practice
		var t time.Time
		if err := rows.Scan(&p.ID, &p.Name, &t); err != nil {
			return nil, err
		}
		p.CreatedAt = t.UTC()
		ps = append(ps, &p)
	}
	return ps, rows.Err()
}

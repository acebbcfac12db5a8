package sqlstore

import (
	"context"
	"time"

	"haven"
)

// CreatePatientWithToken uses up the unused, unexpired token of kind with
// hash and stores a patient's account and chart (and key, as
// CreatePatient does), in one transaction: a
// patient who registered themselves through an emailed link. Either all
// of it happens or none of it does, so a link that fails halfway (an
// address that meanwhile got an account, a database fault) is not burnt,
// and a link clicked twice at once creates one patient. The token must
// belong to the chart's practice: a link from one practice's registration
// page never creates a patient in another. ENOTFOUND for an unknown,
// used, expired or other practice's token; ECONFLICT when the email (or
// MRN) already has an account in the practice.
func (d *DB) CreatePatientWithToken(ctx context.Context, hash []byte, kind string, at time.Time, u *haven.User, p *haven.Patient, key *haven.WrappedKey) (AuthToken, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return AuthToken{}, err
	}
	defer tx.Rollback()
	t, err := useAuthToken(ctx, tx, hash, kind, at)
	if err != nil {
		return AuthToken{}, err
	}
	if t.PracticeID == "" || t.PracticeID != p.PracticeID {
		return AuthToken{}, errNoToken
	}
	if err := d.insertPatient(ctx, tx, u, p, key); err != nil {
		return AuthToken{}, err
	}
	return t, tx.Commit()
}

package sqlstore

import (
	"context"

	"haven"
)

// MFACoverage counts a practice's accounts that can sign in (not
// disabled, password chosen) and those of them with a second factor
// enrolled (an active authenticator app or a passkey; recovery codes alone
// are not one), workforce and patients apart: the evidence of person
// authentication in the compliance report. Counts only, no one named.
type MFACoverage struct {
	Workforce, WorkforceWithFactor int
	Patients, PatientsWithFactor   int
}

// MFACoverage returns the practice's MFACoverage.
func (d *DB) MFACoverage(ctx context.Context, practiceID string) (MFACoverage, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT role = $2, COUNT(*),
		SUM(CASE WHEN EXISTS (SELECT 1 FROM mfa_totp t WHERE t.user_id = users.id AND t.secret_sealed IS NOT NULL)
			OR EXISTS (SELECT 1 FROM webauthn_credentials w WHERE w.user_id = users.id) THEN 1 ELSE 0 END)
		FROM users WHERE practice_id = $1 AND NOT disabled AND password_hash <> ''
		GROUP BY role = $2`, practiceID, string(haven.RolePatient))
	if err != nil {
		return MFACoverage{}, err
	}
	defer rows.Close()
	var c MFACoverage
	for rows.Next() {
		var patient bool
		var n, with int
		if err := rows.Scan(&patient, &n, &with); err != nil {
			return MFACoverage{}, err
		}
		if patient {
			c.Patients, c.PatientsWithFactor = n, with
		} else {
			c.Workforce, c.WorkforceWithFactor = n, with
		}
	}
	return c, rows.Err()
}

package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"haven"
)

const patientColumns = `id, practice_id, mrn_index, mrn_sealed, demographics_sealed, contact_sealed, restrictions_sealed, version, created_at, updated_at`

func scanPatient(s scanner) (*haven.Patient, error) {
	var p haven.Patient
	var mrn, demo, contact, restr []byte
	if err := s.Scan(&p.ID, &p.PracticeID, &p.MRNIndex, &mrn, &demo, &contact, &restr, &p.Version, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return nil, err
	}
	p.MRN, p.Demographics, p.Contact, p.Restrictions = mrn, demo, contact, restr
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return &p, nil
}

// CreatePatient stores a patient's account and chart, and key, the data
// key their fields are sealed under when it is not stored yet (nil when it
// is: keyring's NewDataKey), in one transaction, so a failure (a duplicate
// MRN or email) leaves none of them behind. The MRN must be unique in its
// practice.
func (d *DB) CreatePatient(ctx context.Context, u *haven.User, p *haven.Patient, key *haven.WrappedKey) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := d.insertPatient(ctx, tx, u, p, key); err != nil {
		return err
	}
	return tx.Commit()
}

// insertPatient checks and adds a patient's account and chart, and her
// data key unless key is nil, within tx, for CreatePatient and for a
// self-registration that uses up its link in the same transaction
// (registration.go). Its inserts are hot statements: the front desk
// registers patients in bursts.
func (d *DB) insertPatient(ctx context.Context, tx *sql.Tx, u *haven.User, p *haven.Patient, key *haven.WrappedKey) error {
	now := d.now()
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	if err := u.Validate(); err != nil {
		return err
	}
	if u.Role != haven.RolePatient || u.ID != p.ID || u.PracticeID != p.PracticeID {
		return haven.Errorf(haven.EINVALID, "a chart belongs to a patient account of its own practice")
	}
	if key != nil && (key.PracticeID != p.PracticeID || key.PatientID != p.ID) {
		return haven.Errorf(haven.EINVALID, "a new chart's key is its own patient's")
	}
	p.CreatedAt, p.UpdatedAt, p.Version = now, now, 1
	if err := insertUser(ctx, hotTx{d, tx}, u); err != nil {
		return err
	}
	_, err := d.txExec(ctx, tx, `INSERT INTO patients (`+patientColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		p.ID, p.PracticeID, p.MRNIndex, []byte(p.MRN), []byte(p.Demographics), []byte(p.Contact), nullBytes(p.Restrictions), p.Version, now, now)
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "a patient with that MRN already exists in practice %s", p.PracticeID)
	}
	if err != nil || key == nil {
		return err
	}
	_, err = d.txExec(ctx, tx, createKeySQL, keyArgs(*key)...)
	return keyConflict(err, *key)
}

const findPatientSQL = `SELECT ` + patientColumns + ` FROM patients WHERE id = $1`

// FindPatient returns the chart row of a patient id, or ENOTFOUND.
func (d *DB) FindPatient(ctx context.Context, id string) (*haven.Patient, error) {
	p, err := scanPatient(d.db.QueryRowContext(ctx, findPatientSQL, id))
	if err != nil {
		return nil, notFound(err, "patient", id)
	}
	return p, nil
}

// FindPatientByMRN finds a chart by its blind-indexed MRN in one practice.
func (d *DB) FindPatientByMRN(ctx context.Context, practiceID string, mrnIndex []byte) (*haven.Patient, error) {
	p, err := scanPatient(d.db.QueryRowContext(ctx, `SELECT `+patientColumns+` FROM patients WHERE practice_id = $1 AND mrn_index = $2`, practiceID, mrnIndex))
	if err != nil {
		return nil, notFound(err, "patient with MRN in practice", practiceID)
	}
	return p, nil
}

// ListPatients returns a practice's chart rows (sealed), oldest first.
func (d *DB) ListPatients(ctx context.Context, practiceID string) ([]*haven.Patient, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+patientColumns+` FROM patients WHERE practice_id = $1 ORDER BY created_at, id`, practiceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ps []*haven.Patient
	for rows.Next() {
		p, err := scanPatient(rows)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, rows.Err()
}

// UpdatePatient replaces a chart's sealed fields if its version is still
// p.Version (optimistic locking: two editors cannot silently overwrite each
// other), and bumps the version.
func (d *DB) UpdatePatient(ctx context.Context, p *haven.Patient) error {
	now := d.now()
	res, err := d.db.ExecContext(ctx, `UPDATE patients SET mrn_index = $1, mrn_sealed = $2, demographics_sealed = $3, contact_sealed = $4,
		restrictions_sealed = $5, version = version + 1, updated_at = $6 WHERE id = $7 AND version = $8`,
		p.MRNIndex, []byte(p.MRN), []byte(p.Demographics), []byte(p.Contact), nullBytes(p.Restrictions), now, p.ID, p.Version)
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "a patient with that MRN already exists in practice %s", p.PracticeID)
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ECONFLICT, "patient %s was changed by someone else; reload and try again", p.ID)
	}
	p.Version++
	p.UpdatedAt = now
	return nil
}

// AddCareTeamMember puts a user on a patient's care team (idempotent).
func (d *DB) AddCareTeamMember(ctx context.Context, m haven.CareTeamMember) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO care_team (practice_id, patient_id, user_id, added_by, added_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (patient_id, user_id) DO NOTHING`, m.PracticeID, m.PatientID, m.UserID, m.AddedBy, d.now())
	return err
}

// RemoveCareTeamMember takes a user off a patient's care team.
func (d *DB) RemoveCareTeamMember(ctx context.Context, patientID, userID string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM care_team WHERE patient_id = $1 AND user_id = $2`, patientID, userID)
	return err
}

// careTeamSQL reads one patient's care team by the primary key's first
// column. The rows are ordered in Go: an ORDER BY the key does not cover
// could lead SQLite, told by its statistics that the table is tiny, to read
// the whole table instead.
const careTeamSQL = `SELECT practice_id, patient_id, user_id, added_by, added_at FROM care_team /*index:sqlite_autoindex_care_team_1*/ WHERE patient_id = $1`

// CareTeam returns the members of one patient's care team.
func (d *DB) CareTeam(ctx context.Context, patientID string) ([]haven.CareTeamMember, error) {
	rows, err := d.db.QueryContext(ctx, d.sql(careTeamSQL), patientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ms []haven.CareTeamMember
	for rows.Next() {
		var m haven.CareTeamMember
		if err := rows.Scan(&m.PracticeID, &m.PatientID, &m.UserID, &m.AddedBy, &m.AddedAt); err != nil {
			return nil, err
		}
		m.AddedAt = m.AddedAt.UTC()
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b haven.CareTeamMember) int {
		return cmp.Or(a.AddedAt.Compare(b.AddedAt), cmp.Compare(a.UserID, b.UserID))
	})
	return ms, rows.Err()
}

// PatientsOfCareTeamMember returns the patient ids a user is on the care
// team of, for a clinician's patient list.
func (d *DB) PatientsOfCareTeamMember(ctx context.Context, userID string) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT patient_id FROM care_team WHERE user_id = $1 ORDER BY added_at`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

const grantColumns = `id, practice_id, patient_id, user_id, reason_sealed, starts_at, expires_at, reviewed_at, reviewed_by, review_sealed`

func scanGrant(s scanner) (*haven.BreakGlassGrant, error) {
	var g haven.BreakGlassGrant
	var reason, review []byte
	var reviewedAt sql.NullTime
	var reviewedBy sql.NullString
	if err := s.Scan(&g.ID, &g.PracticeID, &g.PatientID, &g.UserID, &reason, &g.Start, &g.Expires, &reviewedAt, &reviewedBy, &review); err != nil {
		return nil, err
	}
	g.Reason, g.Review, g.ReviewedBy = reason, review, reviewedBy.String
	g.Start, g.Expires = g.Start.UTC(), g.Expires.UTC()
	if reviewedAt.Valid {
		t := reviewedAt.Time.UTC()
		g.ReviewedAt = &t
	}
	return &g, nil
}

// CreateBreakGlassGrant stores a grant.
func (d *DB) CreateBreakGlassGrant(ctx context.Context, g *haven.BreakGlassGrant) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO break_glass_grants (id, practice_id, patient_id, user_id, reason_sealed, starts_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, g.ID, g.PracticeID, g.PatientID, g.UserID, []byte(g.Reason), g.Start.UTC(), g.Expires.UTC())
	return err
}

const grantsOfPatientSQL = `SELECT ` + grantColumns + ` FROM break_glass_grants /*index:break_glass_patient*/ WHERE patient_id = $1 ORDER BY starts_at`

// BreakGlassGrants returns the grants on one patient.
func (d *DB) BreakGlassGrants(ctx context.Context, patientID string) ([]*haven.BreakGlassGrant, error) {
	return d.queryGrants(ctx, d.sql(grantsOfPatientSQL), patientID)
}

// FindBreakGlassGrant returns one grant.
func (d *DB) FindBreakGlassGrant(ctx context.Context, id string) (*haven.BreakGlassGrant, error) {
	g, err := scanGrant(d.db.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM break_glass_grants WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "break-glass grant", id)
	}
	return g, nil
}

// UnreviewedBreakGlassGrants is the compliance officer's review queue.
func (d *DB) UnreviewedBreakGlassGrants(ctx context.Context, practiceID string) ([]*haven.BreakGlassGrant, error) {
	return d.queryGrants(ctx, `SELECT `+grantColumns+` FROM break_glass_grants WHERE practice_id = $1 AND reviewed_at IS NULL ORDER BY starts_at`, practiceID)
}

// ReviewBreakGlassGrant closes a grant's review once.
func (d *DB) ReviewBreakGlassGrant(ctx context.Context, id, reviewer string, review haven.Sealed) error {
	res, err := d.db.ExecContext(ctx, `UPDATE break_glass_grants SET reviewed_at = $1, reviewed_by = $2, review_sealed = $3 WHERE id = $4 AND reviewed_at IS NULL`,
		d.now(), reviewer, []byte(review), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ECONFLICT, "break-glass grant %s is already reviewed or does not exist", id)
	}
	return nil
}

func (d *DB) queryGrants(ctx context.Context, q string, args ...any) ([]*haven.BreakGlassGrant, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var gs []*haven.BreakGlassGrant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	return gs, rows.Err()
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// LegalHold reports whether a patient is under a legal hold.
func (d *DB) LegalHold(ctx context.Context, patientID string) (bool, error) {
	var hold bool
	err := d.db.QueryRowContext(ctx, `SELECT legal_hold FROM patients WHERE id = $1`, patientID).Scan(&hold)
	return hold, notFound(err, "patient", patientID)
}

// SetLegalHold places or lifts a legal hold on a patient.
func (d *DB) SetLegalHold(ctx context.Context, patientID string, hold bool) error {
	res, err := d.db.ExecContext(ctx, `UPDATE patients SET legal_hold = $1 WHERE id = $2`, hold, patientID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ENOTFOUND, "patient %s not found", patientID)
	}
	return nil
}

// MarkPatientErased records when a patient was erased (crypto-shredded),
// keeping the first time if it is recorded already: an erasure run again
// after a crash does not move the date.
func (d *DB) MarkPatientErased(ctx context.Context, id string, at time.Time) error {
	_, err := d.db.ExecContext(ctx, `UPDATE patients SET erased_at = $1 WHERE id = $2 AND erased_at IS NULL`, at.UTC(), id)
	return err
}

// ErasedPatients returns when each erased patient of a practice was
// erased, by patient id.
func (d *DB) ErasedPatients(ctx context.Context, practiceID string) (map[string]time.Time, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, erased_at FROM patients WHERE practice_id = $1 AND erased_at IS NOT NULL`, practiceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[id] = at.UTC()
	}
	return out, rows.Err()
}

// PatientFacts are what an access decision about one patient needs, read
// in one statement: the patient's chart row (nil when no patient has the
// id), and, within the asking practice only, the patient's care team,
// break-glass grants (by start) and visits (by start) when they were asked
// for (WithRelations), with that practice's settings document ("" when it
// has set none).
type PatientFacts struct {
	Patient  *haven.Patient
	CareTeam []haven.CareTeamMember
	Grants   []*haven.BreakGlassGrant
	Visits   []*haven.Visit
	Settings string

	// The key state (see KeyState), read in the same statement, so a
	// request that opens the patient's fields needs no read of its own
	// (keyring.CheckedAs). KeyRead is false if the row was missing.
	KeyVersion int64
	KeyRoot    string
	KeyRead    bool
}

// patientFactsSQL is PatientFacts as one statement: a UNION ALL of one
// lookup per table, each by its key (the hot lookups of planner.go), each
// row tagged with its kind and laid out in typed columns: s1…s6 text,
// b1…b5 bytes, t1…t6 times, n1 a number. The first lookup fills every
// column from a table column (the ones the patient's row does not need
// repeat its own), so each column has that column's type on PostgreSQL,
// which matches a UNION's columns pairwise from the left, and its declared
// type on SQLite, whose driver reads times by it. $1 is the patient, $2 the asking
// practice: the patient's row is read whatever its practice (the caller
// must tell another practice's record from none), everything else only
// within the asking practice, so facts about another tenant are never
// returned. The last row is the key state, which the fields' opening
// needs: read here, the opening costs no statement of its own.
const patientFactsSQL = factsRelationsCTEs + factsPatientRow + factsRelations + factsPractice

// patientRowFactsSQL is patientFactsSQL without the patient's relations
// (WithoutRelations): the row, the practice's settings and the key state.
const patientRowFactsSQL = factsPatientRow + factsPractice

// Grants and visits have an index by practice too, and a PostgreSQL
// planner with stale statistics took it for "patient_id = $1 AND
// practice_id = $2", reading every visit of the practice to find the
// patient's (TestHotQueriesReadFewRowsInABigUnanalyzedDatabase). So they
// are looked up by patient alone in a MATERIALIZED CTE, which no engine
// merges with the query around it, and the practice is checked on the
// handful of rows found.
const factsRelationsCTEs = `WITH g AS MATERIALIZED (SELECT id, practice_id, patient_id, user_id, reviewed_by, reason_sealed, review_sealed,
		starts_at, expires_at, reviewed_at
		FROM break_glass_grants /*index:break_glass_patient*/ WHERE patient_id = $1),
	v AS MATERIALIZED (SELECT id, practice_id, patient_id, clinician_id, state, booked_by, reason_sealed,
		starts_at, ends_at, checked_in_at, admitted_at, ended_at, created_at, version
		FROM visits /*index:visits_patient*/ WHERE patient_id = $1)
	`

// factsPatientRow is the facts statement's first lookup: the patient's
// row, whose columns give the statement's their types.
const factsPatientRow = `SELECT 'p' AS k, id AS s1, practice_id AS s2, id AS s3, id AS s4, id AS s5, id AS s6,
		mrn_index AS b1, mrn_sealed AS b2, demographics_sealed AS b3, contact_sealed AS b4, restrictions_sealed AS b5,
		created_at AS t1, updated_at AS t2, created_at AS t3, created_at AS t4, created_at AS t5, created_at AS t6, version AS n1
		FROM patients WHERE id = $1`

// factsRelations are the patient's care team, grants and visits within
// the asking practice (the last two from factsRelationsCTEs).
const factsRelations = `
	UNION ALL SELECT 'c', practice_id, patient_id, user_id, added_by, NULL, NULL,
		NULL, NULL, NULL, NULL, NULL,
		added_at, NULL, NULL, NULL, NULL, NULL, NULL
		FROM care_team /*index:sqlite_autoindex_care_team_1*/ WHERE patient_id = $1 AND practice_id = $2
	UNION ALL SELECT 'g', id, practice_id, patient_id, user_id, reviewed_by, NULL,
		reason_sealed, review_sealed, NULL, NULL, NULL,
		starts_at, expires_at, reviewed_at, NULL, NULL, NULL, NULL
		FROM g WHERE practice_id = $2
	UNION ALL SELECT 'v', id, practice_id, patient_id, clinician_id, state, booked_by,
		reason_sealed, NULL, NULL, NULL, NULL,
		starts_at, ends_at, checked_in_at, admitted_at, ended_at, created_at, version
		FROM v WHERE practice_id = $2`

// factsPractice are the asking practice's settings and the key state.
const factsPractice = `
	UNION ALL SELECT 's', settings, NULL, NULL, NULL, NULL, NULL,
		NULL, NULL, NULL, NULL, NULL,
		NULL, NULL, NULL, NULL, NULL, NULL, NULL
		FROM practice_settings WHERE practice_id = $2
	UNION ALL SELECT 'k', root_id, NULL, NULL, NULL, NULL, NULL,
		NULL, NULL, NULL, NULL, NULL,
		NULL, NULL, NULL, NULL, NULL, NULL, version
		FROM key_state WHERE id = 1`

// patientFactsSQLite is patientFactsSQL for SQLite, whose INDEXED BY
// already holds each lookup to its index: there the CTEs are inlined, as
// materializing them costs two temporary tables per read.
var patientFactsSQLite = strings.ReplaceAll(patientFactsSQL, " AS MATERIALIZED (", " AS NOT MATERIALIZED (")

// Relations says whether PatientFacts reads the patient's relations to
// the workforce: care team, break-glass grants and visits.
type Relations bool

const (
	// WithRelations reads them: what a decision for the workforce needs.
	WithRelations Relations = true
	// WithoutRelations leaves them out: policy decides a patient's own
	// access by whose record it is, never by her relations, so for her
	// they would be read for nothing (two of the statement's three
	// lookups, and on PostgreSQL its two materialized scans).
	WithoutRelations Relations = false
)

// factsSQL is the facts statement as d's engine runs it best.
func (d *DB) factsSQL(rel Relations) string {
	switch {
	case rel == WithoutRelations:
		return patientRowFactsSQL
	case d.dialect == SQLite:
		return patientFactsSQLite
	}
	return patientFactsSQL
}

// factsPatient is the patient's row as a facts read scans it, in
// patientColumns' order, from nullable columns: nil when there is none.
func factsPatient(id, practiceID sql.NullString, mrnIndex, mrn, demo, contact, restr []byte, version sql.NullInt64, created, updated sql.NullTime) *haven.Patient {
	if !id.Valid {
		return nil
	}
	return &haven.Patient{ID: id.String, PracticeID: practiceID.String, MRNIndex: mrnIndex, MRN: mrn, Demographics: demo,
		Contact: contact, Restrictions: restr, Version: int(version.Int64), CreatedAt: created.Time.UTC(), UpdatedAt: updated.Time.UTC()}
}

// PatientFacts reads what deciding on patientID for a member of
// practiceID needs, in one round trip (see patientFactsSQL); the
// patient's relations only when rel asks for them.
func (d *DB) PatientFacts(ctx context.Context, practiceID, patientID string, rel Relations) (*PatientFacts, error) {
	rows, err := d.query(ctx, d.factsSQL(rel), patientID, practiceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	f := &PatientFacts{}
	for rows.Next() {
		var k string
		var s [6]sql.NullString
		var b [5][]byte
		var t [6]sql.NullTime
		var n sql.NullInt64
		if err := rows.Scan(&k, &s[0], &s[1], &s[2], &s[3], &s[4], &s[5], &b[0], &b[1], &b[2], &b[3], &b[4],
			&t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &n); err != nil {
			return nil, err
		}
		at := func(i int) time.Time { return t[i].Time.UTC() }
		atp := func(i int) *time.Time {
			if !t[i].Valid {
				return nil
			}
			v := at(i)
			return &v
		}
		switch k {
		case "p":
			f.Patient = factsPatient(s[0], s[1], b[0], b[1], b[2], b[3], b[4], n, t[0], t[1])
		case "c":
			f.CareTeam = append(f.CareTeam, haven.CareTeamMember{PracticeID: s[0].String, PatientID: s[1].String,
				UserID: s[2].String, AddedBy: s[3].String, AddedAt: at(0)})
		case "g":
			g := &haven.BreakGlassGrant{ID: s[0].String, PracticeID: s[1].String, PatientID: s[2].String, UserID: s[3].String,
				ReviewedBy: s[4].String, Reason: b[0], Review: b[1], Start: at(0), Expires: at(1), ReviewedAt: atp(2)}
			f.Grants = append(f.Grants, g)
		case "v":
			v := &haven.Visit{ID: s[0].String, PracticeID: s[1].String, PatientID: s[2].String, ClinicianID: s[3].String,
				State: s[4].String, BookedBy: s[5].String, Reason: b[0], Start: at(0), End: at(1),
				CheckedInAt: atp(2), AdmittedAt: atp(3), EndedAt: atp(4), Version: int(n.Int64), CreatedAt: at(5)}
			f.Visits = append(f.Visits, v)
		case "s":
			f.Settings = s[0].String
		case "k":
			f.KeyVersion, f.KeyRoot, f.KeyRead = n.Int64, s[0].String, true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(f.Grants, func(x, y *haven.BreakGlassGrant) int { return x.Start.Compare(y.Start) })
	slices.SortStableFunc(f.Visits, func(x, y *haven.Visit) int { return x.Start.Compare(y.Start) })
	return f, nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"haven"
	"haven/auth/session"
)

// This file implements session.Store, plus the little more the service
// layer keeps about a session (the factor it passed, a coarse device label
// for the "where you are signed in" page, and whether it was challenged).
// Only token hashes are stored; the tokens themselves never reach here.

// micros is t as stored: microseconds since the epoch, UTC.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the inverse of micros.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros stores the zero time as NULL.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}

// SessionRecord is a session as the service layer keeps it.
type SessionRecord struct {
	session.Session
	// Factor is the second factor last passed ("totp", "recovery",
	// "webauthn"), or "" for a password-only session.
	Factor string
	// DeviceLabel is a coarse description ("Firefox on Linux") shown to the
	// user so they can tell their sessions apart; never a fingerprint.
	DeviceLabel string
	// ChallengedAt is set when a request came from another network or
	// device: the session then serves nothing until its owner
	// re-authenticates.
	ChallengedAt time.Time
	// PracticeSettings is the session's practice's settings document as
	// the session was read ("" when the practice has set none), read in the
	// same statement, so checking a session under its practice's policy is
	// one round trip. Only SessionRecordByTokenHash fills it.
	PracticeSettings string
}

const sessionColumns = `id, token_hash, user_id, practice_id, role, created_us, last_seen_us, auth_us, mfa, factor,
	client_addr, device_hash, device_label, challenged_us, revoked_us`

// scanSession scans sessionColumns, and then into more, the columns a
// query adds after them.
func scanSession(s scanner, more ...any) (SessionRecord, error) {
	var r SessionRecord
	var role string
	var created, lastSeen, auth int64
	var challenged, revoked sql.NullInt64
	if err := s.Scan(append([]any{&r.ID, &r.TokenHash, &r.UserID, &r.PracticeID, &role, &created, &lastSeen, &auth, &r.MFA, &r.Factor,
		&r.ClientAddr, &r.DeviceHash, &r.DeviceLabel, &challenged, &revoked}, more...)...); err != nil {
		return SessionRecord{}, err
	}
	r.Role = haven.Role(role)
	r.CreatedAt, r.LastSeen, r.AuthTime = fromMicros(created), fromMicros(lastSeen), fromMicros(auth)
	r.ChallengedAt, r.RevokedAt = fromNullMicros(challenged), fromNullMicros(revoked)
	return r, nil
}

// CreateSessionRecord stores a new session.
func (d *DB) CreateSessionRecord(ctx context.Context, r SessionRecord) error {
	if r.ID == "" || len(r.TokenHash) == 0 || r.UserID == "" || r.CreatedAt.IsZero() {
		return haven.Errorf(haven.EINVALID, "session needs an id, a token hash, a user and a start time")
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		r.ID, r.TokenHash, r.UserID, r.PracticeID, string(r.Role), micros(r.CreatedAt), micros(r.LastSeen), micros(r.AuthTime),
		r.MFA, r.Factor, r.ClientAddr, r.DeviceHash, r.DeviceLabel, nullMicros(r.ChallengedAt), nullMicros(r.RevokedAt))
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "session %s exists", r.ID)
	}
	return err
}

// sessionByTokenSQL finds a live account's session by its token hash. The
// account is looked up by its key in a scalar subquery, not joined: see
// planner.go.
const sessionByTokenSQL = `SELECT ` + sessionColumns + `,
	COALESCE((SELECT ps.settings FROM practice_settings ps WHERE ps.practice_id = sessions.practice_id), '') AS settings
	FROM sessions /*index:sqlite_autoindex_sessions_2*/ WHERE token_hash = $1
	AND NOT COALESCE((SELECT u.disabled FROM users u WHERE u.id = sessions.user_id), FALSE)`

// SessionRecordByTokenHash returns the session with that token hash,
// revoked or not, or ENOTFOUND; ENOTFOUND too when its account is
// disabled.
func (d *DB) SessionRecordByTokenHash(ctx context.Context, hash []byte) (SessionRecord, error) {
	// A disabled account's sessions are gone even if ending them failed
	// half-way: the account's state is checked on every request too.
	var settings string
	r, err := scanSession(d.queryRow(ctx, sessionByTokenSQL, hash), &settings)
	if err != nil {
		return SessionRecord{}, notFound(err, "session", "")
	}
	r.PracticeSettings = settings
	return r, nil
}

// sessionAndPatientSQL is sessionByTokenSQL (its columns first, as s.*)
// that also reads, for a patient's session, what a decision on the record
// of patient $2 needs (PatientFacts WithoutRelations, whose settings are
// the session's own): that patient's row, whatever its practice, as
// factsPatientRow reads it, and the key state. For any other role it
// joins nothing: a workforce decision needs the patient's relations as
// well, and PatientFacts reads them with the row. Both joins are by a
// whole key: patients' by its primary key, key_state's single row.
//
// SQLite, which flattens the session's statement into the joins, would
// otherwise read tiny tables whole, as its statistics suggest: each table
// is named its index (see indexMarker).
const sessionAndPatientSQL = `SELECT s.*, ` + joinedPatientColumns + `, key_state.root_id, key_state.version
	FROM (` + sessionByTokenSQL + `) s
	LEFT JOIN patients p /*index:sqlite_autoindex_patients_1*/ ON p.id = $2 AND s.role = 'patient'
	LEFT JOIN key_state ON key_state.id = 1 AND s.role = 'patient'`

// joinedPatientColumns are patientColumns of the patients table joined as p.
const joinedPatientColumns = `p.id, p.practice_id, p.mrn_index, p.mrn_sealed, p.demographics_sealed, p.contact_sealed,
	p.restrictions_sealed, p.version, p.created_at, p.updated_at`

// SessionRecordAndPatient is SessionRecordByTokenHash for a request that
// reads the record of patient patientID: for a patient's session the same
// statement reads what her access decision on that record needs, the
// facts PatientFacts(session's practice, patientID, WithoutRelations)
// would return (Patient nil when no patient has the id), so the request's
// decision costs no statement of its own. For a workforce session facts
// is nil.
func (d *DB) SessionRecordAndPatient(ctx context.Context, hash []byte, patientID string) (SessionRecord, *PatientFacts, error) {
	var settings string
	var id, practiceID, keyRoot sql.NullString
	var mrnIndex, mrn, demo, contact, restr []byte
	var version, keyVersion sql.NullInt64
	var created, updated sql.NullTime
	r, err := scanSession(d.queryRow(ctx, sessionAndPatientSQL, hash, patientID), &settings,
		&id, &practiceID, &mrnIndex, &mrn, &demo, &contact, &restr, &version, &created, &updated, &keyRoot, &keyVersion)
	if err != nil {
		return SessionRecord{}, nil, notFound(err, "session", "")
	}
	r.PracticeSettings = settings
	if r.Role != haven.RolePatient {
		return r, nil, nil
	}
	return r, &PatientFacts{Patient: factsPatient(id, practiceID, mrnIndex, mrn, demo, contact, restr, version, created, updated),
		Settings: settings, KeyVersion: keyVersion.Int64, KeyRoot: keyRoot.String, KeyRead: keyVersion.Valid}, nil
}

// SessionRecordByID returns one of userID's sessions, or ENOTFOUND.
func (d *DB) SessionRecordByID(ctx context.Context, userID, id string) (SessionRecord, error) {
	r, err := scanSession(d.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1 AND user_id = $2`, id, userID))
	if err != nil {
		return SessionRecord{}, notFound(err, "session", id)
	}
	return r, nil
}

// UserSessionRecords lists userID's unrevoked sessions, newest first.
func (d *DB) UserSessionRecords(ctx context.Context, userID string) ([]SessionRecord, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND revoked_us IS NULL ORDER BY created_us DESC, id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SessionRecord
	for rows.Next() {
		r, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ChallengeSession marks a live session as needing re-authentication.
func (d *DB) ChallengeSession(ctx context.Context, id string, at time.Time) error {
	_, err := d.db.ExecContext(ctx, `UPDATE sessions SET challenged_us = $1 WHERE id = $2 AND challenged_us IS NULL AND revoked_us IS NULL`,
		micros(at), id)
	return err
}

// Reauthenticate records a step-up or a passed challenge: a fresh auth
// time, the factor passed, and the address and device the session now
// belongs to; the challenge, if any, is cleared. A revoked session stays
// revoked (ENOTFOUND).
func (d *DB) Reauthenticate(ctx context.Context, id string, at time.Time, mfa bool, factor, clientAddr, deviceHash string) error {
	res, err := d.db.ExecContext(ctx, `UPDATE sessions SET auth_us = $1, mfa = $2, factor = $3, client_addr = $4, device_hash = $5,
		challenged_us = NULL, last_seen_us = CASE WHEN last_seen_us < $1 THEN $1 ELSE last_seen_us END
		WHERE id = $6 AND revoked_us IS NULL`,
		micros(at), mfa, factor, clientAddr, deviceHash, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ENOTFOUND, "no live session %s", id)
	}
	return nil
}

// CreateSession implements session.Store.
func (d *DB) CreateSession(ctx context.Context, s session.Session) error {
	return d.CreateSessionRecord(ctx, SessionRecord{Session: s})
}

// SessionByTokenHash implements session.Store.
func (d *DB) SessionByTokenHash(ctx context.Context, hash []byte) (session.Session, error) {
	r, err := d.SessionRecordByTokenHash(ctx, hash)
	return r.Session, err
}

// TouchSession implements session.Store: LastSeen never moves backwards.
const touchSessionSQL = `UPDATE sessions SET last_seen_us = $1 WHERE id = $2 AND last_seen_us < $1`

func (d *DB) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := d.db.ExecContext(ctx, touchSessionSQL, micros(at), id)
	return err
}

// RecordAuth implements session.Store.
func (d *DB) RecordAuth(ctx context.Context, id string, at time.Time, mfa bool) error {
	res, err := d.db.ExecContext(ctx, `UPDATE sessions SET auth_us = $1, mfa = $2 WHERE id = $3`, micros(at), mfa, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ENOTFOUND, "no session %s", id)
	}
	return nil
}

// RevokeSession implements session.Store: only userID's own session, so
// nobody ends another user's session by guessing its id.
func (d *DB) RevokeSession(ctx context.Context, userID, id string, at time.Time) error {
	res, err := d.db.ExecContext(ctx, `UPDATE sessions SET revoked_us = COALESCE(revoked_us, $1) WHERE id = $2 AND user_id = $3`,
		micros(at), id, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ENOTFOUND, "no session %s", id)
	}
	return nil
}

// RevokeUserSessions implements session.Store.
func (d *DB) RevokeUserSessions(ctx context.Context, userID string, at time.Time) (int, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE sessions SET revoked_us = $1 WHERE user_id = $2 AND revoked_us IS NULL`, micros(at), userID)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// UserSessions implements session.Store.
func (d *DB) UserSessions(ctx context.Context, userID string) ([]session.Session, error) {
	rs, err := d.UserSessionRecords(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]session.Session, len(rs))
	for i, r := range rs {
		out[i] = r.Session
	}
	return out, nil
}

// PurgeSessions deletes sessions that ended (revoked, or started) before
// cutoff, so the table does not grow without bound. Sign-ins themselves
// stay in the audit log.
func (d *DB) PurgeSessions(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM sessions WHERE revoked_us < $1 OR created_us < $1`, micros(cutoff))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

var _ session.Store = (*DB)(nil)

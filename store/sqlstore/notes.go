package sqlstore

import (
	"context"
	"database/sql"

	"haven"
)

// Visit notes, their addenda and amendment requests. Texts arrive sealed
// and leave sealed. A signed note's row is never written again: every
// update here names the state it expects, so an edit of a signed note
// changes nothing and answers ECONFLICT.

const noteColumns = `id, practice_id, patient_id, visit_id, author_id, body_sealed, state, signed_by, signed_us,
	release_us, hash, signature, key_id, updated_us, created_us`

func scanNote(s scanner) (*haven.Note, error) {
	var n haven.Note
	var body []byte
	var signedBy, keyID sql.NullString
	var signed, release sql.NullInt64
	if err := s.Scan(&n.ID, &n.PracticeID, &n.PatientID, &n.VisitID, &n.AuthorID, &body, &n.State, &signedBy, &signed,
		&release, &n.Hash, &n.Signature, &keyID, &n.UpdatedUS, &n.CreatedUS); err != nil {
		return nil, err
	}
	n.Body = body
	n.SignedBy, n.KeyID, n.SignedUS, n.ReleaseUS = signedBy.String, keyID.String, signed.Int64, release.Int64
	return &n, nil
}

// SaveDraft stores a draft note: the visit's first save creates it, later
// ones replace its body while it is still a draft. A signed note is
// ECONFLICT and is left as it was. It fills in n's id (the stored one if
// the note existed) and times.
func (d *DB) SaveDraft(ctx context.Context, n *haven.Note) error {
	now := micros(d.now())
	res, err := d.db.ExecContext(ctx, `UPDATE notes SET body_sealed = $1, updated_us = $2 WHERE visit_id = $3 AND id = $4 AND state = 'draft'`,
		[]byte(n.Body), now, n.VisitID, n.ID)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k == 1 {
		n.UpdatedUS = now
		return nil
	}
	if _, err := d.db.ExecContext(ctx, `INSERT INTO notes (`+noteColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, 'draft', NULL, NULL, NULL, NULL, NULL, NULL, $7, $7)`,
		n.ID, n.PracticeID, n.PatientID, n.VisitID, n.AuthorID, []byte(n.Body), now); err != nil {
		if isUniqueViolation(err) {
			return haven.Errorf(haven.ECONFLICT, "this visit's note was changed meanwhile; reload it")
		}
		return err
	}
	n.State, n.UpdatedUS, n.CreatedUS = haven.NoteDraft, now, now
	return nil
}

// SignNote locks a draft: its state, signer, times, hash and signature are
// set in one update that requires the body it was signed over to be the
// stored one and the note to be a draft. Otherwise ECONFLICT.
func (d *DB) SignNote(ctx context.Context, n *haven.Note) error {
	res, err := d.db.ExecContext(ctx, `UPDATE notes SET state = 'signed', signed_by = $1, signed_us = $2, release_us = $3,
		hash = $4, signature = $5, key_id = $6, updated_us = $2
		WHERE id = $7 AND state = 'draft' AND updated_us = $8`,
		n.SignedBy, n.SignedUS, n.ReleaseUS, n.Hash, n.Signature, n.KeyID, n.ID, n.UpdatedUS)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return haven.Errorf(haven.ECONFLICT, "the note was signed or changed meanwhile; reload it")
	}
	n.State, n.UpdatedUS = haven.NoteSigned, n.SignedUS
	return nil
}

// VisitNote returns a visit's note, or ENOTFOUND.
func (d *DB) VisitNote(ctx context.Context, visitID string) (*haven.Note, error) {
	n, err := scanNote(d.db.QueryRowContext(ctx, `SELECT `+noteColumns+` FROM notes WHERE visit_id = $1`, visitID))
	if err != nil {
		return nil, notFound(err, "note of visit", visitID)
	}
	return n, nil
}

// FindNote returns a note by id, or ENOTFOUND.
func (d *DB) FindNote(ctx context.Context, id string) (*haven.Note, error) {
	n, err := scanNote(d.db.QueryRowContext(ctx, `SELECT `+noteColumns+` FROM notes WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "note", id)
	}
	return n, nil
}

// PatientNotes returns a patient's notes, newest first; signedOnly leaves
// drafts out.
func (d *DB) PatientNotes(ctx context.Context, patientID string, signedOnly bool) ([]*haven.Note, error) {
	q := `SELECT ` + noteColumns + ` FROM notes WHERE patient_id = $1`
	if signedOnly {
		q += ` AND state = 'signed'`
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY created_us DESC`, patientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Note
	for rows.Next() {
		n, err := scanNote(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

const addendumColumns = `id, note_id, practice_id, patient_id, author_id, body_sealed, amendment_id, hash, signature, key_id, created_us`

// AddAddendum appends a signed addendum to a signed note (ECONFLICT if the
// note is not signed). With amendment set, the amendment is accepted in
// the same transaction, if it is still requested (else ECONFLICT and
// nothing is stored).
func (d *DB) AddAddendum(ctx context.Context, a *haven.Addendum, accept *haven.Amendment) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var state string
	if err := tx.QueryRowContext(ctx, `SELECT state FROM notes WHERE id = $1`, a.NoteID).Scan(&state); err != nil {
		return notFound(err, "note", a.NoteID)
	}
	if state != haven.NoteSigned {
		return haven.Errorf(haven.ECONFLICT, "only a signed note takes addenda; edit the draft instead")
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO note_addenda (`+addendumColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.ID, a.NoteID, a.PracticeID, a.PatientID, a.AuthorID, []byte(a.Body), nullString(a.AmendmentID), a.Hash, a.Signature, a.KeyID, a.CreatedUS); err != nil {
		return err
	}
	if accept != nil {
		if err := decide(ctx, tx, accept); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// NoteAddenda returns a note's addenda, oldest first.
func (d *DB) NoteAddenda(ctx context.Context, noteID string) ([]*haven.Addendum, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+addendumColumns+` FROM note_addenda WHERE note_id = $1 ORDER BY created_us, id`, noteID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Addendum
	for rows.Next() {
		var a haven.Addendum
		var body []byte
		var amendment sql.NullString
		if err := rows.Scan(&a.ID, &a.NoteID, &a.PracticeID, &a.PatientID, &a.AuthorID, &body, &amendment, &a.Hash, &a.Signature, &a.KeyID, &a.CreatedUS); err != nil {
			return nil, err
		}
		a.Body, a.AmendmentID = body, amendment.String
		out = append(out, &a)
	}
	return out, rows.Err()
}

const amendmentColumns = `id, practice_id, patient_id, part, record_id, reason_sealed, state, due_us, extension_sealed,
	decided_by, decided_us, response_sealed, addendum_id, disagreement_sealed, disagreed_us, created_us, changed_us`

func scanAmendment(s scanner) (*haven.Amendment, error) {
	var a haven.Amendment
	var reason, ext, resp, dis []byte
	var decidedBy, addendum sql.NullString
	var decided, disagreed sql.NullInt64
	if err := s.Scan(&a.ID, &a.PracticeID, &a.PatientID, &a.Part, &a.RecordID, &reason, &a.State, &a.DueUS, &ext,
		&decidedBy, &decided, &resp, &addendum, &dis, &disagreed, &a.CreatedUS, &a.ChangedUS); err != nil {
		return nil, err
	}
	a.Reason, a.Extension, a.Response, a.Disagreement = reason, ext, resp, dis
	a.DecidedBy, a.AddendumID, a.DecidedUS, a.DisagreedUS = decidedBy.String, addendum.String, decided.Int64, disagreed.Int64
	return &a, nil
}

// CreateAmendment stores a new request.
func (d *DB) CreateAmendment(ctx context.Context, a *haven.Amendment) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO amendments (`+amendmentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, NULL, NULL, NULL, NULL, $9, $9)`,
		a.ID, a.PracticeID, a.PatientID, a.Part, a.RecordID, []byte(a.Reason), a.State, a.DueUS, a.CreatedUS)
	return err
}

// FindAmendment returns a request, or ENOTFOUND.
func (d *DB) FindAmendment(ctx context.Context, id string) (*haven.Amendment, error) {
	a, err := scanAmendment(d.db.QueryRowContext(ctx, `SELECT `+amendmentColumns+` FROM amendments WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "amendment", id)
	}
	return a, nil
}

// DecideAmendment records a denial (or an acceptance without an
// addendum) if the request is still requested; else ECONFLICT.
func (d *DB) DecideAmendment(ctx context.Context, a *haven.Amendment) error {
	return decide(ctx, d.db, a)
}

func decide(ctx context.Context, db execer, a *haven.Amendment) error {
	res, err := db.ExecContext(ctx, `UPDATE amendments SET state = $1, decided_by = $2, decided_us = $3, response_sealed = $4,
		addendum_id = $5, changed_us = $3 WHERE id = $6 AND state = 'requested'`,
		a.State, a.DecidedBy, a.DecidedUS, []byte(a.Response), nullString(a.AddendumID), a.ID)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return haven.Errorf(haven.ECONFLICT, "this request was answered meanwhile")
	}
	return nil
}

// ExtendAmendment moves a requested amendment's deadline once: ECONFLICT
// if it was extended or answered already.
func (d *DB) ExtendAmendment(ctx context.Context, a *haven.Amendment) error {
	res, err := d.db.ExecContext(ctx, `UPDATE amendments SET due_us = $1, extension_sealed = $2, changed_us = $3
		WHERE id = $4 AND state = 'requested' AND extension_sealed IS NULL`,
		a.DueUS, []byte(a.Extension), a.ChangedUS, a.ID)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return haven.Errorf(haven.ECONFLICT, "a request's deadline may be extended once, before it is answered")
	}
	return nil
}

// DisagreeAmendment attaches the patient's statement to a denied request,
// once: ECONFLICT otherwise.
func (d *DB) DisagreeAmendment(ctx context.Context, a *haven.Amendment) error {
	res, err := d.db.ExecContext(ctx, `UPDATE amendments SET disagreement_sealed = $1, disagreed_us = $2, changed_us = $2
		WHERE id = $3 AND state = 'denied' AND disagreement_sealed IS NULL`,
		[]byte(a.Disagreement), a.DisagreedUS, a.ID)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return haven.Errorf(haven.ECONFLICT, "a statement of disagreement is attached once, to a denied request")
	}
	return nil
}

// RecordAmendments returns the requests about one part of a record (a
// note's id, or a patient's id for her details), oldest first.
func (d *DB) RecordAmendments(ctx context.Context, recordID string) ([]*haven.Amendment, error) {
	return d.amendments(ctx, `SELECT `+amendmentColumns+` FROM amendments WHERE record_id = $1 ORDER BY created_us, id`, recordID)
}

// PatientAmendments returns a patient's requests, newest first.
func (d *DB) PatientAmendments(ctx context.Context, patientID string) ([]*haven.Amendment, error) {
	return d.amendments(ctx, `SELECT `+amendmentColumns+` FROM amendments WHERE patient_id = $1 ORDER BY created_us DESC, id`, patientID)
}

// PracticeAmendments returns a practice's requests, open ones first by
// deadline, then the answered ones newest first (at most limit).
func (d *DB) PracticeAmendments(ctx context.Context, practiceID string, limit int) ([]*haven.Amendment, error) {
	return d.amendments(ctx, `SELECT `+amendmentColumns+` FROM amendments WHERE practice_id = $1
		ORDER BY CASE WHEN state = 'requested' THEN 0 ELSE 1 END, CASE WHEN state = 'requested' THEN due_us ELSE -changed_us END, id
		LIMIT $2`, practiceID, limit)
}

func (d *DB) amendments(ctx context.Context, q string, args ...any) ([]*haven.Amendment, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Amendment
	for rows.Next() {
		a, err := scanAmendment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"haven"
)

// Lab results in: lab interfaces, the answered-messages inbox, results
// and the unmatched queue. Results and unmatched messages arrive sealed
// and leave sealed.

// SetLabInterface records how a lab is recognised (see
// haven.LabInterface); an empty fingerprint or hash leaves that way unset.
func (d *DB) SetLabInterface(ctx context.Context, li *haven.LabInterface) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO lab_interfaces (lab_id, practice_id, cert_sha256, token_hash, updated_us, cert_subject, cert_expires_us, token_made_us)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (lab_id) DO UPDATE SET cert_sha256 = excluded.cert_sha256, token_hash = excluded.token_hash, updated_us = excluded.updated_us,
			cert_subject = excluded.cert_subject, cert_expires_us = excluded.cert_expires_us, token_made_us = excluded.token_made_us`,
		li.LabID, li.PracticeID, nullString(li.CertSHA256), nullString(li.TokenHash), micros(d.now()),
		nullString(li.CertSubject), nullMicros(li.CertExpires), nullMicros(li.TokenMade))
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "that certificate is another lab's")
	}
	return err
}

// LabInterface returns how the lab of that practice is recognised, or
// ENOTFOUND when nothing was ever registered for it.
func (d *DB) LabInterface(ctx context.Context, practiceID, labID string) (*haven.LabInterface, error) {
	li := &haven.LabInterface{LabID: labID, PracticeID: practiceID}
	var cert, subject, token sql.NullString
	var expires, made sql.NullInt64
	var updated int64
	err := d.db.QueryRowContext(ctx, `SELECT cert_sha256, cert_subject, cert_expires_us, token_hash, token_made_us, updated_us
		FROM lab_interfaces WHERE lab_id = $1 AND practice_id = $2`, labID, practiceID).Scan(&cert, &subject, &expires, &token, &made, &updated)
	if err != nil {
		return nil, notFound(err, "lab interface", labID)
	}
	li.CertSHA256, li.CertSubject, li.TokenHash, li.Updated = cert.String, subject.String, token.String, fromMicros(updated)
	if expires.Valid {
		li.CertExpires = fromMicros(expires.Int64)
	}
	if made.Valid {
		li.TokenMade = fromMicros(made.Int64)
	}
	return li, nil
}

// LabByCertificate returns the lab whose client certificate has that
// SHA-256, or ENOTFOUND.
func (d *DB) LabByCertificate(ctx context.Context, certSHA256 string) (string, error) {
	var id string
	err := d.db.QueryRowContext(ctx, `SELECT lab_id FROM lab_interfaces WHERE cert_sha256 = $1`, certSHA256).Scan(&id)
	return id, notFound(err, "lab interface", "certificate")
}

// LabByToken returns the lab whose integration token has that hash, and
// the fingerprint of the client certificate registered for it ("" when
// none), or ENOTFOUND.
func (d *DB) LabByToken(ctx context.Context, tokenHash string) (string, string, error) {
	var id, cert string
	err := d.db.QueryRowContext(ctx, `SELECT lab_id, cert_sha256 FROM lab_interfaces WHERE token_hash = $1`, tokenHash).Scan(&id, &cert)
	return id, cert, notFound(err, "lab interface", "token")
}

// InboxAck returns the ACK already answered to a lab's message, or
// ENOTFOUND.
func (d *DB) InboxAck(ctx context.Context, labID, controlID string) ([]byte, error) {
	var ack []byte
	err := d.db.QueryRowContext(ctx, `SELECT ack FROM hl7_inbox WHERE lab_id = $1 AND control_id = $2`, labID, controlID).Scan(&ack)
	if err != nil {
		return nil, notFound(err, "message", controlID)
	}
	return ack, nil
}

// ErrAnswered is StoreLabResults' and StoreLabUnmatched's answer when the
// message was stored by another request first: read its ACK with InboxAck.
var ErrAnswered = errors.New("sqlstore: the message was answered already")

func answer(ctx context.Context, tx *sql.Tx, labID, controlID string, ack []byte, at int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO hl7_inbox (lab_id, control_id, ack, received_us) VALUES ($1, $2, $3, $4)`, labID, controlID, ack, at)
	if isUniqueViolation(err) {
		return ErrAnswered
	}
	return err
}

// StoreLabResults stores a message's results, marks their orders
// resulted and keeps the ACK answered, in one transaction: a message is
// stored once whatever the number of times it is sent.
func (d *DB) StoreLabResults(ctx context.Context, labID, controlID string, ack []byte, results []*haven.LabResult) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if len(results) == 0 {
		return haven.Errorf(haven.EINVALID, "no result to store")
	}
	if err := answer(ctx, tx, labID, controlID, ack, micros(results[0].Received)); err != nil {
		return err
	}
	for _, r := range results {
		r.Status = haven.ResultToReview
		if _, err := tx.ExecContext(ctx, `INSERT INTO lab_results (id, practice_id, patient_id, order_id, lab_id, reviewer_id, content_sealed,
			critical, status, received_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			r.ID, r.PracticeID, r.PatientID, r.OrderID, r.LabID, r.ReviewerID, []byte(r.Content), r.Critical, string(r.Status), micros(r.Received)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE lab_orders SET status = 'resulted', updated_us = $1 WHERE id = $2 AND status NOT IN ('cancelling', 'cancelled')`, micros(r.Received), r.OrderID); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// StoreLabUnmatched queues a message no patient and order matched, and
// keeps the ACK answered, in one transaction.
func (d *DB) StoreLabUnmatched(ctx context.Context, controlID string, ack []byte, u *haven.LabUnmatched) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := answer(ctx, tx, u.LabID, controlID, ack, micros(u.Received)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO lab_unmatched (id, practice_id, lab_id, message_sealed, reason, received_us) VALUES ($1, $2, $3, $4, $5, $6)`,
		u.ID, u.PracticeID, u.LabID, []byte(u.Message), u.Reason, micros(u.Received)); err != nil {
		return err
	}
	return tx.Commit()
}

const labResultColumns = `id, practice_id, patient_id, order_id, lab_id, reviewer_id, content_sealed, comment_sealed, critical, status, received_us, reviewed_us, released_us`

func scanLabResult(s scanner) (*haven.LabResult, error) {
	var r haven.LabResult
	var content, comment []byte
	var received int64
	var reviewed, released sql.NullInt64
	if err := s.Scan(&r.ID, &r.PracticeID, &r.PatientID, &r.OrderID, &r.LabID, &r.ReviewerID, &content, &comment, &r.Critical, &r.Status,
		&received, &reviewed, &released); err != nil {
		return nil, err
	}
	r.Content, r.Comment, r.Received = content, comment, fromMicros(received)
	if reviewed.Valid {
		r.Reviewed = fromMicros(reviewed.Int64)
	}
	if released.Valid {
		r.Released = fromMicros(released.Int64)
	}
	return &r, nil
}

func (d *DB) labResults(ctx context.Context, where string, args ...any) ([]*haven.LabResult, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+labResultColumns+` FROM lab_results WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.LabResult
	for rows.Next() {
		r, err := scanLabResult(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FindLabResult returns one result, or ENOTFOUND.
func (d *DB) FindLabResult(ctx context.Context, id string) (*haven.LabResult, error) {
	r, err := scanLabResult(d.db.QueryRowContext(ctx, `SELECT `+labResultColumns+` FROM lab_results WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "lab result", id)
	}
	return r, nil
}

// PatientLabResults returns a patient's results, oldest first.
func (d *DB) PatientLabResults(ctx context.Context, patientID string) ([]*haven.LabResult, error) {
	return d.labResults(ctx, `patient_id = $1 ORDER BY received_us, id LIMIT 2000`, patientID)
}

// ResultsToReview returns the results waiting for a reviewer, critical
// ones first, then oldest first.
func (d *DB) ResultsToReview(ctx context.Context, reviewerID string) ([]*haven.LabResult, error) {
	return d.labResults(ctx, `reviewer_id = $1 AND status = 'review' ORDER BY critical DESC, received_us, id LIMIT 500`, reviewerID)
}

// CriticalToReview returns the id of the oldest critical result waiting
// for the reviewer's first look (not yet reviewed), or "" when none is.
func (d *DB) CriticalToReview(ctx context.Context, reviewerID string) (string, error) {
	var id string
	err := d.db.QueryRowContext(ctx, `SELECT id FROM lab_results WHERE reviewer_id = $1 AND status = 'review' AND critical AND reviewed_us IS NULL
		ORDER BY received_us, id LIMIT 1`, reviewerID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// ReviewLabResult records the reviewer's comment and, with release, the
// release to the patient. A released result stays released.
func (d *DB) ReviewLabResult(ctx context.Context, r *haven.LabResult, release bool) error {
	now := micros(d.now())
	q := `UPDATE lab_results SET comment_sealed = $1, reviewed_us = $2 WHERE id = $3 AND status = 'review'`
	if release {
		q = `UPDATE lab_results SET comment_sealed = $1, reviewed_us = $2, released_us = $2, status = 'released' WHERE id = $3 AND status = 'review'`
	}
	res, err := d.db.ExecContext(ctx, q, nullBytes(r.Comment), now, r.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ECONFLICT, "this result is released already")
	}
	return nil
}

// OpenLabUnmatched returns a practice's messages waiting to be matched,
// oldest first.
func (d *DB) OpenLabUnmatched(ctx context.Context, practiceID string) ([]*haven.LabUnmatched, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, practice_id, lab_id, message_sealed, reason, received_us FROM lab_unmatched
		WHERE practice_id = $1 AND resolved_us IS NULL ORDER BY received_us, id LIMIT 500`, practiceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.LabUnmatched
	for rows.Next() {
		u, err := scanUnmatched(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func scanUnmatched(s scanner) (*haven.LabUnmatched, error) {
	var u haven.LabUnmatched
	var msg []byte
	var received int64
	if err := s.Scan(&u.ID, &u.PracticeID, &u.LabID, &msg, &u.Reason, &received); err != nil {
		return nil, err
	}
	u.Message, u.Received = msg, fromMicros(received)
	return &u, nil
}

// FindLabUnmatched returns one open unmatched message, or ENOTFOUND.
func (d *DB) FindLabUnmatched(ctx context.Context, id string) (*haven.LabUnmatched, error) {
	u, err := scanUnmatched(d.db.QueryRowContext(ctx, `SELECT id, practice_id, lab_id, message_sealed, reason, received_us FROM lab_unmatched
		WHERE id = $1 AND resolved_us IS NULL`, id))
	if err != nil {
		return nil, notFound(err, "unmatched result", id)
	}
	return u, nil
}

// ResolveLabUnmatched stores the results staff matched an unmatched
// message to and closes it, in one transaction; ECONFLICT when someone
// resolved it first.
func (d *DB) ResolveLabUnmatched(ctx context.Context, id, by string, results []*haven.LabResult) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := micros(d.now())
	res, err := tx.ExecContext(ctx, `UPDATE lab_unmatched SET resolved_us = $1, resolved_by = $2 WHERE id = $3 AND resolved_us IS NULL`, now, by, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ECONFLICT, "this result was matched already")
	}
	for _, r := range results {
		r.Status = haven.ResultToReview
		if _, err := tx.ExecContext(ctx, `INSERT INTO lab_results (id, practice_id, patient_id, order_id, lab_id, reviewer_id, content_sealed,
			critical, status, received_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			r.ID, r.PracticeID, r.PatientID, r.OrderID, r.LabID, r.ReviewerID, []byte(r.Content), r.Critical, string(r.Status), micros(r.Received)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE lab_orders SET status = 'resulted', updated_us = $1 WHERE id = $2 AND status NOT IN ('cancelling', 'cancelled')`, now, r.OrderID); err != nil {
			return err
		}
	}
	return tx.Commit()
}

package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"haven"
)

// Formularies, allergy lists, prescriptions and the outbox that carries
// them to pharmacies. Allergies and what a prescription prescribes arrive
// sealed and leave sealed.

// FormularyKey is the form of a drug name the formulary is searched by.
func FormularyKey(name string) string {
	return strings.Join(strings.Fields(strings.ToLower(name)), " ")
}

// ReplaceFormulary replaces a practice's formulary with drugs, in one
// transaction.
func (d *DB) ReplaceFormulary(ctx context.Context, practiceID string, drugs []haven.Drug) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM formulary WHERE practice_id = $1`, practiceID); err != nil {
		return err
	}
	for _, g := range drugs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO formulary (practice_id, rxnorm, name, name_key, schedule) VALUES ($1, $2, $3, $4, $5)`,
			practiceID, g.RxNorm, g.Name, FormularyKey(g.Name), g.Schedule); err != nil {
			if isUniqueViolation(err) {
				return haven.Errorf(haven.EINVALID, "RxNorm code %s is listed twice", g.RxNorm)
			}
			return err
		}
	}
	return tx.Commit()
}

// SearchFormulary returns up to limit drugs of the practice whose name
// contains q (any case), by name.
func (d *DB) SearchFormulary(ctx context.Context, practiceID, q string, limit int) ([]haven.Drug, error) {
	pat := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(FormularyKey(q)) + "%"
	rows, err := d.db.QueryContext(ctx, `SELECT practice_id, rxnorm, name, schedule FROM formulary
		WHERE practice_id = $1 AND name_key LIKE $2 ESCAPE '\' ORDER BY name_key, rxnorm LIMIT $3`, practiceID, pat, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []haven.Drug
	for rows.Next() {
		var g haven.Drug
		if err := rows.Scan(&g.PracticeID, &g.RxNorm, &g.Name, &g.Schedule); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// FindDrug returns one drug of the practice's formulary, or ENOTFOUND.
func (d *DB) FindDrug(ctx context.Context, practiceID, rxnorm string) (*haven.Drug, error) {
	var g haven.Drug
	err := d.db.QueryRowContext(ctx, `SELECT practice_id, rxnorm, name, schedule FROM formulary WHERE practice_id = $1 AND rxnorm = $2`,
		practiceID, rxnorm).Scan(&g.PracticeID, &g.RxNorm, &g.Name, &g.Schedule)
	if err != nil {
		return nil, notFound(err, "drug", rxnorm)
	}
	return &g, nil
}

// AddAllergy stores an allergy.
func (d *DB) AddAllergy(ctx context.Context, a *haven.Allergy) error {
	a.Added = d.now()
	_, err := d.db.ExecContext(ctx, `INSERT INTO allergies (id, practice_id, patient_id, detail_sealed, added_by, added_us) VALUES ($1, $2, $3, $4, $5, $6)`,
		a.ID, a.PracticeID, a.PatientID, []byte(a.Detail), a.AddedBy, micros(a.Added))
	return err
}

// Allergies returns a patient's allergy list, oldest first.
func (d *DB) Allergies(ctx context.Context, patientID string) ([]*haven.Allergy, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, practice_id, patient_id, detail_sealed, added_by, added_us FROM allergies
		WHERE patient_id = $1 ORDER BY added_us, id LIMIT 500`, patientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Allergy
	for rows.Next() {
		var a haven.Allergy
		var detail []byte
		var added int64
		if err := rows.Scan(&a.ID, &a.PracticeID, &a.PatientID, &detail, &a.AddedBy, &added); err != nil {
			return nil, err
		}
		a.Detail, a.Added = detail, fromMicros(added)
		out = append(out, &a)
	}
	return out, rows.Err()
}

// AllergyOwner returns the patient of an allergy, by its id (the FHIR
// API's read of one AllergyIntolerance); ENOTFOUND when none has it.
func (d *DB) AllergyOwner(ctx context.Context, id string) (string, error) {
	var patientID string
	err := d.db.QueryRowContext(ctx, `SELECT patient_id FROM allergies WHERE id = $1`, id).Scan(&patientID)
	if err != nil {
		return "", notFound(err, "allergy", id)
	}
	return patientID, nil
}

// DeleteAllergy removes one allergy of the patient; ENOTFOUND if the
// patient has no allergy of that id.
func (d *DB) DeleteAllergy(ctx context.Context, patientID, id string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM allergies WHERE id = $1 AND patient_id = $2`, id, patientID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ENOTFOUND, "allergy %s not found", id)
	}
	return nil
}

const rxColumns = `id, practice_id, patient_id, prescriber_id, visit_id, pharmacy_id, replaces, content_sealed, status, status_reason,
	signature, signing_key_id, signed_us, signed_auth_us, cancelled_us, renewal_us, created_us, updated_us`

func scanRx(s scanner) (*haven.Prescription, error) {
	var p haven.Prescription
	var visit, replaces sql.NullString
	var content, sig []byte
	var signed, auth, cancelled, renewal sql.NullInt64
	var created, updated int64
	if err := s.Scan(&p.ID, &p.PracticeID, &p.PatientID, &p.PrescriberID, &visit, &p.PharmacyID, &replaces, &content, &p.Status, &p.StatusReason,
		&sig, &p.SigningKeyID, &signed, &auth, &cancelled, &renewal, &created, &updated); err != nil {
		return nil, err
	}
	p.VisitID, p.Replaces, p.Content, p.Signature = visit.String, replaces.String, content, sig
	opt := func(n sql.NullInt64) (t time.Time) {
		if n.Valid {
			t = fromMicros(n.Int64)
		}
		return
	}
	p.Signed, p.SignedAuth, p.Cancelled, p.RenewalAsked = opt(signed), opt(auth), opt(cancelled), opt(renewal)
	p.Created, p.Updated = fromMicros(created), fromMicros(updated)
	return &p, nil
}

// CreatePrescription stores a draft.
func (d *DB) CreatePrescription(ctx context.Context, p *haven.Prescription) error {
	now := d.now()
	p.Created, p.Updated, p.Status = now, now, haven.RxDraft
	_, err := d.db.ExecContext(ctx, `INSERT INTO prescriptions (id, practice_id, patient_id, prescriber_id, visit_id, pharmacy_id, replaces,
		content_sealed, status, created_us, updated_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
		p.ID, p.PracticeID, p.PatientID, p.PrescriberID, nullString(p.VisitID), p.PharmacyID, nullString(p.Replaces),
		[]byte(p.Content), string(p.Status), micros(now))
	return err
}

// FindPrescription returns one prescription, or ENOTFOUND.
func (d *DB) FindPrescription(ctx context.Context, id string) (*haven.Prescription, error) {
	p, err := scanRx(d.db.QueryRowContext(ctx, `SELECT `+rxColumns+` FROM prescriptions WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "prescription", id)
	}
	return p, nil
}

// PatientPrescriptions returns a patient's prescriptions, newest first.
func (d *DB) PatientPrescriptions(ctx context.Context, patientID string) ([]*haven.Prescription, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+rxColumns+` FROM prescriptions WHERE patient_id = $1 ORDER BY created_us DESC, id LIMIT 500`, patientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Prescription
	for rows.Next() {
		p, err := scanRx(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// SignPrescription locks a draft with its signature (made over its
// content and p.Signed) and queues it for its pharmacy, in one
// transaction. It is ESTEPUP when the prescriber
// has already signed with this authentication or a later one (each
// signature needs its own step-up), and ECONFLICT when the prescription
// is no longer a draft.
func (d *DB) SignPrescription(ctx context.Context, p *haven.Prescription) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var used sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(signed_auth_us) FROM prescriptions WHERE prescriber_id = $1`, p.PrescriberID).Scan(&used); err != nil {
		return err
	}
	auth := micros(p.SignedAuth)
	if used.Valid && used.Int64 >= auth {
		return haven.Errorf(haven.ESTEPUP, "each signature needs its own fresh confirmation that it is you")
	}
	res, err := tx.ExecContext(ctx, `UPDATE prescriptions SET status = $1, signature = $2, signing_key_id = $3, signed_us = $4, signed_auth_us = $5,
		content_sealed = $6, updated_us = $4 WHERE id = $7 AND status = 'draft'`,
		string(haven.RxQueued), p.Signature, p.SigningKeyID, micros(p.Signed), auth, []byte(p.Content), p.ID)
	if err != nil {
		if isUniqueViolation(err) {
			return haven.Errorf(haven.ESTEPUP, "each signature needs its own fresh confirmation that it is you")
		}
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ECONFLICT, "this prescription is signed already")
	}
	if err := enqueueRx(ctx, tx, p, "new", micros(p.Signed)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	p.Status = haven.RxQueued
	return nil
}

func enqueueRx(ctx context.Context, tx *sql.Tx, p *haven.Prescription, kind string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO rx_outbox (id, prescription_id, practice_id, kind, next_us, created_us) VALUES ($1, $2, $3, $4, $5, $5)`,
		haven.NewID(), p.ID, p.PracticeID, kind, now)
	return err
}

// CancelPrescription cancels a prescription: a draft is simply cancelled;
// a signed one still waiting in the outbox never leaves; one the pharmacy
// has is followed by a cancellation. ECONFLICT when it is cancelled or
// refused already. at is the service's time of the cancellation (the
// outbox's clock).
func (d *DB) CancelPrescription(ctx context.Context, p *haven.Prescription, at time.Time) error {
	now := micros(at)
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE prescriptions SET status = $1, cancelled_us = $2, updated_us = $2 WHERE id = $3 AND status IN ('draft', 'queued', 'sent', 'accepted')`,
		string(haven.RxCancelled), now, p.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ECONFLICT, "this prescription is not in force")
	}
	if p.Status != haven.RxDraft {
		pending, err := tx.ExecContext(ctx, `UPDATE rx_outbox SET done_us = $1, last_error = 'cancelled' WHERE prescription_id = $2 AND kind = 'new' AND done_us IS NULL`, now, p.ID)
		if err != nil {
			return err
		}
		if n, _ := pending.RowsAffected(); n == 0 {
			if err := enqueueRx(ctx, tx, p, "cancel", now); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// SetPrescriptionStatus records the pharmacy's answer. A cancelled
// prescription stays cancelled.
func (d *DB) SetPrescriptionStatus(ctx context.Context, id string, s haven.PrescriptionStatus, reason string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE prescriptions SET status = $1, status_reason = $2, updated_us = $3 WHERE id = $4 AND status <> 'cancelled'`,
		string(s), reason, micros(d.now()), id)
	return err
}

// SetPrescriptionReason records why a prescription waits (the outbox's
// last refusal or failure), keeping its status.
func (d *DB) SetPrescriptionReason(ctx context.Context, id, reason string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE prescriptions SET status_reason = $1 WHERE id = $2`, reason, id)
	return err
}

// MarkRenewalAsked records that the patient asked for a renewal, once;
// it reports whether this call did.
func (d *DB) MarkRenewalAsked(ctx context.Context, id string) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE prescriptions SET renewal_us = $1 WHERE id = $2 AND renewal_us IS NULL`, micros(d.now()), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RxOutboxItem is one message waiting for a pharmacy.
type RxOutboxItem struct {
	ID, PrescriptionID, PracticeID, Kind string
	Attempts                             int
}

// DueRxOutbox returns up to limit messages due at nowUS and not claimed
// by a sender beyond it, oldest first.
func (d *DB) DueRxOutbox(ctx context.Context, nowUS int64, limit int) ([]RxOutboxItem, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, prescription_id, practice_id, kind, attempts FROM rx_outbox
		WHERE done_us IS NULL AND next_us <= $1 AND (claimed_us IS NULL OR claimed_us < $1) ORDER BY next_us, id LIMIT $2`, nowUS, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RxOutboxItem
	for rows.Next() {
		var it RxOutboxItem
		if err := rows.Scan(&it.ID, &it.PrescriptionID, &it.PracticeID, &it.Kind, &it.Attempts); err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// ClaimRxOutbox claims a due message for this sender until untilUS and
// reports whether the claim is this call's.
func (d *DB) ClaimRxOutbox(ctx context.Context, id string, nowUS, untilUS int64) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE rx_outbox SET claimed_us = $1, attempts = attempts + 1
		WHERE id = $2 AND done_us IS NULL AND (claimed_us IS NULL OR claimed_us < $3)`, untilUS, id, nowUS)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// FinishRxOutbox marks a message delivered (or given up for good, with
// its reason).
func (d *DB) FinishRxOutbox(ctx context.Context, id, reason string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE rx_outbox SET done_us = $1, claimed_us = NULL, last_error = $2 WHERE id = $3`, micros(d.now()), reason, id)
	return err
}

// RetryRxOutbox releases a message to be tried again at nextUS.
func (d *DB) RetryRxOutbox(ctx context.Context, id string, nextUS int64, reason string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE rx_outbox SET next_us = $1, claimed_us = NULL, last_error = $2 WHERE id = $3`, nextUS, reason, id)
	return err
}

// PendingRxOutbox counts messages not yet delivered, for tests and status.
func (d *DB) PendingRxOutbox(ctx context.Context) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM rx_outbox WHERE done_us IS NULL`).Scan(&n)
	return n, err
}

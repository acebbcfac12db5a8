package sqlstore

import (
	"context"
	"strings"
	"time"

	"haven"
)

// Lab catalogues, lab orders and the outbox that carries them to labs.
// What an order asks for arrives sealed and leaves sealed.

// ReplaceLabCatalogue replaces a practice's lab catalogue with tests, in
// one transaction.
func (d *DB) ReplaceLabCatalogue(ctx context.Context, practiceID string, tests []haven.LabTest) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM lab_catalogue WHERE practice_id = $1`, practiceID); err != nil {
		return err
	}
	for _, t := range tests {
		if _, err := tx.ExecContext(ctx, `INSERT INTO lab_catalogue (practice_id, loinc, name, name_key) VALUES ($1, $2, $3, $4)`,
			practiceID, t.LOINC, t.Name, FormularyKey(t.Name)); err != nil {
			if isUniqueViolation(err) {
				return haven.Errorf(haven.EINVALID, "LOINC code %s is listed twice", t.LOINC)
			}
			return err
		}
	}
	return tx.Commit()
}

// SearchLabCatalogue returns up to limit tests of the practice whose name
// contains q (any case), by name.
func (d *DB) SearchLabCatalogue(ctx context.Context, practiceID, q string, limit int) ([]haven.LabTest, error) {
	pat := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(FormularyKey(q)) + "%"
	rows, err := d.db.QueryContext(ctx, `SELECT practice_id, loinc, name FROM lab_catalogue
		WHERE practice_id = $1 AND name_key LIKE $2 ESCAPE '\' ORDER BY name_key, loinc LIMIT $3`, practiceID, pat, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []haven.LabTest
	for rows.Next() {
		var t haven.LabTest
		if err := rows.Scan(&t.PracticeID, &t.LOINC, &t.Name); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// FindLabTest returns one test of the practice's catalogue, or ENOTFOUND.
func (d *DB) FindLabTest(ctx context.Context, practiceID, loinc string) (*haven.LabTest, error) {
	var t haven.LabTest
	err := d.db.QueryRowContext(ctx, `SELECT practice_id, loinc, name FROM lab_catalogue WHERE practice_id = $1 AND loinc = $2`,
		practiceID, loinc).Scan(&t.PracticeID, &t.LOINC, &t.Name)
	if err != nil {
		return nil, notFound(err, "lab test", loinc)
	}
	return &t, nil
}

const labOrderColumns = `id, practice_id, patient_id, orderer_id, lab_id, number, content_sealed, status, status_reason, ack_code, ack_error, created_us, updated_us`

func scanLabOrder(s scanner) (*haven.LabOrder, error) {
	var o haven.LabOrder
	var content []byte
	var created, updated int64
	if err := s.Scan(&o.ID, &o.PracticeID, &o.PatientID, &o.OrdererID, &o.LabID, &o.Number, &content, &o.Status, &o.StatusReason,
		&o.AckCode, &o.AckError, &created, &updated); err != nil {
		return nil, err
	}
	o.Content, o.Created, o.Updated = content, fromMicros(created), fromMicros(updated)
	return &o, nil
}

// CreateLabOrder stores an order and queues its message for the lab, in
// one transaction, so an order is never stored without being sent.
// controlID is the message's MSH-10; at is the service's time of the
// order (the outbox's clock).
func (d *DB) CreateLabOrder(ctx context.Context, o *haven.LabOrder, controlID string, at time.Time) error {
	now := at
	o.Created, o.Updated, o.Status = now, now, haven.LabQueued
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO lab_orders (id, practice_id, patient_id, orderer_id, lab_id, number, content_sealed, status,
		created_us, updated_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
		o.ID, o.PracticeID, o.PatientID, o.OrdererID, o.LabID, o.Number, []byte(o.Content), string(o.Status), micros(now)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO lab_outbox (id, order_id, practice_id, control_id, next_us, created_us) VALUES ($1, $2, $3, $4, $5, $5)`,
		haven.NewID(), o.ID, o.PracticeID, controlID, micros(now)); err != nil {
		return err
	}
	return tx.Commit()
}

// FindLabOrder returns one order, or ENOTFOUND.
func (d *DB) FindLabOrder(ctx context.Context, id string) (*haven.LabOrder, error) {
	o, err := scanLabOrder(d.db.QueryRowContext(ctx, `SELECT `+labOrderColumns+` FROM lab_orders WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "lab order", id)
	}
	return o, nil
}

// FindLabOrderByNumber returns the practice's order of that placer order
// number, or ENOTFOUND.
func (d *DB) FindLabOrderByNumber(ctx context.Context, practiceID, number string) (*haven.LabOrder, error) {
	o, err := scanLabOrder(d.db.QueryRowContext(ctx, `SELECT `+labOrderColumns+` FROM lab_orders WHERE practice_id = $1 AND number = $2`, practiceID, number))
	if err != nil {
		return nil, notFound(err, "lab order", number)
	}
	return o, nil
}

// PatientLabOrders returns a patient's orders, newest first.
func (d *DB) PatientLabOrders(ctx context.Context, patientID string) ([]*haven.LabOrder, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+labOrderColumns+` FROM lab_orders WHERE patient_id = $1 ORDER BY created_us DESC, id LIMIT 500`, patientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.LabOrder
	for rows.Next() {
		o, err := scanLabOrder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// SetLabOrderAck records the lab's acknowledgment of an order and the
// status it sets. An order already resulted stays resulted; one cancelled
// meanwhile is left alone (its cancellation's answer is what counts).
func (d *DB) SetLabOrderAck(ctx context.Context, id string, s haven.LabOrderStatus, ackCode string, ackError int, reason string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE lab_orders SET status = CASE WHEN status = 'resulted' THEN status ELSE $1 END,
		ack_code = $2, ack_error = $3, status_reason = $4, updated_us = $5 WHERE id = $6 AND status NOT IN ('cancelling', 'cancelled')`,
		string(s), ackCode, ackError, reason, micros(d.now()), id)
	return err
}

// CancelControlPrefix begins the control id (MSH-10) of every
// cancellation in the lab outbox, so the sender knows an order's
// cancellation from the order itself; an order's control id is a NewID,
// which never holds a dash.
const CancelControlPrefix = "ca-"

// CancelLabOrder cancels an order still waiting for its result, in one
// transaction. When its message never left (no attempt was made) it is
// withdrawn from the outbox and the order is cancelled at once (sent is
// false). Otherwise the order becomes cancelling, the order's own message
// is withdrawn if it still waits, and a cancellation with controlID
// (CancelControlPrefix and an id) is queued for the lab (sent is true).
// ECONFLICT when a result arrived, the lab refused the order, or it was
// cancelled already.
func (d *DB) CancelLabOrder(ctx context.Context, id, controlID string, at time.Time) (sent bool, err error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	now := micros(at)
	var practiceID string
	if err := tx.QueryRowContext(ctx, `SELECT practice_id FROM lab_orders WHERE id = $1`, id).Scan(&practiceID); err != nil {
		return false, notFound(err, "lab order", id)
	}
	// Never tried: no sender holds it (a claim counts an attempt), and
	// once done no sender will.
	res, err := tx.ExecContext(ctx, `UPDATE lab_outbox SET done_us = $1, last_error = 'cancelled' WHERE order_id = $2 AND done_us IS NULL AND attempts = 0`, now, id)
	if err != nil {
		return false, err
	}
	withdrawn, _ := res.RowsAffected()
	next := haven.LabCancelling
	if withdrawn > 0 {
		next = haven.LabCancelled
	}
	res, err = tx.ExecContext(ctx, `UPDATE lab_orders SET status = $1, status_reason = '', updated_us = $2 WHERE id = $3 AND status IN ('queued', 'sent')`,
		string(next), now, id)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, haven.Errorf(haven.ECONFLICT, "this order can no longer be cancelled: a result arrived, the lab refused it, or it was cancelled already")
	}
	if next == haven.LabCancelled {
		return false, tx.Commit()
	}
	// The order's message may be in a sender's hands: done now, so no
	// sender takes it up again; an answer to it changes nothing.
	if _, err := tx.ExecContext(ctx, `UPDATE lab_outbox SET done_us = $1, last_error = 'cancelled' WHERE order_id = $2 AND done_us IS NULL`, now, id); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO lab_outbox (id, order_id, practice_id, control_id, next_us, created_us) VALUES ($1, $2, $3, $4, $5, $5)`,
		haven.NewID(), id, practiceID, controlID, now); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// SetLabCancelAck records the lab's answer to an order's cancellation:
// accepted, the order is cancelled; refused (refused true), it is back
// at the lab with the reason.
func (d *DB) SetLabCancelAck(ctx context.Context, id, ackCode string, ackError int, refused bool, reason string) error {
	next := haven.LabCancelled
	if refused {
		next = haven.LabSent
	}
	_, err := d.db.ExecContext(ctx, `UPDATE lab_orders SET ack_code = $2, ack_error = $3, status_reason = $4, updated_us = $5,
		status = CASE WHEN $1 = 'sent' AND EXISTS (SELECT 1 FROM lab_results WHERE order_id = $6) THEN 'resulted' ELSE $1 END
		WHERE id = $6 AND status = 'cancelling'`, string(next), ackCode, ackError, reason, micros(d.now()), id)
	return err
}

// SetLabOrderReason records why an order waits, keeping its status.
func (d *DB) SetLabOrderReason(ctx context.Context, id, reason string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE lab_orders SET status_reason = $1 WHERE id = $2`, reason, id)
	return err
}

// LabOutboxItem is one message waiting for a lab.
type LabOutboxItem struct {
	ID, OrderID, PracticeID, ControlID string
	Attempts                           int
}

// DueLabOutbox returns up to limit messages due at nowUS and not claimed
// by a sender beyond it, oldest first.
func (d *DB) DueLabOutbox(ctx context.Context, nowUS int64, limit int) ([]LabOutboxItem, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, order_id, practice_id, control_id, attempts FROM lab_outbox
		WHERE done_us IS NULL AND next_us <= $1 AND (claimed_us IS NULL OR claimed_us < $1) ORDER BY next_us, id LIMIT $2`, nowUS, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LabOutboxItem
	for rows.Next() {
		var it LabOutboxItem
		if err := rows.Scan(&it.ID, &it.OrderID, &it.PracticeID, &it.ControlID, &it.Attempts); err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// ClaimLabOutbox claims a due message for this sender until untilUS and
// reports whether the claim is this call's.
func (d *DB) ClaimLabOutbox(ctx context.Context, id string, nowUS, untilUS int64) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE lab_outbox SET claimed_us = $1, attempts = attempts + 1
		WHERE id = $2 AND done_us IS NULL AND (claimed_us IS NULL OR claimed_us < $3)`, untilUS, id, nowUS)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// FinishLabOutbox marks a message delivered (or given up, with a reason).
func (d *DB) FinishLabOutbox(ctx context.Context, id, reason string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE lab_outbox SET done_us = $1, claimed_us = NULL, last_error = $2 WHERE id = $3`, micros(d.now()), reason, id)
	return err
}

// RetryLabOutbox releases a message to be tried again at nextUS.
func (d *DB) RetryLabOutbox(ctx context.Context, id string, nextUS int64, reason string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE lab_outbox SET next_us = $1, claimed_us = NULL, last_error = $2 WHERE id = $3`, nextUS, reason, id)
	return err
}

// PendingLabOutbox counts messages not yet delivered.
func (d *DB) PendingLabOutbox(ctx context.Context) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM lab_outbox WHERE done_us IS NULL`).Scan(&n)
	return n, err
}

// OpenLabOrders returns a practice's orders still waiting for a result,
// newest first, for staff matching a result by hand.
func (d *DB) OpenLabOrders(ctx context.Context, practiceID string) ([]*haven.LabOrder, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+labOrderColumns+` FROM lab_orders WHERE practice_id = $1 AND status IN ('queued', 'sent')
		ORDER BY created_us DESC, id LIMIT 200`, practiceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.LabOrder
	for rows.Next() {
		o, err := scanLabOrder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"haven"
)

// PutPrice sets what a practice charges for a visit of p.Minutes.
func (d *DB) PutPrice(ctx context.Context, p *haven.Price) error {
	if err := p.Validate(); err != nil {
		return err
	}
	p.UpdatedAt = d.now()
	_, err := d.db.ExecContext(ctx, `INSERT INTO prices (practice_id, minutes, amount, currency, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (practice_id, minutes) DO UPDATE SET amount = excluded.amount, currency = excluded.currency, updated_at = excluded.updated_at`,
		p.PracticeID, p.Minutes, int64(p.Amount), p.Currency.String(), p.UpdatedAt)
	return err
}

// DeletePrice removes a practice's price for visits of minutes.
func (d *DB) DeletePrice(ctx context.Context, practiceID string, minutes int) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM prices WHERE practice_id = $1 AND minutes = $2`, practiceID, minutes)
	return err
}

// Prices returns a practice's prices, shortest visit first.
func (d *DB) Prices(ctx context.Context, practiceID string) ([]*haven.Price, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT practice_id, minutes, amount, currency, updated_at FROM prices WHERE practice_id = $1 ORDER BY minutes`, practiceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Price
	for rows.Next() {
		var p haven.Price
		var amount int64
		var cur string
		if err := rows.Scan(&p.PracticeID, &p.Minutes, &amount, &cur, &p.UpdatedAt); err != nil {
			return nil, err
		}
		p.Amount, p.UpdatedAt = haven.Cents(amount), p.UpdatedAt.UTC()
		if p.Currency, err = haven.ParseCurrency(cur); err != nil {
			return nil, err
		}
		out = append(out, &p)
	}
	return out, rows.Err()
}

// VisitLengths returns the slot lengths, in minutes, the practice's
// clinicians offer: the visit types a price can be set for.
func (d *DB) VisitLengths(ctx context.Context, practiceID string) ([]int, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT DISTINCT slot_minutes FROM availability WHERE practice_id = $1 ORDER BY slot_minutes`, practiceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var m int
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

const paymentColumns = `id, practice_id, patient_id, ref, processor_id, checkout_id, amount, currency, state, link_sealed, created_at, paid_at, refunded_at, refunded_by, refunded, version`

func scanPayment(s scanner) (*haven.Payment, error) {
	var p haven.Payment
	var ref, cur string
	var proc, checkout, by sql.NullString
	var amount, back int64
	var link []byte
	var paid, refunded sql.NullTime
	if err := s.Scan(&p.ID, &p.PracticeID, &p.PatientID, &ref, &proc, &checkout, &amount, &cur, &p.State, &link, &p.CreatedAt, &paid, &refunded, &by, &back, &p.Version); err != nil {
		return nil, err
	}
	var err error
	if p.Ref, err = haven.ParsePaymentRef(ref); err != nil {
		return nil, err
	}
	for _, id := range []struct {
		src sql.NullString
		dst *haven.ProcessorID
	}{{proc, &p.Processor}, {checkout, &p.Checkout}} {
		if id.src.Valid {
			if *id.dst, err = haven.ParseProcessorID(id.src.String); err != nil {
				return nil, err
			}
		}
	}
	if p.Currency, err = haven.ParseCurrency(cur); err != nil {
		return nil, err
	}
	p.Amount, p.Refunded, p.Link, p.RefundedBy, p.CreatedAt = haven.Cents(amount), haven.Cents(back), link, by.String, p.CreatedAt.UTC()
	for _, t := range []struct {
		src sql.NullTime
		dst **time.Time
	}{{paid, &p.PaidAt}, {refunded, &p.RefundedAt}} {
		if t.src.Valid {
			v := t.src.Time.UTC()
			*t.dst = &v
		}
	}
	return &p, nil
}

// CreatePayment stores a new payment. visitIndex is the blind index of
// the visit it pays for: a second pending or paid payment for the same
// visit is ECONFLICT.
func (d *DB) CreatePayment(ctx context.Context, p *haven.Payment, visitIndex []byte) error {
	p.CreatedAt, p.Version = d.now(), 1
	_, err := d.db.ExecContext(ctx, `INSERT INTO payments (id, practice_id, patient_id, ref, amount, currency, state, link_sealed, visit_index, created_at, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		p.ID, p.PracticeID, p.PatientID, p.Ref.String(), int64(p.Amount), p.Currency.String(), p.State, []byte(p.Link), visitIndex, p.CreatedAt, p.Version)
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "this visit is already paid or being paid")
	}
	return err
}

// FindPayment returns one payment, or ENOTFOUND.
func (d *DB) FindPayment(ctx context.Context, id string) (*haven.Payment, error) {
	p, err := scanPayment(d.db.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM payments WHERE id = $1`, id))
	return p, notFound(err, "payment", id)
}

// FindPaymentByRef returns the payment with the reference ref, or
// ENOTFOUND.
func (d *DB) FindPaymentByRef(ctx context.Context, ref haven.PaymentRef) (*haven.Payment, error) {
	p, err := scanPayment(d.db.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM payments WHERE ref = $1`, ref.String()))
	return p, notFound(err, "payment", "by reference")
}

// FindPaymentByProcessor returns the payment the processor knows as id,
// or ENOTFOUND.
func (d *DB) FindPaymentByProcessor(ctx context.Context, id haven.ProcessorID) (*haven.Payment, error) {
	p, err := scanPayment(d.db.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM payments WHERE processor_id = $1`, id.String()))
	return p, notFound(err, "payment", "by processor id")
}

// FindLivePaymentByVisit returns the pending or paid payment of the visit
// whose blind index is visitIndex, or ENOTFOUND.
func (d *DB) FindLivePaymentByVisit(ctx context.Context, visitIndex []byte) (*haven.Payment, error) {
	p, err := scanPayment(d.db.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM payments WHERE visit_index = $1 AND state IN ('pending', 'paid')`, visitIndex))
	return p, notFound(err, "payment", "by visit")
}

// PatientPayments returns a patient's payments, newest first.
func (d *DB) PatientPayments(ctx context.Context, patientID string) ([]*haven.Payment, error) {
	return d.queryPayments(ctx, `SELECT `+paymentColumns+` FROM payments WHERE patient_id = $1 ORDER BY created_at DESC, id`, patientID)
}

// PracticePayments returns a practice's newest payments, at most limit.
func (d *DB) PracticePayments(ctx context.Context, practiceID string, limit int) ([]*haven.Payment, error) {
	return d.queryPayments(ctx, `SELECT `+paymentColumns+` FROM payments WHERE practice_id = $1 ORDER BY created_at DESC, id LIMIT $2`, practiceID, limit)
}

func (d *DB) queryPayments(ctx context.Context, q string, args ...any) ([]*haven.Payment, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Payment
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// UpdatePayment stores p's processor ids, state, times and refunded
// amount if the row is still at p.Version (a compare-and-swap: a notice
// and a refund racing cannot both win), and raises its version.
func (d *DB) UpdatePayment(ctx context.Context, p *haven.Payment) error {
	if err := updatePayment(ctx, d.db, p); err != nil {
		return err
	}
	p.Version++
	return nil
}

func updatePayment(ctx context.Context, db execer, p *haven.Payment) error {
	var proc, checkout, by any
	if !p.Processor.IsZero() {
		proc = p.Processor.String()
	}
	if !p.Checkout.IsZero() {
		checkout = p.Checkout.String()
	}
	if p.RefundedBy != "" {
		by = p.RefundedBy
	}
	res, err := db.ExecContext(ctx, `UPDATE payments SET processor_id = $1, checkout_id = $2, state = $3, paid_at = $4, refunded_at = $5, refunded_by = $6, refunded = $7, version = version + 1
		WHERE id = $8 AND version = $9`, proc, checkout, p.State, nullTime(p.PaidAt), nullTime(p.RefundedAt), by, int64(p.Refunded), p.ID, p.Version)
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "the processor's payment id is another payment's")
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ECONFLICT, "payment %s changed meanwhile; reload and try again", p.ID)
	}
	return nil
}

// AddPaymentRefund records a refund of p and stores p (its refunded
// amount and state already raised by the caller) in one transaction, if
// p is still at p.Version: two refunds racing cannot together give back
// more than was paid.
func (d *DB) AddPaymentRefund(ctx context.Context, p *haven.Payment, r *haven.PaymentRefund) error {
	r.CreatedAt = d.now()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := updatePayment(ctx, tx, p); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO payment_refunds (id, payment_id, practice_id, ref, amount, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		r.ID, r.PaymentID, r.PracticeID, r.Ref.String(), int64(r.Amount), r.CreatedAt, r.CreatedBy); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	p.Version++
	return nil
}

// RemovePaymentRefund forgets a refund the processor refused and stores p
// as it was before it (compare-and-swap on p.Version), in one transaction.
func (d *DB) RemovePaymentRefund(ctx context.Context, p *haven.Payment, refundID string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := updatePayment(ctx, tx, p); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM payment_refunds WHERE id = $1 AND payment_id = $2`, refundID, p.ID); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	p.Version++
	return nil
}

// PaymentRefunds returns a payment's refunds, oldest first.
func (d *DB) PaymentRefunds(ctx context.Context, paymentID string) ([]*haven.PaymentRefund, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, payment_id, practice_id, ref, amount, created_at, created_by FROM payment_refunds WHERE payment_id = $1 ORDER BY created_at, id`, paymentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.PaymentRefund
	for rows.Next() {
		var r haven.PaymentRefund
		var ref string
		var amount int64
		if err := rows.Scan(&r.ID, &r.PaymentID, &r.PracticeID, &ref, &amount, &r.CreatedAt, &r.CreatedBy); err != nil {
			return nil, err
		}
		if r.Ref, err = haven.ParsePaymentRef(ref); err != nil {
			return nil, err
		}
		r.Amount, r.CreatedAt = haven.Cents(amount), r.CreatedAt.UTC()
		out = append(out, &r)
	}
	return out, rows.Err()
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

// ClaimPaymentEvent records a processor notice's id and reports whether
// it is new: a notice seen before is false, and must change nothing.
func (d *DB) ClaimPaymentEvent(ctx context.Context, id string) (bool, error) {
	_, err := d.db.ExecContext(ctx, `INSERT INTO payment_events (id, received_at) VALUES ($1, $2)`, id, d.now())
	if isUniqueViolation(err) {
		return false, nil
	}
	return err == nil, err
}

// ReleasePaymentEvent forgets a claimed notice whose change could not be
// made, so the processor's next delivery of it is applied.
func (d *DB) ReleasePaymentEvent(ctx context.Context, id string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM payment_events WHERE id = $1`, id)
	return err
}

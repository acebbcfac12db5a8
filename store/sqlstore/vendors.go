package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"haven"
)

// The vendor registry (haven.Vendor): outside systems and their business
// associate agreements. Nothing here is sealed; none of it is PHI.

const vendorColumns = `id, practice_id, name, kind, endpoint, phi, baa_signed, baa_expires, baa_document, contact,
	retired_us, reminded_us, created_us, updated_us`

func scanVendor(s scanner) (*haven.Vendor, error) {
	var v haven.Vendor
	var signed, expires string
	var retired, reminded sql.NullInt64
	var created, updated int64
	if err := s.Scan(&v.ID, &v.PracticeID, &v.Name, &v.Kind, &v.Endpoint, &v.PHI, &signed, &expires, &v.BAADocument, &v.Contact,
		&retired, &reminded, &created, &updated); err != nil {
		return nil, err
	}
	v.BAASigned, _ = haven.ParseDate(signed)
	v.BAAExpires, _ = haven.ParseDate(expires)
	if retired.Valid {
		v.Retired = fromMicros(retired.Int64)
	}
	if reminded.Valid {
		v.Reminded = fromMicros(reminded.Int64)
	}
	v.Created, v.Updated = fromMicros(created), fromMicros(updated)
	return &v, nil
}

func dateText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}

// CreateVendor stores a new vendor; a name its practice (or the platform)
// already uses is ECONFLICT.
func (d *DB) CreateVendor(ctx context.Context, v *haven.Vendor) error {
	now := d.now()
	v.Created, v.Updated = now, now
	return d.vendorChange(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO vendors (`+vendorColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $11, $11)`,
			v.ID, v.PracticeID, v.Name, string(v.Kind), v.Endpoint, string(v.PHI), dateText(v.BAASigned), dateText(v.BAAExpires),
			v.BAADocument, v.Contact, micros(now))
		if isUniqueViolation(err) {
			return haven.Errorf(haven.ECONFLICT, "a vendor of that name is registered already")
		}
		return err
	})
}

// vendorChange runs change in a transaction that also raises the
// vendor-registry version (VendorState), so every node's cached egress
// decisions are checked again on their next use.
func (d *DB) vendorChange(ctx context.Context, change func(tx *sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := change(tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE vendor_state SET version = version + 1 WHERE id = 1`); err != nil {
		return err
	}
	return tx.Commit()
}

// VendorState returns the vendor-registry version: one single-row read,
// which every change to vendors raises in its own transaction.
func (d *DB) VendorState(ctx context.Context) (int64, error) {
	var v int64
	err := d.db.QueryRowContext(ctx, `SELECT version FROM vendor_state WHERE id = 1`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, haven.Errorf(haven.EINTERNAL, "the vendor_state row is missing: run haven migrate")
	}
	return v, err
}

// UpdateVendor replaces a vendor's fields (not its practice, kind or
// retirement). A new expiry date clears the reminder, so the next end is
// announced in its turn.
func (d *DB) UpdateVendor(ctx context.Context, v *haven.Vendor) error {
	v.Updated = d.now()
	return d.vendorChange(ctx, func(tx *sql.Tx) error { return updateVendor(ctx, tx, v) })
}

func updateVendor(ctx context.Context, tx *sql.Tx, v *haven.Vendor) error {
	res, err := tx.ExecContext(ctx, `UPDATE vendors SET name = $1, endpoint = $2, phi = $3, baa_signed = $4,
		reminded_us = CASE WHEN baa_expires = $5 THEN reminded_us ELSE NULL END, baa_expires = $5,
		baa_document = $6, contact = $7, updated_us = $8 WHERE id = $9 AND practice_id = $10`,
		v.Name, v.Endpoint, string(v.PHI), dateText(v.BAASigned), dateText(v.BAAExpires), v.BAADocument, v.Contact,
		micros(v.Updated), v.ID, v.PracticeID)
	if isUniqueViolation(err) {
		return haven.Errorf(haven.ECONFLICT, "a vendor of that name is registered already")
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ENOTFOUND, "vendor %s not found", v.ID)
	}
	return nil
}

// RetireVendor marks a vendor retired, once: it receives nothing more.
func (d *DB) RetireVendor(ctx context.Context, practiceID, id string) error {
	now := micros(d.now())
	return d.vendorChange(ctx, func(tx *sql.Tx) error { return retireVendor(ctx, tx, practiceID, id, now) })
}

func retireVendor(ctx context.Context, tx *sql.Tx, practiceID, id string, now int64) error {
	res, err := tx.ExecContext(ctx, `UPDATE vendors SET retired_us = $1, updated_us = $1 WHERE id = $2 AND practice_id = $3 AND retired_us IS NULL`,
		now, id, practiceID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return haven.Errorf(haven.ENOTFOUND, "active vendor %s not found", id)
	}
	return nil
}

// FindVendor returns one vendor by id, or ENOTFOUND.
func (d *DB) FindVendor(ctx context.Context, id string) (*haven.Vendor, error) {
	v, err := scanVendor(d.db.QueryRowContext(ctx, `SELECT `+vendorColumns+` FROM vendors WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "vendor", id)
	}
	return v, nil
}

// Vendors returns a practice's vendors (with platform also the
// platform's), retired ones last, by name.
func (d *DB) Vendors(ctx context.Context, practiceID string, platform bool) ([]*haven.Vendor, error) {
	q := `SELECT ` + vendorColumns + ` FROM vendors WHERE practice_id = $1`
	if platform {
		q += ` OR practice_id = ''`
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY retired_us IS NOT NULL, name, id LIMIT 1000`, practiceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Vendor
	for rows.Next() {
		v, err := scanVendor(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// VendorsDue returns the vendors, not retired and not yet reminded, whose
// agreement ends on or before the day of until.
func (d *DB) VendorsDue(ctx context.Context, until time.Time) ([]*haven.Vendor, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+vendorColumns+` FROM vendors
		WHERE reminded_us IS NULL AND retired_us IS NULL AND baa_expires <> '' AND baa_expires <= $1 ORDER BY baa_expires, id LIMIT 500`,
		dateText(until))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*haven.Vendor
	for rows.Next() {
		v, err := scanVendor(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ClaimVendorReminder marks a vendor's coming end announced and reports
// whether this call did it: of several nodes, one reminds.
func (d *DB) ClaimVendorReminder(ctx context.Context, id string) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE vendors SET reminded_us = $1 WHERE id = $2 AND reminded_us IS NULL`, micros(d.now()), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"haven"
)

const fileColumns = `id, practice_id, patient_id, uploaded_by, name_sealed, content_type, size, blob_key, created_at, details_sealed`

func scanFile(s scanner) (*haven.File, error) {
	var f haven.File
	var name, details []byte
	if err := s.Scan(&f.ID, &f.PracticeID, &f.PatientID, &f.UploadedBy, &name, &f.ContentType, &f.Size, &f.BlobKey, &f.CreatedAt, &details); err != nil {
		return nil, err
	}
	f.Name, f.CreatedAt = name, f.CreatedAt.UTC()
	if len(details) > 0 {
		f.Details = details
	}
	return &f, nil
}

// CreateFile stores a file's row and its renditions' rows, in one
// transaction, once their content is in the blob store.
func (d *DB) CreateFile(ctx context.Context, f *haven.File, rs ...*haven.FileRendition) error {
	f.CreatedAt = d.now()
	var details []byte
	if len(f.Details) > 0 {
		details = f.Details
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO files (`+fileColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		f.ID, f.PracticeID, f.PatientID, f.UploadedBy, []byte(f.Name), f.ContentType, f.Size, f.BlobKey, f.CreatedAt, details); err != nil {
		return err
	}
	for _, r := range rs {
		r.FileID, r.CreatedAt = f.ID, f.CreatedAt
		if _, err := tx.ExecContext(ctx, `INSERT INTO file_renditions (file_id, kind, content_type, size, blob_key, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			r.FileID, r.Kind, r.ContentType, r.Size, r.BlobKey, r.CreatedAt); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// FileRenditions returns the renditions of the given files, by file id,
// each file's in the order of haven.Renditions' kinds as stored.
func (d *DB) FileRenditions(ctx context.Context, fileIDs ...string) (map[string][]*haven.FileRendition, error) {
	out := map[string][]*haven.FileRendition{}
	if len(fileIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(fileIDs))
	marks := make([]string, len(fileIDs))
	for i, id := range fileIDs {
		args[i], marks[i] = id, fmt.Sprintf("$%d", i+1)
	}
	rows, err := d.db.QueryContext(ctx, `SELECT file_id, kind, content_type, size, blob_key, created_at FROM file_renditions WHERE file_id IN (`+strings.Join(marks, ", ")+`) ORDER BY file_id, kind`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r haven.FileRendition
		if err := rows.Scan(&r.FileID, &r.Kind, &r.ContentType, &r.Size, &r.BlobKey, &r.CreatedAt); err != nil {
			return nil, err
		}
		r.CreatedAt = r.CreatedAt.UTC()
		out[r.FileID] = append(out[r.FileID], &r)
	}
	return out, rows.Err()
}

// FindRendition returns one rendition of a file, or ENOTFOUND.
func (d *DB) FindRendition(ctx context.Context, fileID, kind string) (*haven.FileRendition, error) {
	var r haven.FileRendition
	err := d.db.QueryRowContext(ctx, `SELECT file_id, kind, content_type, size, blob_key, created_at FROM file_renditions WHERE file_id = $1 AND kind = $2`, fileID, kind).
		Scan(&r.FileID, &r.Kind, &r.ContentType, &r.Size, &r.BlobKey, &r.CreatedAt)
	if err == sql.ErrNoRows {
		return nil, notFound(err, "rendition", kind)
	}
	if err != nil {
		return nil, err
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return &r, nil
}

// FindFile returns one file's row, or ENOTFOUND.
func (d *DB) FindFile(ctx context.Context, id string) (*haven.File, error) {
	f, err := scanFile(d.db.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM files WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "file", id)
	}
	return f, nil
}

// PatientFiles returns a patient's files, newest first.
func (d *DB) PatientFiles(ctx context.Context, patientID string) ([]*haven.File, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+fileColumns+` FROM files WHERE patient_id = $1 ORDER BY created_at DESC, id`, patientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var fs []*haven.File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, rows.Err()
}

// BlobKeysInUse returns which of keys a file or rendition row names: the blob sweep
// removes an old blob only if none does.
func (d *DB) BlobKeysInUse(ctx context.Context, keys []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(keys) == 0 {
		return out, nil
	}
	args := make([]any, len(keys))
	marks := make([]string, len(keys))
	for i, k := range keys {
		args[i], marks[i] = k, fmt.Sprintf("$%d", i+1)
	}
	in := strings.Join(marks, ", ")
	rows, err := d.db.QueryContext(ctx, `SELECT blob_key FROM files WHERE blob_key IN (`+in+`) UNION SELECT blob_key FROM file_renditions WHERE blob_key IN (`+in+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out[k] = true
	}
	return out, rows.Err()
}

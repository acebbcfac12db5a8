package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"haven"
)

const fileColumns = `id, practice_id, patient_id, uploaded_by, name_sealed, content_type, size, blob_key, created_at`

func scanFile(s scanner) (*haven.File, error) {
	var f haven.File
	var name []byte
	if err := s.Scan(&f.ID, &f.PracticeID, &f.PatientID, &f.UploadedBy, &name, &f.ContentType, &f.Size, &f.BlobKey, &f.CreatedAt); err != nil {
		return nil, err
	}
	f.Name, f.CreatedAt = name, f.CreatedAt.UTC()
	return &f, nil
}

// CreateFile stores a file's row once its content is in the blob store.
func (d *DB) CreateFile(ctx context.Context, f *haven.File) error {
	f.CreatedAt = d.now()
	_, err := d.db.ExecContext(ctx, `INSERT INTO files (`+fileColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		f.ID, f.PracticeID, f.PatientID, f.UploadedBy, []byte(f.Name), f.ContentType, f.Size, f.BlobKey, f.CreatedAt)
	return err
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

// BlobKeysInUse returns which of keys a file row names: the blob sweep
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
	rows, err := d.db.QueryContext(ctx, `SELECT blob_key FROM files WHERE blob_key IN (`+strings.Join(marks, ", ")+`)`, args...)
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

package backup

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"haven"
)

// Erasure is one crypto-shredded patient: ids and a time, never PHI.
type Erasure struct {
	PracticeID string    `json:"practice_id"`
	PatientID  string    `json:"patient_id"`
	At         time.Time `json:"at"`
}

// Ledger is the erasure ledger: an append-only file of every patient whose
// data key was destroyed. A backup taken before an erasure still holds the
// patient's wrapped data key, so restoring it alone would revive her; the
// ledger lives beside the keys, outside every backup, and restore shreds
// every patient it names again before the restored data is used. Losing
// the ledger loses that protection: it belongs with the root key, in the
// place backups never roll back.
type Ledger struct {
	path string
	mu   sync.Mutex
}

// OpenLedger returns the ledger at path; the file is made on first record.
func OpenLedger(path string) *Ledger { return &Ledger{path: path} }

// Path is where the ledger is kept.
func (l *Ledger) Path() string { return l.path }

// RecordErasure appends an erasure and syncs it to disk before returning,
// so an erasure the caller goes on to perform is on record first.
func (l *Ledger) RecordErasure(practiceID, patientID string, at time.Time) error {
	line, err := json.Marshal(Erasure{PracticeID: practiceID, PatientID: patientID, At: at.UTC()})
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot make the erasure ledger's directory")
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot open the erasure ledger")
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot write the erasure ledger")
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot sync the erasure ledger")
	}
	return f.Close()
}

// Erasures returns every recorded erasure, oldest first; none if the
// ledger does not exist yet. A malformed line is an error, never skipped:
// skipping it could revive a patient.
func (l *Ledger) Erasures() ([]Erasure, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Open(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the erasure ledger")
	}
	defer f.Close()
	var out []Erasure
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e Erasure
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.PracticeID == "" || e.PatientID == "" {
			return nil, haven.Errorf(haven.EINTERNAL, "the erasure ledger %s is malformed at line %d", l.path, n)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the erasure ledger")
	}
	return out, nil
}

package service

import (
	"context"
	"io"
	"time"

	"haven"
	"haven/audit"
	"haven/policy"
)

// RecordRestoreDrill stores the evidence of a restore drill and audits it
// in the platform's log: the operator ran it from the command line.
func (s *Service) RecordRestoreDrill(ctx context.Context, d haven.RestoreDrill) error {
	if d.ID == "" {
		d.ID = haven.NewID()
	}
	if _, err := s.record(ctx, OperatorEvent(audit.PlatformLogID, "backup.drill", "restore_drill", d.ID, "")); err != nil {
		return err
	}
	return s.db.RecordRestoreDrill(ctx, d)
}

// DrillStatus is what the compliance officer sees of restore drills: the
// last one, if any, against the practice's recovery target.
type DrillStatus struct {
	Last   *haven.RestoreDrill
	Target time.Duration
}

// Met reports whether the last drill succeeded within the target.
func (d DrillStatus) Met() bool { return d.Last != nil && d.Last.WithinTarget(d.Target) }

// RestoreDrillStatus returns the last restore drill and the practice's
// recovery target, for those who may search the practice's audit log
// (the compliance officer).
func (s *Service) RestoreDrillStatus(ctx context.Context) (DrillStatus, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return DrillStatus{}, err
	}
	if _, _, err := s.authorize(ctx, policy.AuditSearch, policy.Resource{Kind: policy.KindAudit, PracticeID: a.PracticeID}); err != nil {
		return DrillStatus{}, err
	}
	st := DrillStatus{Target: haven.DefaultRecoveryTarget}
	if a.PracticeID != "" {
		ps, err := s.settings(ctx, a.PracticeID)
		if err != nil {
			return DrillStatus{}, err
		}
		if ps.RecoveryTarget > 0 {
			st.Target = time.Duration(ps.RecoveryTarget)
		}
	}
	d, err := s.db.LatestRestoreDrill(ctx)
	switch haven.ErrorCode(err) {
	case "":
		st.Last = &d
	case haven.ENOTFOUND:
	default:
		return DrillStatus{}, err
	}
	return st, nil
}

// OpenDrillSample opens up to perPractice charts of every practice, and
// the newest file of each (read to its end, so every chunk of the restored
// blob is authenticated), as a restore drill's proof that restored records
// can be read: each opening is
// an operator event in the restored data's own audit log, and only the
// count leaves this function. Erased patients are skipped (their charts
// must not open). It fails on the first record that does not open, and
// returns how many opened.
func (s *Service) OpenDrillSample(ctx context.Context, perPractice int) (int, error) {
	practices, err := s.db.ListPractices(ctx)
	if err != nil {
		return 0, err
	}
	opened := 0
	for _, p := range practices {
		rows, err := s.db.ListPatients(ctx, p.ID)
		if err != nil {
			return opened, err
		}
		erased, err := s.db.ErasedPatients(ctx, p.ID)
		if err != nil {
			return opened, err
		}
		n := 0
		for _, row := range rows {
			if n == perPractice {
				break
			}
			if _, gone := erased[row.ID]; gone {
				continue
			}
			if _, err := s.record(ctx, OperatorEvent(p.ID, "backup.drill_open", "patient", row.ID, row.ID)); err != nil {
				return opened, err
			}
			if _, err := s.openChart(ctx, row); err != nil {
				return opened, haven.Wrap(haven.EINTERNAL, err, "a restored chart ("+row.ID+") does not open")
			}
			n++
			opened++
			file, err := s.openDrillFile(ctx, row)
			if err != nil {
				return opened, err
			}
			if file {
				opened++
			}
		}
	}
	return opened, nil
}

// openDrillFile reads the patient's newest file to its end, if she has one
// and files are on; it reports whether it read one.
func (s *Service) openDrillFile(ctx context.Context, row *haven.Patient) (bool, error) {
	if s.blobs == nil {
		return false, nil
	}
	files, err := s.db.PatientFiles(ctx, row.ID)
	if err != nil || len(files) == 0 {
		return false, err
	}
	f := files[0] // newest first
	if _, err := s.record(ctx, OperatorEvent(row.PracticeID, "backup.drill_open", "file", f.ID, row.ID)); err != nil {
		return false, err
	}
	rc, err := s.openSealed(ctx, f.BlobKey, fileAD(f.PracticeID, f.PatientID, f.ID, "content"))
	if err != nil {
		return false, haven.Wrap(haven.EINTERNAL, err, "a restored file ("+f.ID+") does not open")
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return false, haven.Wrap(haven.EINTERNAL, err, "a restored file ("+f.ID+") does not read to its end")
	}
	return true, nil
}

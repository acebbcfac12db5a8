package service

import (
	"context"
	"time"

	"haven"
	"haven/audit"
	"haven/keyring"
)

// OperatorActorID names the platform operator at the server's command
// line in the audit log.
const OperatorActorID = "operator-cli"

// OperatorEvent is the audit event of an operator's command-line action,
// which runs without a session.
func OperatorEvent(logID, action, kind, id, patientID string) audit.Event {
	return audit.Event{LogID: logID, ActorID: OperatorActorID, ActorRole: string(haven.RolePlatformOperator), Action: action,
		ResourceKind: kind, ResourceID: id, PatientID: patientID, Purpose: audit.PurposeOperations, Decision: haven.DecisionAllow}
}

// SetLegalHold places or lifts a legal hold on a patient; while it holds,
// the patient cannot be erased. It is an operator's command, audited.
func (s *Service) SetLegalHold(ctx context.Context, patientID string, hold bool) error {
	row, err := s.db.FindPatient(ctx, patientID)
	if err != nil {
		return err
	}
	action := "legal_hold.place"
	if !hold {
		action = "legal_hold.lift"
	}
	if _, err := s.record(ctx, OperatorEvent(row.PracticeID, action, "patient", row.ID, row.ID)); err != nil {
		return err
	}
	return s.db.SetLegalHold(ctx, row.ID, hold)
}

// ErasePatient crypto-shreds a patient: their data key is destroyed, so
// every sealed field and file of theirs, in the database, the blob store
// and every backup, can never be opened again, while other patients are
// untouched. It is refused while a legal hold applies. The erasure is
// audited first; the audit log keeps only ids. Every node refuses the
// patient's key from its next use on, before this returns (see keyring's
// state.go). The erasure date is recorded afterwards, so practice lists
// can show the patient as erased; run again after a crash in between, it
// records it then.
func (s *Service) ErasePatient(ctx context.Context, patientID string) error {
	row, err := s.db.FindPatient(ctx, patientID)
	if err != nil {
		return err
	}
	hold, err := s.db.LegalHold(ctx, row.ID)
	if err != nil {
		return err
	}
	if hold {
		return haven.Errorf(haven.ECONFLICT, "patient %s is under a legal hold and cannot be erased", row.ID)
	}
	if _, err := s.record(ctx, OperatorEvent(row.PracticeID, "patient.erase", "patient", row.ID, row.ID)); err != nil {
		return err
	}
	// On the ledger before the key goes: an erasure that is not on record
	// outside the backups would come back with the next restore.
	if s.erasures != nil {
		if err := s.erasures.RecordErasure(row.PracticeID, row.ID, s.now()); err != nil {
			return err
		}
	}
	if err := s.keys.ShredPatient(ctx, row.PracticeID, row.ID); err != nil {
		return err
	}
	if err := s.db.MarkPatientErased(ctx, row.ID, s.now()); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "the data key is destroyed, but the erasure date could not be recorded: run the erasure again")
	}
	return nil
}

// ErasureLedger records erasures where backups cannot roll them back (see
// package backup's Ledger).
type ErasureLedger interface {
	RecordErasure(practiceID, patientID string, at time.Time) error
}

// ReapplyErasure shreds again a patient the erasure ledger names, on data
// restored from a backup taken before she was erased. No legal hold check:
// the erasure was decided and done; the restore must not undo it. A
// patient the restored data does not hold (created after the backup)
// or one whose every data key version is destroyed needs nothing; it
// reports whether it shredded anything.
func (s *Service) ReapplyErasure(ctx context.Context, practiceID, patientID string, at time.Time) (bool, error) {
	row, err := s.db.FindPatient(ctx, patientID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if row.PracticeID != practiceID {
		return false, haven.Errorf(haven.EINTERNAL, "the erasure ledger names patient %s in practice %s; the restored data has her in %s", patientID, practiceID, row.PracticeID)
	}
	if shredded, err := s.dataKeyDestroyed(ctx, practiceID, patientID); err != nil || shredded {
		if err == nil {
			err = s.db.MarkPatientErased(ctx, row.ID, at) // a no-op once recorded
		}
		return false, err
	}
	if _, err := s.record(ctx, OperatorEvent(practiceID, "patient.erase_reapplied", "patient", row.ID, row.ID)); err != nil {
		return false, err
	}
	if err := s.keys.ShredPatient(ctx, practiceID, patientID); err != nil {
		return false, err
	}
	return true, s.db.MarkPatientErased(ctx, row.ID, at)
}

// RecordKeyOperation audits an operator's key operation (rotation) in the
// practice's log, or the platform's for an empty practice id.
func (s *Service) RecordKeyOperation(ctx context.Context, practiceID, action string) error {
	logID, id := practiceID, practiceID
	if logID == "" {
		logID, id = audit.PlatformLogID, "root"
	}
	_, err := s.record(ctx, OperatorEvent(logID, action, "key", id, ""))
	return err
}

// dataKeyDestroyed reports whether every version of a patient's data key
// is destroyed (a patient with no key at all is not: nothing stops a key
// being made for her).
func (s *Service) dataKeyDestroyed(ctx context.Context, practiceID, patientID string) (bool, error) {
	latest, err := s.db.GetKey(ctx, practiceID, keyring.KindData, patientID, 0)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for v := latest.Version; v >= 1; v-- {
		wk, err := s.db.GetKey(ctx, practiceID, keyring.KindData, patientID, v)
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			continue
		}
		if err != nil {
			return false, err
		}
		if wk.State != keyring.StateDestroyed {
			return false, nil
		}
	}
	return true, nil
}

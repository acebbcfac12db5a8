package service

import (
	"context"

	"haven"
	"haven/audit"
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
	if err := s.keys.ShredPatient(ctx, row.PracticeID, row.ID); err != nil {
		return err
	}
	if err := s.db.MarkPatientErased(ctx, row.ID, s.now()); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "the data key is destroyed, but the erasure date could not be recorded: run the erasure again")
	}
	return nil
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

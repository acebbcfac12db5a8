package haven

import "time"

// Alert is a detection rule's finding for the compliance officer. It
// carries ids, a rule name and a detail that states the rule's numbers, never PHI.
type Alert struct {
	ID, PracticeID, Rule, ActorID, PatientID, Detail string
	AuditSeq                                         uint64 // the audit event that raised it
	CreatedAt                                        time.Time
	ClosedAt                                         *time.Time // nil while open
	ClosedBy                                         string
}

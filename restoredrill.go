package haven

import "time"

// DefaultRecoveryTarget is how soon a practice expects its records back
// after a disaster until it sets its own: 72 hours, the figure the
// proposed 2025 HIPAA Security Rule asks a contingency plan to meet.
const DefaultRecoveryTarget = 72 * time.Hour

// RestoreDrill is the evidence of one `haven backup drill`: the latest
// backup restored into a scratch place, its audit log verified and a
// sample of records opened, timed end to end. It holds no PHI: counts,
// times and the reason a failed drill failed.
type RestoreDrill struct {
	ID            string
	StartedAt     time.Time
	Duration      time.Duration // the recovery time: from start to records opened
	BackupCreated time.Time     // when the restored backup was made
	BackupBytes   int64         // the backup file's size
	AuditLogs     int           // audit logs verified in the restored data
	RecordsOpened int           // records opened in the sample
	OK            bool
	Failure       string // why a failed drill failed (operator words, no PHI)
}

// WithinTarget reports whether the drill succeeded within target.
func (d RestoreDrill) WithinTarget(target time.Duration) bool {
	return d.OK && d.Duration <= target
}

package haven

import (
	"strings"
	"time"
)

// AuditQuery selects events of one audit log, newest first: the compliance
// officer's search, and the service's own look-ups (a break-glass grant's
// uses). Empty fields match anything.
type AuditQuery struct {
	// LogID is the log searched: a practice's id or the platform's log.
	// The service sets it to the actor's own log, whatever a caller put.
	LogID     string
	PatientID string
	ActorID   string
	Action    string
	Decision  string // DecisionAllow, DecisionDeny or DecisionFail
	Since     time.Time
	Until     time.Time
	BeforeSeq uint64 // page backwards from here; 0 means from the newest
	// Limit is how many events one search returns; the service and
	// storage each bound it (see their SearchAudit).
	Limit int
}

// Validate refuses a search that could match nothing Haven writes: ids
// that are not ids (a NUL or invalid UTF-8 would otherwise reach the
// query, and PostgreSQL refuses those), an action that is not a code, a
// decision other than allow, deny or fail. Empty filters match anything.
// Messages name the filter, never its value.
func (q AuditQuery) Validate() error {
	for _, f := range []struct{ name, v string }{{"patient", q.PatientID}, {"actor", q.ActorID}} {
		if v := strings.TrimSpace(f.v); v != "" && !PlausibleID(v) {
			return Errorf(EINVALID, "the %s filter must be an id (lower-case letters, digits, '-' and '_')", f.name)
		}
	}
	if v := strings.TrimSpace(q.Action); v != "" && !actionCode(v) {
		return Errorf(EINVALID, "the action filter must be an action code such as chart.read")
	}
	switch q.Decision {
	case "", DecisionAllow, DecisionDeny, DecisionFail:
	default:
		return Errorf(EINVALID, "the decision filter must be %s, %s or %s", DecisionAllow, DecisionDeny, DecisionFail)
	}
	return nil
}

// actionCode reports whether s could be an audited action: 1 to 64 of
// lower-case letters, digits, '.', '_' and '-'.
func actionCode(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

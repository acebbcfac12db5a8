package web

import (
	"time"

	"haven"
	"haven/service"
)

// The audit search and the alert list answer with these shapes rather than
// the service values themselves. audit.Event deliberately has no JSON tags:
// its canonical encoding is what checkpoint hashes cover, and the API's
// naming must be free to follow the rest of /api/v1 (snake case) without
// touching that. Keeping the mapping here also means a field added to the
// log or the store does not reach clients until someone decides it should.

// auditEventJSON is one audit search result: identifiers and codes, never
// PHI, and the actor's display name.
type auditEventJSON struct {
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"` // UTC, RFC 3339 with the log's microseconds
	LogID        string    `json:"log_id"`
	ActorID      string    `json:"actor_id"`
	ActorRole    string    `json:"actor_role"`
	ActorName    string    `json:"actor_name"`
	SessionID    string    `json:"session_id"`
	Action       string    `json:"action"`
	ResourceKind string    `json:"resource_kind"`
	ResourceID   string    `json:"resource_id"`
	PatientID    string    `json:"patient_id"`
	Purpose      string    `json:"purpose"`
	Decision     string    `json:"decision"`
	Reason       string    `json:"reason"`
	ClientAddr   string    `json:"client_addr"`
	RequestID    string    `json:"request_id"`
}

// auditEventsJSON maps search results; none is an empty list, not null.
func auditEventsJSON(rows []service.AuditRow) []auditEventJSON {
	out := make([]auditEventJSON, 0, len(rows))
	for _, r := range rows {
		out = append(out, auditEventJSON{Seq: r.Seq, Time: r.Time.UTC(), LogID: r.LogID, ActorID: r.ActorID, ActorRole: r.ActorRole,
			ActorName: r.ActorName, SessionID: r.SessionID, Action: r.Action, ResourceKind: r.ResourceKind, ResourceID: r.ResourceID,
			PatientID: r.PatientID, Purpose: r.Purpose, Decision: r.Decision, Reason: r.Reason, ClientAddr: r.ClientAddr, RequestID: r.RequestID})
	}
	return out
}

// alertJSON is a detection finding. closed_at and closed_by are present
// only once the alert is closed, as reviewed_at is on a break-glass grant.
type alertJSON struct {
	ID         string     `json:"id"`
	PracticeID string     `json:"practice_id"`
	Rule       string     `json:"rule"`
	ActorID    string     `json:"actor_id"`
	PatientID  string     `json:"patient_id"`
	Detail     string     `json:"detail"`
	AuditSeq   uint64     `json:"audit_seq"`
	CreatedAt  time.Time  `json:"created_at"`
	ClosedAt   *time.Time `json:"closed_at,omitempty"`
	ClosedBy   string     `json:"closed_by,omitempty"`
}

// alertsJSON maps alerts; none is an empty list, not null.
func alertsJSON(as []*haven.Alert) []alertJSON {
	out := make([]alertJSON, 0, len(as))
	for _, a := range as {
		j := alertJSON{ID: a.ID, PracticeID: a.PracticeID, Rule: a.Rule, ActorID: a.ActorID, PatientID: a.PatientID,
			Detail: a.Detail, AuditSeq: a.AuditSeq, CreatedAt: a.CreatedAt.UTC(), ClosedBy: a.ClosedBy}
		if a.ClosedAt != nil {
			t := a.ClosedAt.UTC()
			j.ClosedAt = &t
		}
		out = append(out, j)
	}
	return out
}

// listJSON returns s, or an empty list when s is nil, so that a list in
// an answer encodes as [] and a client need not tell null from none.
func listJSON[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

package service

import (
	"context"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/policy"
)

// AccessEvent is one line of a patient's "who accessed my record": who,
// when, what and why, with the proof that it is in the practice's log.
type AccessEvent struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	ActorName string    `json:"actor_name"`
	ActorRole string    `json:"actor_role"`
	Action    string    `json:"action"`
	Purpose   string    `json:"purpose"`
	Decision  string    `json:"decision"`
	Reason    string    `json:"reason"`
	// Self is set for the patient's own actions; Subject is the name of
	// the person an action was about, where it names one (a guest
	// invited to her video call).
	Self    bool   `json:"self,omitempty"`
	Subject string `json:"subject,omitempty"`
	// Canonical is the event's canonical encoding; its RFC 6962 leaf hash
	// and Proof lead to the checkpoint's root, which a browser can check.
	Canonical []byte   `json:"canonical"`
	Proof     [][]byte `json:"proof"`
}

// AccessHistory is a patient's access history with the signed checkpoint
// every proof is relative to.
type AccessHistory struct {
	PatientID  string        `json:"patient_id"`
	Events     []AccessEvent `json:"events"`
	TreeSize   uint64        `json:"tree_size"`
	Checkpoint string        `json:"checkpoint"` // signed note
}

// AccessHistory returns the audit events that concern a patient, newest
// first, each with an inclusion proof against a freshly signed checkpoint:
// HIPAA's accounting of disclosures, checkable by the patient's browser.
func (s *Service) AccessHistory(ctx context.Context, patientID string) (*AccessHistory, error) {
	row, _, _, _, err := s.gatePatient(ctx, policy.AuditReadOwn, policy.KindAudit, patientID)
	if err != nil {
		return nil, err
	}
	cp, err := s.audit.Checkpoint(ctx, row.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot sign a checkpoint")
	}
	entries, err := s.db.SearchAudit(ctx, haven.AuditQuery{LogID: row.PracticeID, PatientID: row.ID, BeforeSeq: cp.Size, Limit: 500})
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the audit log")
	}
	h := &AccessHistory{PatientID: row.ID, TreeSize: cp.Size, Checkpoint: string(cp.Note), Events: []AccessEvent{}}
	names := s.nameCache(row.PracticeID)
	for _, e := range entries {
		proof, err := s.audit.InclusionProof(ctx, row.PracticeID, e.Seq, cp.Size)
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot prove an audit event")
		}
		ae := AccessEvent{Seq: e.Seq, Time: e.Time, ActorRole: e.ActorRole, Action: e.Action, Purpose: e.Purpose,
			Decision: e.Decision, Reason: e.Reason, Canonical: e.Event.Canonical(), Proof: proof}
		switch {
		case e.ActorID == row.ID:
			ae.ActorName, ae.Self = "You", true
		default:
			ae.ActorName = names(ctx, e.ActorID)
		}
		if guest, ok := strings.CutPrefix(e.Reason, "guest:"); ok && haven.PlausibleID(guest) {
			ae.Subject = names(ctx, guest)
		}
		h.Events = append(h.Events, ae)
	}
	return h, nil
}

// nameCache returns a lookup of workforce display names by user id for
// one request about practiceID's log. Names of other patients are never
// shown: they would be another patient's PHI. Nor are names of another
// practice's people (whose probes that practice's log records, see
// reportProbe): nothing of one practice is opened for another.
func (s *Service) nameCache(practiceID string) func(context.Context, string) string {
	seen := map[string]string{}
	return func(ctx context.Context, id string) string {
		if n, ok := seen[id]; ok {
			return n
		}
		n := "Unknown user"
		if id == ReminderActor {
			n = ReminderActorName // no person: the reminder sender (visits_remind.go)
		} else if id == NoticeActor {
			n = NoticeActorName // no person: the message notice sender (message_notices.go)
		} else if id == RxActor {
			n = RxActorName // no person: the prescription sender (rx_outbox.go)
		} else if id == LabActor {
			n = LabActorName // no person: the lab order sender (lab_outbox.go)
		} else if id == LabInboundActor {
			n = LabInboundActorName // no person: the lab results receiver (lab_results.go)
		} else if u, err := s.db.FindUserByID(ctx, id); err == nil {
			if u.PracticeID != practiceID {
				n = "A user of another practice"
			} else if u.Role == haven.RolePatient {
				n = "Another patient"
			} else if p, err := s.openUser(ctx, u); err == nil {
				n = p.Name
			}
		} else if c, err := s.db.FindSMARTClient(ctx, id); err == nil && c.PracticeID == practiceID {
			// No person: a backend system of the practice reading through
			// the FHIR API (the integration role), by the name its admin
			// registered it under.
			n = c.Name
		}
		seen[id] = n
		return n
	}
}

// MaxAuditPage is the most events one audit search returns.
const MaxAuditPage = 200

// AuditRow is one search result: identifiers, codes and the actor's name.
type AuditRow struct {
	audit.Event
	ActorName string `json:"actor_name"`
}

// SearchAudit searches the actor's practice log (compliance officer). The
// search itself is audited. q.Limit is 1 to MaxAuditPage, MaxAuditPage when
// 0; q.LogID is ignored.
func (s *Service) SearchAudit(ctx context.Context, q haven.AuditQuery) ([]AuditRow, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.AuditSearch, policy.Resource{Kind: policy.KindAudit, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	// The actor's own log, whatever the caller asked for.
	q.LogID = a.PracticeID
	if q.LogID == "" {
		q.LogID = audit.PlatformLogID
	}
	if q.Limit <= 0 || q.Limit > MaxAuditPage {
		q.Limit = MaxAuditPage
	}
	q.PatientID, q.ActorID, q.Action = strings.TrimSpace(q.PatientID), strings.TrimSpace(q.ActorID), strings.TrimSpace(q.Action)
	entries, err := s.db.SearchAudit(ctx, q)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot search the audit log")
	}
	names := s.nameCache(a.PracticeID)
	out := make([]AuditRow, 0, len(entries))
	for _, e := range entries {
		name := ""
		if e.ActorID != "" {
			name = names(ctx, e.ActorID)
		}
		out = append(out, AuditRow{Event: e.Event, ActorName: name})
	}
	return out, nil
}

// Alerts returns the practice's open alerts (all with all set).
func (s *Service) Alerts(ctx context.Context, all bool) ([]*haven.Alert, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.AlertReview, policy.Resource{Kind: policy.KindAlert, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	return s.db.Alerts(ctx, a.PracticeID, all)
}

// CloseAlert marks an alert handled. The alert is looked up first so the
// decision, and its audit event, concern the alert's own practice: another
// practice's alert id is a denial on record, not a silent miss.
func (s *Service) CloseAlert(ctx context.Context, id string) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	if !haven.PlausibleID(id) {
		return s.refuseUnknown(ctx, a, policy.AlertReview, policy.KindAlert, id)
	}
	al, err := s.db.FindAlert(ctx, id)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return s.refuseUnknown(ctx, a, policy.AlertReview, policy.KindAlert, id)
	}
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the alert")
	}
	if _, _, err := s.authorizeRecord(ctx, policy.AlertReview, policy.Resource{Kind: policy.KindAlert, ID: al.ID, PracticeID: al.PracticeID}, id); err != nil {
		return err
	}
	return s.db.CloseAlert(ctx, al.PracticeID, al.ID, a.UserID)
}

// Proofs is what an auditor needs to check the practice's log from outside:
// the latest signed checkpoint, and on request an inclusion proof for one
// entry and a consistency proof between two sizes.
type Proofs struct {
	Checkpoint  string   `json:"checkpoint"`
	TreeSize    uint64   `json:"tree_size"`
	Inclusion   [][]byte `json:"inclusion,omitempty"`
	LeafHash    []byte   `json:"leaf_hash,omitempty"`
	Consistency [][]byte `json:"consistency,omitempty"`
}

// AuditProofs signs a fresh checkpoint of the actor's practice log and
// returns it with an inclusion proof of entry seq (if seq >= 0) and a
// consistency proof from size from (if from > 0) to the checkpoint's size
// (compliance officer, audit.verify).
func (s *Service) AuditProofs(ctx context.Context, seq int64, from uint64) (*Proofs, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.AuditVerify, policy.Resource{Kind: policy.KindAudit, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	logID := a.PracticeID
	if logID == "" {
		logID = audit.PlatformLogID
	}
	cp, err := s.audit.Checkpoint(ctx, logID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot sign a checkpoint")
	}
	p := &Proofs{Checkpoint: string(cp.Note), TreeSize: cp.Size}
	if seq >= 0 {
		if uint64(seq) >= cp.Size {
			return nil, haven.Errorf(haven.EINVALID, "entry %d is beyond the log's size %d", seq, cp.Size)
		}
		if p.Inclusion, err = s.audit.InclusionProof(ctx, logID, uint64(seq), cp.Size); err != nil {
			return nil, err
		}
		es, err := s.db.Entries(ctx, logID, uint64(seq), uint64(seq)+1)
		if err != nil || len(es) != 1 {
			return nil, haven.Errorf(haven.EUNAVAILABLE, "cannot read entry %d", seq)
		}
		p.LeafHash = es[0].LeafHash
	}
	if from > 0 {
		if from > cp.Size {
			return nil, haven.Errorf(haven.EINVALID, "size %d is beyond the log's size %d", from, cp.Size)
		}
		if p.Consistency, err = s.audit.ConsistencyProof(ctx, logID, from, cp.Size); err != nil {
			return nil, err
		}
	}
	return p, nil
}

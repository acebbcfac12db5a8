package service

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/outbox"
	"haven/policy"
)

// The vendor registry: every outside system Haven sends anything to, and
// the business associate agreement that lets it receive PHI. A practice's
// admin keeps the practice's own (pharmacies, labs, payment processors)
// on the vendors page, after a step-up; the operator keeps the platform's
// (the mail relay, the object store, the KMS the server is configured
// with) with `haven vendors`. Every change is audited. Every adapter that
// sends outside calls CheckEgress first.

// Audit actions of the registry's changes and of refused egress.
const (
	ActVendorAdd    = "vendor.add"
	ActVendorUpdate = "vendor.update"
	ActVendorRetire = "vendor.retire"
	ActVendorEgress = "vendor.egress"
	ActVendorRemind = "vendor.baa_reminder"
)

// EgressActor is the audit log's actor for what the adapters send (no
// person and no session does): the refusals CheckEgress records.
const EgressActor = "system:egress"

// Alert rules of the registry, for the practice's (or the platform's)
// alert list.
const (
	RuleEgressRefused = "vendor_egress_refused"
	RuleBAAExpiring   = "vendor_baa_expiring"
)

// egressAlertEvery is how often one vendor's refusals raise an alert: a
// spool retrying every few seconds must not bury the list.
const egressAlertEvery = time.Hour

// Vendors returns the practice's vendors and the platform's, for its
// admin and compliance officer.
func (s *Service) Vendors(ctx context.Context) ([]*haven.Vendor, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.VendorRead, policy.Resource{Kind: policy.KindVendor, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	return s.db.Vendors(ctx, a.PracticeID, true)
}

// Pharmacies returns the practice's pharmacies that may receive a
// prescription today, for the prescriber to choose from by name. It
// decides nothing itself: the prescription it serves is decided.
func (s *Service) pharmacies(ctx context.Context, practiceID string) ([]*haven.Vendor, error) {
	all, err := s.db.Vendors(ctx, practiceID, false)
	if err != nil {
		return nil, err
	}
	var out []*haven.Vendor
	for _, v := range all {
		if v.Kind == haven.VendorPharmacy && v.EgressRefusal(haven.PHIMinimum, s.now()) == "" {
			out = append(out, v)
		}
	}
	return out, nil
}

// Vendor returns one of the practice's vendors (or a platform one).
func (s *Service) Vendor(ctx context.Context, id string) (*haven.Vendor, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.findVendor(ctx, a, policy.VendorRead, id)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.VendorRead, vendorResource(v, a), id); err != nil {
		return nil, err
	}
	return v, nil
}

// findVendor loads a vendor the actor named, refusing (audited) an id
// that is not one, or is another practice's, as unknown.
func (s *Service) findVendor(ctx context.Context, a haven.Actor, act policy.Action, id string) (*haven.Vendor, error) {
	if !haven.PlausibleID(id) {
		return nil, s.refuseUnknown(ctx, a, act, policy.KindVendor, id)
	}
	v, err := s.db.FindVendor(ctx, id)
	if haven.ErrorCode(err) == haven.ENOTFOUND || (err == nil && v.PracticeID != "" && v.PracticeID != a.PracticeID) {
		if err == nil {
			// Another practice's vendor: decided (and reported) as such.
			_, _, err := s.authorizeRecord(ctx, act, vendorResource(v, a), id)
			if err == nil {
				err = errNotFound
			}
			return nil, err
		}
		return nil, s.refuseUnknown(ctx, a, act, policy.KindVendor, id)
	}
	return v, err
}

// vendorResource is v as policy sees it: a platform vendor is read within
// the reader's practice (it carries that practice's traffic too).
func vendorResource(v *haven.Vendor, a haven.Actor) policy.Resource {
	p := v.PracticeID
	if p == "" {
		p = a.PracticeID
	}
	return policy.Resource{Kind: policy.KindVendor, ID: v.ID, PracticeID: p}
}

// AddVendor registers a vendor of the actor's practice. It needs a fresh
// authentication; the decision and the change are both audited.
func (s *Service) AddVendor(ctx context.Context, v *haven.Vendor) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	v.ID, v.PracticeID = haven.NewID(), a.PracticeID
	if _, _, err := s.authorize(ctx, policy.VendorManage, policy.Resource{Kind: policy.KindVendor, ID: v.ID, PracticeID: a.PracticeID}); err != nil {
		return err
	}
	if err := v.Check(); err != nil {
		return err
	}
	if err := s.db.CreateVendor(ctx, v); err != nil {
		return err
	}
	return s.recordVendorChange(ctx, a, ActVendorAdd, v)
}

// UpdateVendor changes one of the practice's vendors: everything but its
// kind (a pharmacy does not become a lab; register the lab). A platform
// vendor is the operator's to change.
func (s *Service) UpdateVendor(ctx context.Context, v *haven.Vendor) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	old, err := s.findVendor(ctx, a, policy.VendorManage, v.ID)
	if err != nil {
		return err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.VendorManage, vendorResource(old, a), v.ID); err != nil {
		return err
	}
	if old.PracticeID == "" {
		return haven.Errorf(haven.EFORBIDDEN, "this is one of the server's own systems: its operator changes it")
	}
	if !old.Retired.IsZero() {
		return haven.Errorf(haven.ECONFLICT, "this vendor is retired; register it again to use it")
	}
	v.PracticeID, v.Kind = old.PracticeID, old.Kind
	if err := v.Check(); err != nil {
		return err
	}
	if err := s.db.UpdateVendor(ctx, v); err != nil {
		return err
	}
	return s.recordVendorChange(ctx, a, ActVendorUpdate, v)
}

// RetireVendor retires one of the practice's vendors: from now on it
// receives nothing (what waits to be sent to it stays waiting, refused).
func (s *Service) RetireVendor(ctx context.Context, id string) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	old, err := s.findVendor(ctx, a, policy.VendorManage, id)
	if err != nil {
		return err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.VendorManage, vendorResource(old, a), id); err != nil {
		return err
	}
	if old.PracticeID == "" {
		return haven.Errorf(haven.EFORBIDDEN, "this is one of the server's own systems: its operator retires it")
	}
	if err := s.db.RetireVendor(ctx, old.PracticeID, old.ID); err != nil {
		return err
	}
	return s.recordVendorChange(ctx, a, ActVendorRetire, old)
}

// recordVendorChange appends what was changed (the decision that allowed
// it is already on record): the action says which change, the vendor's
// id which vendor; the registry row holds the rest, none of it PHI.
func (s *Service) recordVendorChange(ctx context.Context, a haven.Actor, action string, v *haven.Vendor) error {
	ev := audit.ForActor(a, action)
	ev.ResourceKind, ev.ResourceID, ev.Purpose, ev.Decision = string(policy.KindVendor), v.ID, audit.PurposeOperations, haven.DecisionAllow
	_, err := s.record(ctx, ev)
	return err
}

// The operator's registry, for `haven vendors`: platform vendors, or a
// practice's when practiceID names one. Each change is audited as the
// operator's, in the log of the practice it concerns (the platform's for
// the platform's own).

// OperatorVendors lists the platform's vendors, or a practice's.
func (s *Service) OperatorVendors(ctx context.Context, practiceID string) ([]*haven.Vendor, error) {
	return s.db.Vendors(ctx, practiceID, false)
}

// OperatorAddVendor registers a vendor as the operator.
func (s *Service) OperatorAddVendor(ctx context.Context, v *haven.Vendor) error {
	if v.PracticeID != "" {
		if _, err := s.db.FindPracticeByID(ctx, v.PracticeID); err != nil {
			return err
		}
	}
	v.ID = haven.NewID()
	if err := v.Check(); err != nil {
		return err
	}
	if _, err := s.record(ctx, OperatorEvent(vendorLog(v), ActVendorAdd, string(policy.KindVendor), v.ID, "")); err != nil {
		return err
	}
	return s.db.CreateVendor(ctx, v)
}

// OperatorUpdateVendor changes a vendor as the operator; change names
// the fields to change on the stored vendor.
func (s *Service) OperatorUpdateVendor(ctx context.Context, id string, change func(*haven.Vendor)) (*haven.Vendor, error) {
	v, err := s.db.FindVendor(ctx, id)
	if err != nil {
		return nil, err
	}
	if !v.Retired.IsZero() {
		return nil, haven.Errorf(haven.ECONFLICT, "vendor %s is retired", id)
	}
	kind, practice := v.Kind, v.PracticeID
	change(v)
	v.Kind, v.PracticeID = kind, practice
	if err := v.Check(); err != nil {
		return nil, err
	}
	if _, err := s.record(ctx, OperatorEvent(vendorLog(v), ActVendorUpdate, string(policy.KindVendor), v.ID, "")); err != nil {
		return nil, err
	}
	return v, s.db.UpdateVendor(ctx, v)
}

// OperatorRetireVendor retires a vendor as the operator.
func (s *Service) OperatorRetireVendor(ctx context.Context, id string) error {
	v, err := s.db.FindVendor(ctx, id)
	if err != nil {
		return err
	}
	if _, err := s.record(ctx, OperatorEvent(vendorLog(v), ActVendorRetire, string(policy.KindVendor), v.ID, "")); err != nil {
		return err
	}
	return s.db.RetireVendor(ctx, v.PracticeID, v.ID)
}

func vendorLog(v *haven.Vendor) string {
	if v.PracticeID == "" {
		return audit.PlatformLogID
	}
	return v.PracticeID
}

// ConfiguredVendor is one outside system the server is configured with.
type ConfiguredVendor struct {
	Kind     haven.VendorKind
	Endpoint string
	PHI      haven.PHILevel // what it receives by design
}

// RecognizeVendors finds each configured system in the platform's
// registry by kind and endpoint, registering one that is missing (named
// after its endpoint, with no agreement on file, audited as the
// operator's). It returns the vendors, in the order given, so the server
// can say which lack a current agreement and hand each adapter its id.
func (s *Service) RecognizeVendors(ctx context.Context, cfg []ConfiguredVendor) ([]*haven.Vendor, error) {
	have, err := s.db.Vendors(ctx, "", false)
	if err != nil {
		return nil, err
	}
	out := make([]*haven.Vendor, 0, len(cfg))
next:
	for _, c := range cfg {
		for _, v := range have {
			if v.Kind == c.Kind && v.Endpoint == c.Endpoint && v.Retired.IsZero() {
				out = append(out, v)
				continue next
			}
		}
		for _, v := range have { // retired: recognized, and still refused
			if v.Kind == c.Kind && v.Endpoint == c.Endpoint {
				out = append(out, v)
				continue next
			}
		}
		v := &haven.Vendor{Name: c.Kind.Label() + " " + c.Endpoint, Kind: c.Kind, Endpoint: c.Endpoint, PHI: c.PHI}
		if len(v.Name) > haven.MaxVendorName {
			v.Name = v.Name[:haven.MaxVendorName]
		}
		if err := s.OperatorAddVendor(ctx, v); err != nil {
			return nil, fmt.Errorf("registering the configured %s: %w", c.Kind.Label(), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// CheckEgress is what every adapter that sends outside calls first, with
// the practice whose work it sends ("" for the platform's), the vendor it
// sends to, and the most PHI what it sends may carry. It returns the
// vendor when it may receive that; otherwise the refusal is audited (in
// the practice's log, or the platform's), an alert raised for its
// reviewers (at most one an hour per vendor), and an error returned: the
// adapter sends nothing. An unregistered vendor, one of another practice,
// a retired one, one without a current agreement (unless it receives no
// PHI) or one whose agreement does not cover phi is refused.
func (s *Service) CheckEgress(ctx context.Context, practiceID, vendorID string, phi haven.PHILevel) (*haven.Vendor, error) {
	var v *haven.Vendor
	if haven.PlausibleID(vendorID) {
		found, err := s.db.FindVendor(ctx, vendorID)
		switch {
		case err == nil && (found.PracticeID == "" || found.PracticeID == practiceID):
			v = found
		case err != nil && haven.ErrorCode(err) != haven.ENOTFOUND:
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the vendor registry")
		}
	}
	reason := v.EgressRefusal(phi, s.now())
	if reason == "" {
		return v, nil
	}
	logID := practiceID
	if logID == "" {
		logID = audit.PlatformLogID
	}
	ev := audit.Event{LogID: logID, ActorID: EgressActor, Action: ActVendorEgress, ResourceKind: string(policy.KindVendor),
		Purpose: audit.PurposeOperations, Decision: haven.DecisionDeny, Reason: reason}
	if haven.PlausibleID(vendorID) {
		ev.ResourceID = vendorID
	}
	seq, err := s.record(ctx, ev)
	if err != nil {
		return nil, err
	}
	ev.Seq = seq
	d := s.detectorState()
	d.mu.Lock()
	fire := d.once(RuleEgressRefused+"|"+logID+"|"+vendorID, s.now(), egressAlertEvery)
	d.mu.Unlock()
	if fire {
		name := "an unregistered vendor"
		if v != nil {
			name = "vendor " + v.ID
		}
		alertPractice := practiceID
		if err := s.db.CreateAlert(ctx, &haven.Alert{ID: haven.NewID(), PracticeID: alertPractice, Rule: RuleEgressRefused, ActorID: EgressActor,
			Detail: fmt.Sprintf("sending to %s was refused (%s); nothing was sent", name, reason), AuditSeq: seq}); err != nil {
			slog.Error("vendor registry: cannot raise alert", "practice", practiceID, "vendor", vendorID, "err", err)
		}
	}
	return nil, haven.Errorf(haven.EFORBIDDEN, "the vendor may not receive this (%s); nothing was sent", strings.ReplaceAll(reason, "_", " "))
}

// BAAReminders tells each practice's admins (by alert and by email) that
// a vendor's agreement ends within haven.BAAReminderLead, once per
// agreement (a new expiry date is announced in its turn). The platform's
// vendors raise a platform alert. It returns how many it announced.
func (s *Service) BAAReminders(ctx context.Context, mail outbox.Outbox, baseURL string) (int, error) {
	now := s.now()
	due, err := s.db.VendorsDue(ctx, now.Add(haven.BAAReminderLead))
	if err != nil {
		return 0, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the vendor registry")
	}
	n := 0
	for _, v := range due {
		mine, err := s.db.ClaimVendorReminder(ctx, v.ID)
		if err != nil {
			return n, haven.Wrap(haven.EUNAVAILABLE, err, "cannot claim a reminder")
		}
		if !mine {
			continue
		}
		ev := audit.Event{LogID: vendorLog(v), ActorID: EgressActor, Action: ActVendorRemind, ResourceKind: string(policy.KindVendor),
			ResourceID: v.ID, Purpose: audit.PurposeOperations, Decision: haven.DecisionAllow}
		seq, err := s.record(ctx, ev)
		if err != nil {
			return n, err
		}
		end := v.BAAExpires.Format(time.DateOnly)
		if err := s.db.CreateAlert(ctx, &haven.Alert{ID: haven.NewID(), PracticeID: v.PracticeID, Rule: RuleBAAExpiring, ActorID: EgressActor,
			Detail: fmt.Sprintf("the business associate agreement of vendor %s ends %s; renew it or nothing more is sent to it", v.ID, end), AuditSeq: seq}); err != nil {
			return n, haven.Wrap(haven.EUNAVAILABLE, err, "cannot raise an alert")
		}
		n++
		if mail == nil || v.PracticeID == "" {
			continue
		}
		if err := s.mailAdmins(ctx, mail, v, end, baseURL); err != nil {
			slog.Error("vendor registry: cannot email the admins", "practice", v.PracticeID, "vendor", v.ID, "err", err)
		}
	}
	return n, nil
}

// mailAdmins emails the practice's active admins that v's agreement ends.
// A vendor's name is business information, not PHI, so it is in the text.
func (s *Service) mailAdmins(ctx context.Context, mail outbox.Outbox, v *haven.Vendor, end, baseURL string) error {
	users, err := s.db.ListUsers(ctx, v.PracticeID)
	if err != nil {
		return err
	}
	link := strings.TrimRight(baseURL, "/") + "/app/admin/vendors"
	for _, u := range users {
		if u.Role != haven.RolePracticeAdmin || u.Disabled {
			continue
		}
		prof, err := s.openUser(ctx, u)
		if err != nil {
			return err
		}
		msg, err := s.composeEmail(ctx, v.PracticeID, EmailVendorNotice, prof.Email, "A vendor agreement ends soon",
			"The business associate agreement with "+v.Name+" ends "+end+".\n\n"+
				"Renew it and record the new date, or Haven sends nothing more to this vendor after that day:\n\n"+link+"\n")
		if err != nil {
			return err
		}
		if err := mail.Send(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

package service

import (
	"context"
	"math/rand/v2"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/outbox"
	"haven/policy"
)

// Visit reminders: an email to the patient ahead of a booked visit that
// says only that there is one. An inbox is not private (shared family
// accounts, a phone's lock-screen preview, the mail provider), and the
// email leaves Haven's protection when it is sent, so it carries no PHI at
// all: no name of the patient, the clinician or the clinic (which clinic a
// patient uses can itself be health information), no reason, no date or
// time (an appointment's date is PHI), no id. It points to the sign-in
// page, where the patient sees the rest behind their own sign-in.
//
// Each reminder is claimed in the database (visits.reminded_us, a
// compare-and-set) before it is sent, so however many nodes run the sender,
// and across restarts, a visit's reminder goes out at most once per booked
// time; a reschedule clears the mark so the new time gets its own.

// Bounds of a practice's reminder lead (PracticeSettings.VisitReminderLead).
const (
	DefaultReminderLead = 24 * time.Hour
	MinReminderLead     = time.Hour
	MaxReminderLead     = 7 * 24 * time.Hour
)

// ActVisitRemind is the audit action of a reminder sent (or failed).
const ActVisitRemind = "visit.remind"

// ReminderActor is the audit log's actor id for reminders: no person and
// no session sends them. It cannot be a user's id (those are 26 characters
// of base32).
const ReminderActor = "system:visit-reminders"

// ReminderActorName is how the reminder sender appears in a patient's
// access history and the compliance officer's search.
const ReminderActorName = "Haven (visit reminder)"

// reminderPage is where the email sends the patient: their visits, behind
// sign-in. The same address for everyone, so it says nothing.
const reminderPage = "/app/visits"

// ReminderSubject and the text below are the whole email, fixed: nothing
// in them depends on the visit or the patient but the address it goes to.
const ReminderSubject = "A reminder from Haven"

func reminderText(link string) string {
	return "You have an upcoming video visit with your care provider.\n\n" +
		"Sign in to Haven to see its time and to check in:\n\n" + link + "\n\n" +
		"This email leaves out every detail on purpose. Haven never asks for your password " +
		"or a sign-in code by email, and its links only ever lead to the address above.\n"
}

// ReminderConfig is what NewReminders needs beyond the Service.
type ReminderConfig struct {
	// Outbox sends the emails: the same one identity's emails go through.
	Outbox outbox.Outbox
	// BaseURL is the public https:// origin the link points to.
	BaseURL string
	// Lead is how long before a visit its reminder goes out for a practice
	// that has not set its own; default DefaultReminderLead.
	Lead time.Duration
	// Batch is how many visits one database page holds; default 200.
	Batch int
}

// Reminders sends visit reminders. Like Identity it holds what the rest of
// Service does not need (the outbox and the public address); build it
// with NewReminders over the Service it belongs to.
type Reminders struct {
	svc *Service
	cfg ReminderConfig
}

// NewReminders returns the reminder sender over svc.
func NewReminders(svc *Service, cfg ReminderConfig) *Reminders {
	if cfg.Lead <= 0 {
		cfg.Lead = DefaultReminderLead
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	return &Reminders{svc: svc, cfg: cfg}
}

// SendDueReminders emails the patient of every booked visit that starts
// after now and within its practice's lead and has had no reminder, and
// returns how many it sent. It is safe to run on every node at once: each
// visit is claimed before its email is sent, and only the claimant sends.
// An email that cannot be handed to the outbox releases its claim, so the
// next run tries again; the first such error is returned after the rest
// are done.
func (r *Reminders) SendDueReminders(ctx context.Context, now time.Time) (int, error) {
	if r.cfg.Outbox == nil {
		return 0, haven.Errorf(haven.EUNAVAILABLE, "email is not configured on this server")
	}
	now = now.UTC()
	leads := map[string]time.Duration{}
	sent := 0
	var firstErr error
	keep := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	var after time.Time
	afterID := ""
	for {
		page, err := r.svc.db.UnremindedVisits(ctx, now, now.Add(MaxReminderLead), after, afterID, r.cfg.Batch)
		if err != nil {
			return sent, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load visits to remind")
		}
		for _, v := range page {
			lead, ok := leads[v.PracticeID]
			if !ok {
				if lead, err = r.lead(ctx, v.PracticeID); err != nil {
					keep(err)
					continue
				}
				leads[v.PracticeID] = lead
			}
			if v.Start.After(now.Add(lead)) {
				continue
			}
			ok, err := r.remind(ctx, v, now)
			if err != nil {
				keep(err)
			}
			if ok {
				sent++
			}
		}
		if len(page) < r.cfg.Batch || ctx.Err() != nil {
			return sent, firstErr
		}
		last := page[len(page)-1]
		after, afterID = last.Start, last.ID
	}
}

// lead is the practice's reminder lead, or the configured default.
func (r *Reminders) lead(ctx context.Context, practiceID string) (time.Duration, error) {
	ps, err := r.svc.settings(ctx, practiceID)
	if err != nil {
		return 0, err
	}
	if ps.VisitReminderLead > 0 {
		return time.Duration(ps.VisitReminderLead), nil
	}
	return r.cfg.Lead, nil
}

// remind claims v's reminder and, if the claim is this node's, sends it.
// The order is the spine's: the audit event is durable before the patient's
// address is opened, and the address leaves only after both. It reports
// whether an email went out.
func (r *Reminders) remind(ctx context.Context, v *haven.Visit, now time.Time) (bool, error) {
	mine, err := r.svc.db.ClaimReminder(ctx, v.ID, v.Version, v.Start, now)
	if err != nil {
		return false, haven.Wrap(haven.EUNAVAILABLE, err, "cannot claim a visit reminder")
	}
	if !mine {
		return false, nil // another node has it, or the visit moved since it was read
	}
	release := func(err error) (bool, error) {
		if rerr := r.svc.db.ReleaseReminder(context.WithoutCancel(ctx), v.ID, now); rerr != nil {
			return false, haven.Wrap(haven.EUNAVAILABLE, rerr, "cannot release a visit reminder")
		}
		return false, err
	}
	u, err := r.svc.db.FindUserByID(ctx, v.PatientID)
	if err != nil && haven.ErrorCode(err) != haven.ENOTFOUND {
		return release(haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the patient's account"))
	}
	if err != nil || u.Role != haven.RolePatient || u.PracticeID != v.PracticeID || u.Disabled {
		// Nobody to write to; the claim stays, so this is not retried
		// every minute. The refusal is on record.
		return false, r.record(ctx, v, haven.DecisionDeny, "no_active_account")
	}
	if err := r.record(ctx, v, haven.DecisionAllow, "reminder"); err != nil {
		return release(err)
	}
	prof, err := r.svc.openUser(ctx, u)
	if err != nil {
		r.record(ctx, v, haven.DecisionFail, "unopenable")
		return release(err)
	}
	link := strings.TrimRight(r.cfg.BaseURL, "/") + reminderPage
	msg, err := r.svc.composeEmail(ctx, u.PracticeID, EmailVisitReminder, prof.Email, ReminderSubject, reminderText(link))
	if err != nil {
		return release(err)
	}
	if err := r.cfg.Outbox.Send(ctx, msg); err != nil {
		if haven.ErrorCode(err) == haven.EINVALID {
			// An address the outbox refuses will not improve by retrying.
			return false, r.record(ctx, v, haven.DecisionFail, "bad_address")
		}
		r.record(ctx, v, haven.DecisionFail, "outbox_unavailable")
		return release(err)
	}
	return true, nil
}

// record appends a reminder event to the visit's practice log: the
// system actor, the visit and the patient by id, and codes. Nothing of the
// email (address, text) is in it.
func (r *Reminders) record(ctx context.Context, v *haven.Visit, decision, reason string) error {
	ev := audit.Event{LogID: v.PracticeID, ActorID: ReminderActor, Action: ActVisitRemind,
		ResourceKind: string(policy.KindVisit), ResourceID: v.ID, PatientID: v.PatientID,
		Purpose: audit.PurposeTreatment, Decision: decision, Reason: reason}
	_, err := r.svc.record(ctx, ev)
	return err
}

// Run sends due reminders about every interval until ctx ends. Each wait
// is varied by up to a fifth either way, so nodes started together do not
// query in step. Runs that sent something or failed are passed to report
// (a failed run is retried on the next tick).
func (r *Reminders) Run(ctx context.Context, every time.Duration, report func(sent int, err error)) {
	for {
		t := time.NewTimer(every - every/5 + rand.N(2*every/5+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		n, err := r.SendDueReminders(ctx, r.svc.now())
		if report != nil && (n > 0 || err != nil) && ctx.Err() == nil {
			report(n, err)
		}
	}
}

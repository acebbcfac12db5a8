package service

import (
	"context"
	"math/rand/v2"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/outbox"
	"haven/store/sqlstore"
)

// Message notices: an email telling someone they have a new secure
// message, and nothing else. An inbox is not private (a shared family
// account, a phone's lock screen, the mail provider) and an email leaves
// Haven's protection when it is sent, so it says only "You have a new
// secure message from <practice>" and links to sign in: not who wrote,
// not about what, not the patient's name, not a thread's id (the link is
// the same for every patient, and for every member of the workforce).
//
// A message marks each person to tell as pending (message_notices, in the
// transaction that stores the message); the sender mails each pending
// person at most once per NoticeQuiet, however many messages arrive, and
// claims each notice in the database first (a compare-and-set), so any
// number of nodes can run it and still send one email. A notice that
// cannot be handed to the outbox is released and tried again.

// NoticeQuiet is the least time between two notices to one person.
const NoticeQuiet = 15 * time.Minute

// ActMessageNotify is the audit action of a notice sent (or failed).
const ActMessageNotify = "message.notify"

// NoticeActor is the audit log's actor id for message notices: no person
// and no session sends them (it cannot be a user's id, which is 26
// characters of base32).
const NoticeActor = "system:message-notices"

// NoticeActorName is how the notice sender appears in a patient's access
// history.
const NoticeActorName = "Haven (new message notice)"

// Where a notice sends its reader: their messages, behind sign-in. The
// same address for every patient, and for every member of the workforce.
const (
	patientMessagesPage   = "/app/messages"
	workforceMessagesPage = "/app/inbox"
)

// NoticeSubject is a notice's subject for a practice: its public name and
// nothing else.
func NoticeSubject(practiceName string) string {
	return "You have a new secure message from " + practiceName
}

// UpdateSubject is the subject of a notice that a patient's record has an
// update (an answer to her amendment request): the practice's name only.
func UpdateSubject(practiceName string) string {
	return "You have an update from " + practiceName
}

func updateText(practiceName, link string) string {
	return "You have an update from " + practiceName + ".\n\n" +
		"Sign in to Haven to see it:\n\n" + link + "\n\n" +
		"This email leaves out what the update is, on purpose. Haven never asks for your " +
		"password or a sign-in code by email, and its links only ever lead to the address above.\n"
}

// ActUpdateNotify is the audit action of an update notice sent (or failed).
const ActUpdateNotify = "record.notify"

// patientRecordPage is where an update notice sends its reader.
const patientRecordPage = "/app/record"

// notifyUpdate marks the patient to be told that her record has an update.
// A failure is not the request's: the answer is stored, and the notice is
// a courtesy that the page shows anyway.
func (s *Service) notifyUpdate(ctx context.Context, practiceID, patientID string) {
	if err := s.db.MarkUpdate(ctx, patientID, practiceID, s.now().UnixMicro()); err == nil {
		s.wakeNotices()
	}
}

func noticeText(practiceName, link string) string {
	return "You have a new secure message from " + practiceName + ".\n\n" +
		"Sign in to Haven to read it:\n\n" + link + "\n\n" +
		"This email leaves out who wrote and what about, on purpose. Haven never asks for your " +
		"password or a sign-in code by email, and its links only ever lead to the address above.\n"
}

// NoticeConfig is what NewNotices needs beyond the Service.
type NoticeConfig struct {
	// Outbox sends the emails: the one identity's emails go through.
	Outbox outbox.Outbox
	// BaseURL is the public https:// origin the link points to.
	BaseURL string
	// Batch is how many notices one database page holds; default 200.
	Batch int
}

// Notices sends message notices. Build it with NewNotices over the
// Service whose messages it announces.
type Notices struct {
	svc *Service
	cfg NoticeConfig
}

// NewNotices returns the notice sender over svc.
func NewNotices(svc *Service, cfg NoticeConfig) *Notices {
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	return &Notices{svc: svc, cfg: cfg}
}

// wakeNotices tells a running sender that a message asked for a notice,
// so it goes out within moments rather than at the next tick. It never
// blocks: one wake-up pending is enough.
func (s *Service) wakeNotices() {
	select {
	case s.notices <- struct{}{}:
	default:
	}
}

// SendDue emails everyone with a message not yet announced whose last
// notice is NoticeQuiet old (or who never had one), and returns how many
// it sent. The first error is returned after the rest are tried.
func (n *Notices) SendDue(ctx context.Context, now time.Time) (int, error) {
	if n.cfg.Outbox == nil {
		return 0, haven.Errorf(haven.EUNAVAILABLE, "email is not configured on this server")
	}
	cutoff := now.Add(-NoticeQuiet).UnixMicro()
	sent := 0
	var firstErr error
	names := map[string]string{}
	for _, due := range []func(context.Context, int64, int) ([]sqlstore.MessageNotice, error){n.svc.db.DueNotices, n.svc.db.DueUpdates} {
		k, err := n.sendDue(ctx, due, cutoff, now, names)
		sent += k
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return sent, firstErr
}

// sendDue sends the notices one loader finds due.
func (n *Notices) sendDue(ctx context.Context, load func(context.Context, int64, int) ([]sqlstore.MessageNotice, error), cutoff int64, now time.Time, names map[string]string) (int, error) {
	sent := 0
	var firstErr error
	for {
		due, err := load(ctx, cutoff, n.cfg.Batch)
		if err != nil {
			return sent, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load message notices")
		}
		claimed := 0
		for _, nt := range due {
			ok, mine, err := n.send(ctx, nt, now, names)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if mine {
				claimed++
			}
			if ok {
				sent++
			}
		}
		// A page of which nothing was claimed here (other nodes took it,
		// or every send failed and was released) would come back the same.
		if len(due) < n.cfg.Batch || claimed == 0 || ctx.Err() != nil {
			return sent, firstErr
		}
	}
}

// send claims one notice and, if the claim is this node's, mails it. The
// order is the spine's: the audit event is durable before the address is
// opened. It reports whether an email went out and whether the claim was
// this node's (and stays claimed).
func (n *Notices) send(ctx context.Context, nt sqlstore.MessageNotice, now time.Time, names map[string]string) (sent, claimed bool, err error) {
	mine, err := n.svc.db.ClaimNotice(ctx, nt, now.UnixMicro())
	if err != nil {
		return false, false, haven.Wrap(haven.EUNAVAILABLE, err, "cannot claim a message notice")
	}
	if !mine {
		return false, false, nil
	}
	release := func(err error) (bool, bool, error) {
		if rerr := n.svc.db.ReleaseNotice(context.WithoutCancel(ctx), nt); rerr != nil {
			return false, false, haven.Wrap(haven.EUNAVAILABLE, rerr, "cannot release a message notice")
		}
		return false, false, err
	}
	u, err := n.svc.db.FindUserByID(ctx, nt.UserID)
	if err != nil && haven.ErrorCode(err) != haven.ENOTFOUND {
		return release(haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the account"))
	}
	if err != nil || u.PracticeID != nt.PracticeID || u.Disabled {
		// Nobody to write to; the claim stays. The refusal is on record.
		return false, true, n.record(ctx, nt, u, haven.DecisionDeny, "no_active_account")
	}
	name, ok := names[u.PracticeID]
	if !ok {
		p, err := n.svc.db.FindPracticeByID(ctx, u.PracticeID)
		if err != nil {
			return release(haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the practice"))
		}
		name, names[u.PracticeID] = p.Name, p.Name
	}
	reason := "new_message"
	if nt.Update {
		reason = "record_update"
	}
	if err := n.record(ctx, nt, u, haven.DecisionAllow, reason); err != nil {
		return release(err)
	}
	prof, err := n.svc.openUser(ctx, u)
	if err != nil {
		n.record(ctx, nt, u, haven.DecisionFail, "unopenable")
		if errKeyDestroyed(err) {
			return false, true, nil // an erased patient: nobody to write to, ever
		}
		return release(err)
	}
	page := workforceMessagesPage
	if u.Role == haven.RolePatient {
		page = patientMessagesPage
	}
	kind, subject, text := EmailMessageNotice, NoticeSubject(name), noticeText(name, strings.TrimRight(n.cfg.BaseURL, "/")+page)
	if nt.Update {
		kind, subject, text = EmailRecordNotice, UpdateSubject(name), updateText(name, strings.TrimRight(n.cfg.BaseURL, "/")+patientRecordPage)
	}
	msg, err := n.svc.composeEmail(ctx, u.PracticeID, kind, prof.Email, subject, text)
	if err != nil {
		return release(err)
	}
	if err := n.cfg.Outbox.Send(ctx, msg); err != nil {
		if haven.ErrorCode(err) == haven.EINVALID {
			// An address the outbox refuses will not improve by retrying.
			return false, true, n.record(ctx, nt, u, haven.DecisionFail, "bad_address")
		}
		n.record(ctx, nt, u, haven.DecisionFail, "outbox_unavailable")
		return release(err)
	}
	return true, true, nil
}

// record appends a notice event to the recipient's practice log: the
// system actor, the recipient by id (as the patient, for a patient, so it
// is in her access history), and codes. Nothing of the email is in it.
func (n *Notices) record(ctx context.Context, nt sqlstore.MessageNotice, u *haven.User, decision, reason string) error {
	act := ActMessageNotify
	if nt.Update {
		act = ActUpdateNotify
	}
	ev := audit.Event{LogID: nt.PracticeID, ActorID: NoticeActor, Action: act,
		ResourceKind: "user", ResourceID: nt.UserID, Purpose: audit.PurposeTreatment, Decision: decision, Reason: reason}
	if u != nil && u.Role == haven.RolePatient {
		ev.PatientID = u.ID
	}
	_, err := n.svc.record(ctx, ev)
	return err
}

// Run sends due notices about every interval, and within moments of a
// message on this node that asked for one, until ctx ends. Each wait is
// varied by up to a fifth either way, so nodes started together do not
// query in step. Runs that sent something or failed are passed to report.
func (n *Notices) Run(ctx context.Context, every time.Duration, report func(sent int, err error)) {
	for {
		t := time.NewTimer(every - every/5 + rand.N(2*every/5+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-n.svc.notices:
			t.Stop()
		}
		sent, err := n.SendDue(ctx, n.svc.now())
		if report != nil && (sent > 0 || err != nil) && ctx.Err() == nil {
			report(sent, err)
		}
	}
}

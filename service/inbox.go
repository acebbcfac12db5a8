package service

import (
	"context"
	"strconv"
	"strings"

	"haven"
	"haven/audit"
	"haven/policy"
	"haven/store/sqlstore"
)

// The practice's inbox: its patients' threads as the workforce works
// them, open or done, all of them or the reader's own.
//
// How it is audited, and why so. Opening the inbox is one decision
// (message.inbox) and one event. Each thread then shown is a line of PHI
// (a patient's name, a subject), decided for its patient (message.triage:
// the front desk, unless the patient keeps it out; a clinician, for a
// patient they are related to) and recorded with that patient's id, so
// it is in her access history: "Jamie Front-Desk saw or sorted your
// messages in the practice's inbox". The lines' events are appended as
// one batch. A thread policy keeps from the reader is left out of the
// list without an event: it was never asked for, and a denial per hidden
// line on every view would raise the repeated-denial alert for a front
// desk doing its job.
//
// The bulk-access rule counts distinct patients a person touches; an
// inbox of twenty patients' threads would raise it on every view. The
// inbox's lines are not touches of the reader's choosing (the practice's
// work puts them there, newest first) and show no more than a name and a
// subject, so the rule does not count message.triage events
// (detect.go). Everything opened from the inbox counts as usual: a
// thread read (message.read) is a touch, and one person reading twenty
// patients' threads quickly raises the alert.

// Inbox views.
const (
	InboxOpen = "open" // threads not marked done
	InboxMine = "mine" // open threads given to the reader
	InboxDone = "done" // threads marked done
)

// InboxPage is how many threads one inbox page shows.
const InboxPage = 50

// inboxScan bounds how many of the practice's threads one page reads past
// (threads the reader may not see are skipped) before it stops and offers
// the rest as a next page.
const inboxScan = 500

// Inbox is one page of the practice's inbox for its reader.
type Inbox struct {
	View    string             `json:"view"`
	Threads []haven.ThreadView `json:"threads"`
	// Next continues the list after this page ("" at its end).
	Next string `json:"next,omitempty"`
	// Changed is the practice's change stamp as the page was read: a
	// watch from it (WatchThreads) wakes at the next change.
	Changed int64 `json:"changed"`
}

// Inbox returns a page of the practice's inbox: view is open (the
// default), mine or done; after is a page's Next, or "" for the first.
func (s *Service) Inbox(ctx context.Context, view, after string) (*Inbox, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	f := sqlstore.ThreadFilter{}
	switch view {
	case "", InboxOpen:
		view = InboxOpen
	case InboxMine:
		f.Assignee = a.UserID
	case InboxDone:
		f.Done = true
	default:
		return nil, haven.Errorf(haven.EINVALID, "the inbox view is %s, %s or %s", InboxOpen, InboxMine, InboxDone)
	}
	if after != "" {
		us, id, ok := strings.Cut(after, ".")
		n, err := strconv.ParseInt(us, 10, 64)
		if !ok || err != nil || n <= 0 || !haven.PlausibleID(id) {
			return nil, haven.Errorf(haven.EINVALID, "the inbox page to continue after is not one the inbox gave")
		}
		f.BeforeUS, f.BeforeID = n, id
	}
	if _, _, err := s.authorize(ctx, policy.MessageInbox, policy.Resource{Kind: policy.KindMessage, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	// Read the stamp before the list: a change while the list is read
	// then wakes the page's watch at once.
	out := &Inbox{View: view, Threads: []haven.ThreadView{}}
	if out.Changed, err = s.db.ThreadsChanged(ctx, a.PracticeID, ""); err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the inbox")
	}
	lines, next, err := s.inboxLines(ctx, a, f, InboxPage)
	if err != nil {
		return nil, err
	}
	out.Next = next
	if len(lines) == 0 {
		return out, nil
	}
	evs := make([]audit.Event, len(lines))
	for i, l := range lines {
		ev := audit.ForActor(a, string(policy.MessageTriage))
		ev.ResourceKind, ev.ResourceID, ev.PatientID = string(policy.KindMessage), l.t.ID, l.t.PatientID
		ev.Purpose, ev.Reason, ev.Decision = string(l.d.Purpose), string(l.d.Reason), haven.DecisionAllow
		evs[i] = ev
	}
	seqs, err := s.audit.Append(ctx, evs...)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "the audit log is unavailable; the request was not carried out")
	}
	for i := range evs {
		evs[i].Seq = seqs[i]
	}
	s.detect(ctx, evs...)
	ts := make([]*haven.Thread, len(lines))
	for i, l := range lines {
		ts[i] = l.t
	}
	reads, err := s.db.ThreadReads(ctx, a.UserID, threadIDs(ts))
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load what was read")
	}
	if ctx, err = s.keys.Checked(ctx); err != nil {
		return nil, err
	}
	names := s.senderNames(a.PracticeID)
	for _, t := range ts {
		tv, err := s.threadView(ctx, a, t, nil, reads[t.ID], names)
		if errKeyDestroyed(err) {
			continue // an erased patient's thread: nothing left to show
		}
		if err != nil {
			return nil, err
		}
		out.Threads = append(out.Threads, *tv)
	}
	return out, nil
}

// inboxLine is a thread the reader may see in the inbox, with policy's
// decision.
type inboxLine struct {
	t *haven.Thread
	d policy.Decision
}

// inboxLines reads the practice's threads as f selects, newest first, and
// keeps up to limit that policy lets a triage (message.triage, decided on
// facts loaded once per patient; nothing is recorded here: Inbox records
// the lines it shows). It stops after inboxScan threads; next is where a
// further page would continue, "" when there is nothing more.
func (s *Service) inboxLines(ctx context.Context, a haven.Actor, f sqlstore.ThreadFilter, limit int) ([]inboxLine, string, error) {
	var out []inboxLine
	facts := map[string]policy.Facts{}
	scanned := 0
	f.Limit = 100
	for {
		page, err := s.db.PracticeThreads(ctx, a.PracticeID, f)
		if err != nil {
			return nil, "", haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the inbox")
		}
		for i, t := range page {
			res := threadResource(t)
			pf, ok := facts[t.PatientID]
			if !ok {
				if pf, _, err = s.loadFacts(ctx, a, res); err != nil {
					return nil, "", err
				}
				facts[t.PatientID] = pf
			}
			scanned++
			if d := policy.Decide(a, policy.MessageTriage, res, pf); d.Allow {
				out = append(out, inboxLine{t, d})
			}
			more := i < len(page)-1 || len(page) == f.Limit
			if len(out) == limit || scanned >= inboxScan {
				if !more {
					return out, "", nil
				}
				return out, strconv.FormatInt(t.LastUS, 10) + "." + t.ID, nil
			}
		}
		if len(page) < f.Limit {
			return out, "", nil
		}
		last := page[len(page)-1]
		f.BeforeUS, f.BeforeID = last.LastUS, last.ID
	}
}

// UnreadThreads counts the reader's conversations with messages they
// have not read: a patient's own (message.read on her record), or for
// the workforce the open threads of the inbox they may see
// (message.inbox, one event: a count opens nothing, so no thread is
// recorded). It is the number on each role's home page.
func (s *Service) UnreadThreads(ctx context.Context) (int, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return 0, err
	}
	var ts []*haven.Thread
	if a.Role == haven.RolePatient {
		if _, _, ts, err = s.patientThreads(ctx, a.UserID); err != nil {
			return 0, err
		}
	} else {
		if _, _, err := s.authorize(ctx, policy.MessageInbox, policy.Resource{Kind: policy.KindMessage, PracticeID: a.PracticeID}); err != nil {
			return 0, err
		}
		lines, _, err := s.inboxLines(ctx, a, sqlstore.ThreadFilter{}, inboxScan)
		if err != nil {
			return 0, err
		}
		for _, l := range lines {
			ts = append(ts, l.t)
		}
	}
	reads, err := s.db.ThreadReads(ctx, a.UserID, threadIDs(ts))
	if err != nil {
		return 0, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load what was read")
	}
	n := 0
	for _, t := range ts {
		if t.Messages > reads[t.ID] {
			n++
		}
	}
	return n, nil
}

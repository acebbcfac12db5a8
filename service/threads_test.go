package service_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/outbox"
	"haven/service"
)

// write has patient start a conversation with audience.
func (e *env) write(patient haven.Actor, audience, subject, body string) *haven.ThreadView {
	e.t.Helper()
	tv, err := e.svc.StartThread(e.as(patient), service.NewThread{Audience: audience, Subject: subject, Body: body})
	if err != nil {
		e.t.Fatal(err)
	}
	return tv
}

// events returns practiceID's events newest first (up to 500).
func (e *env) events(practiceID string) []audit.Event {
	e.t.Helper()
	e.svc.Wait() // probes are reported to their practice in the background
	rows, err := e.db.SearchAudit(context.Background(), haven.AuditQuery{LogID: practiceID, Limit: 500})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]audit.Event, len(rows))
	for i, r := range rows {
		out[i] = r.Event
	}
	return out
}

// inboxHas reports whether a's inbox (view) lists thread id.
func (e *env) inboxHas(a haven.Actor, view, id string) bool {
	e.t.Helper()
	in, err := e.svc.Inbox(e.as(a), view, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return slices.ContainsFunc(in.Threads, func(t haven.ThreadView) bool { return t.ID == id })
}

func TestPatientWritesToHerCareTeamAndTheClinicianReplies(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "t1")
		tv := e.write(p.patientA, haven.AudienceCareTeam, "  Rash after the new cream ", "It started on Monday.\r\nIt itches at night.")
		if tv.Subject != "Rash after the new cream" || tv.Messages != 1 || !tv.LastFromPatient || tv.Audience != haven.AudienceCareTeam {
			t.Fatalf("started %+v", tv)
		}
		if ev := e.lastEvent(p.id); ev.Action != "message.send" || ev.Decision != haven.DecisionAllow || ev.ResourceKind != "message" ||
			ev.ResourceID != tv.ID || ev.PatientID != p.chartA.PatientID || ev.ActorID != p.patientA.UserID {
			t.Fatalf("start not audited: %+v", ev)
		}
		// The clinician's inbox names the patient and shows the subject.
		in, err := e.svc.Inbox(e.as(p.clinician), "", "")
		if err != nil || len(in.Threads) != 1 {
			t.Fatalf("inbox %+v %v", in, err)
		}
		line := in.Threads[0]
		if line.ID != tv.ID || line.PatientName != "Namet1A" || line.Subject != "Rash after the new cream" || line.Unread != 1 || line.Done || in.Changed == 0 {
			t.Fatalf("inbox line %+v", line)
		}
		if n, err := e.svc.UnreadThreads(e.as(p.clinician)); err != nil || n != 1 {
			t.Fatalf("the clinician's unread count %d %v", n, err)
		}
		page, err := e.svc.ReadThread(e.as(p.clinician), tv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) != 1 || page.Messages[0].Body != "It started on Monday.\nIt itches at night." || !page.Messages[0].FromPatient ||
			!page.CanReply || !page.CanTriage || page.Thread.PatientName != "Namet1A" {
			t.Fatalf("the clinician read %+v", page)
		}
		if ev := e.lastEvent(p.id); ev.Action != "message.read" || ev.ActorID != p.clinician.UserID || ev.ResourceID != tv.ID || ev.PatientID != p.chartA.PatientID || ev.Purpose != "treatment" {
			t.Fatalf("read not audited: %+v", ev)
		}
		if n, _ := e.svc.UnreadThreads(e.as(p.clinician)); n != 0 {
			t.Fatalf("read, yet %d unread", n)
		}
		reply, err := e.svc.Reply(e.as(p.clinician), tv.ID, "Stop the cream; send a photo if it spreads.", nil)
		if err != nil || reply.FromPatient || reply.Body != "Stop the cream; send a photo if it spreads." {
			t.Fatalf("reply %+v %v", reply, err)
		}
		// Her list shows one conversation with one unread message; reading
		// it names the clinician and clears it.
		mine, err := e.svc.PatientThreads(e.as(p.patientA), p.chartA.PatientID)
		if err != nil || len(mine) != 1 || mine[0].Unread != 1 || mine[0].Messages != 2 || mine[0].LastFromPatient || mine[0].AssigneeName != "" || mine[0].PatientName != "" {
			t.Fatalf("her list %+v %v", mine, err)
		}
		if n, err := e.svc.UnreadThreads(e.as(p.patientA)); err != nil || n != 1 {
			t.Fatalf("her unread count %d %v", n, err)
		}
		page, err = e.svc.ReadThread(e.as(p.patientA), tv.ID)
		if err != nil || len(page.Messages) != 2 || page.Messages[1].SenderName != "Worker doc@riverside.example" || page.CanTriage || !page.CanReply {
			t.Fatalf("she read %+v %v", page, err)
		}
		if n, _ := e.svc.UnreadThreads(e.as(p.patientA)); n != 0 {
			t.Fatalf("read, yet %d unread", n)
		}
		// A clinician writes first to a patient of their care team; the
		// thread is theirs.
		own, err := e.svc.StartThread(e.as(p.clinician), service.NewThread{PatientID: p.chartA.PatientID, Subject: "Your results", Body: "All normal."})
		if err != nil || own.AssigneeID != p.clinician.UserID || own.Audience != haven.AudienceCareTeam {
			t.Fatalf("the clinician's own thread %+v %v", own, err)
		}
		if !e.inboxHas(p.clinician, service.InboxMine, own.ID) || e.inboxHas(p.clinician, service.InboxMine, tv.ID) {
			t.Fatal("the mine view")
		}
	})
}

// TestThreadsStayWithTheirPatient attacks a thread by its id: another
// patient of the practice, a clinician with no relationship to the
// patient, the administrator, the compliance officer, and everyone of
// another practice can neither read it, write in it, triage it nor watch
// it; each refusal is audited, and another practice's log never names
// the patient.
func TestThreadsStayWithTheirPatient(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "t2")
		q := e.seed("lakeshore", "u2")
		tv := e.write(p.patientA, haven.AudienceFrontDesk, "Form", "Please send the form.")
		tries := map[string]func(ctx context.Context) error{
			"read":      func(ctx context.Context) error { _, err := e.svc.ReadThread(ctx, tv.ID); return err },
			"reply":     func(ctx context.Context) error { _, err := e.svc.Reply(ctx, tv.ID, "hello", nil); return err },
			"assignees": func(ctx context.Context) error { _, err := e.svc.Assignees(ctx, tv.ID); return err },
			"assign":    func(ctx context.Context) error { return e.svc.AssignThread(ctx, tv.ID, p.staff.UserID) },
			"done":      func(ctx context.Context) error { return e.svc.SetThreadDone(ctx, tv.ID, true) },
			"watch":     func(ctx context.Context) error { _, err := e.svc.WatchThread(ctx, tv.ID, 0, 0); return err },
		}
		for _, c := range []struct {
			name     string
			who      haven.Actor
			practice string
			code     string
		}{
			{"another patient", p.patientB, p.id, haven.ENOTFOUND},
			{"an unrelated clinician", p.otherClinician, p.id, haven.EFORBIDDEN},
			{"the administrator", p.admin, p.id, haven.EFORBIDDEN},
			{"the compliance officer", p.compliance, p.id, haven.EFORBIDDEN},
			{"another practice's patient", q.patientA, q.id, haven.ENOTFOUND},
			{"another practice's clinician", q.clinician, q.id, haven.ENOTFOUND},
			{"another practice's front desk", q.staff, q.id, haven.ENOTFOUND},
		} {
			for what, try := range tries {
				err := try(e.as(c.who))
				if haven.ErrorCode(err) != c.code {
					t.Errorf("%s: %s answered %v, want %s", c.name, what, err, c.code)
					continue
				}
				ev := e.lastEvent(c.practice)
				if ev.Decision != haven.DecisionDeny || ev.ActorID != c.who.UserID || !strings.HasPrefix(ev.Action, "message.") {
					t.Errorf("%s: refused %s not audited: %+v", c.name, what, ev)
				}
				if c.practice != p.id && ev.PatientID != "" {
					t.Errorf("%s: another practice's log names the patient", c.name)
				}
			}
			// Nor does the thread show in their lists.
			if c.who.Role == haven.RoleStaff || c.who.Role == haven.RoleClinician {
				if e.inboxHas(c.who, service.InboxOpen, tv.ID) {
					t.Errorf("%s: the thread is in their inbox", c.name)
				}
			}
			if c.who.Role == haven.RolePatient {
				if ts, err := e.svc.PatientThreads(e.as(c.who), c.who.UserID); err != nil || len(ts) != 0 {
					t.Errorf("%s: their list %v %v", c.name, ts, err)
				}
				if _, err := e.svc.PatientThreads(e.as(c.who), p.chartA.PatientID); haven.ErrorCode(err) != haven.ENOTFOUND {
					t.Errorf("%s: listed her threads: %v", c.name, err)
				}
			}
		}
		// Nobody starts a conversation for another patient, and an unknown
		// or malformed id is not found.
		for _, who := range []haven.Actor{p.patientB, q.clinician, q.staff} {
			if _, err := e.svc.StartThread(e.as(who), service.NewThread{PatientID: p.chartA.PatientID, Audience: haven.AudienceCareTeam, Subject: "x", Body: "y"}); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Errorf("%s started a thread for her: %v", who.Role, err)
			}
		}
		for _, id := range []string{haven.NewID(), "BAD\x00ID"} {
			if _, err := e.svc.ReadThread(e.as(p.clinician), id); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Errorf("id %q: %v", id, err)
			}
		}
		if n := e.storedThreadMessages(tv.ID); n != 1 {
			t.Fatalf("%d messages stored, want hers alone", n)
		}
	})
}

func (e *env) storedThreadMessages(id string) int {
	e.t.Helper()
	rows, err := e.db.ThreadMessages(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(rows)
}

// TestRestrictionKeepsTheFrontDeskOut: a patient who keeps the front desk
// out of her messages does so from the next decision on: the front desk
// can neither read nor answer her threads nor start one, her threads
// leave its inbox and unread count (without a refusal logged per line),
// it cannot be given her thread and is not emailed about it; she cannot
// write to the front desk, only to her care team. Only she reads and sets
// her restrictions, and both are audited.
func TestRestrictionKeepsTheFrontDeskOut(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "t3")
		tv := e.write(p.patientA, haven.AudienceCareTeam, "Private", "Only my doctor, please.")
		if !e.inboxHas(p.staff, service.InboxOpen, tv.ID) {
			t.Fatal("before the restriction the front desk sees the thread")
		}
		for _, who := range []haven.Actor{p.staff, p.clinician, p.admin, p.patientB} {
			if _, err := e.svc.Restrictions(e.as(who), p.chartA.PatientID); err == nil {
				t.Fatalf("%s read her restrictions", who.Role)
			}
			if _, err := e.svc.SetRestrictions(e.as(who), p.chartA.PatientID, service.RestrictionsChange{Version: 1}); err == nil {
				t.Fatalf("%s set her restrictions", who.Role)
			}
		}
		r, err := e.svc.Restrictions(e.as(p.patientA), p.chartA.PatientID)
		if err != nil || r.StaffFromMessages || len(r.Barred) != 0 {
			t.Fatalf("her restrictions %+v %v", r, err)
		}
		if ev := e.lastEvent(p.id); ev.Action != "restrictions.read" || ev.ActorID != p.patientA.UserID || ev.Decision != haven.DecisionAllow || ev.PatientID != p.chartA.PatientID {
			t.Fatalf("read not audited: %+v", ev)
		}
		if _, err := e.svc.SetRestrictions(e.as(p.patientA), p.chartA.PatientID, service.RestrictionsChange{Version: r.Version + 5, StaffFromMessages: true}); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("a stale version: %v", err)
		}
		for _, bad := range [][]string{{p.chartB.PatientID}, {haven.NewID()}, {"NOT AN ID"}} {
			if _, err := e.svc.SetRestrictions(e.as(p.patientA), p.chartA.PatientID, service.RestrictionsChange{Version: r.Version, BarredUsers: bad}); haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("barring %v: %v", bad, err)
			}
		}
		r, err = e.svc.SetRestrictions(e.as(p.patientA), p.chartA.PatientID, service.RestrictionsChange{Version: r.Version, StaffFromMessages: true, BarredUsers: []string{p.otherClinician.UserID}})
		if err != nil || !r.StaffFromMessages || len(r.Barred) != 1 || r.Barred[0].Name != "Worker doc2@riverside.example" {
			t.Fatalf("set %+v %v", r, err)
		}
		if ev := e.lastEvent(p.id); ev.Action != "restrictions.write" || ev.Decision != haven.DecisionAllow {
			t.Fatalf("write not audited: %+v", ev)
		}
		if _, err := e.svc.ReadThread(e.as(p.staff), tv.ID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("the front desk read her thread: %v", err)
		}
		if _, err := e.svc.Reply(e.as(p.staff), tv.ID, "hello", nil); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("the front desk answered: %v", err)
		}
		if _, err := e.svc.StartThread(e.as(p.staff), service.NewThread{PatientID: p.chartA.PatientID, Subject: "x", Body: "y"}); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("the front desk started a thread: %v", err)
		}
		before := len(e.events(p.id))
		if e.inboxHas(p.staff, service.InboxOpen, tv.ID) {
			t.Fatal("her thread is in the front desk's inbox")
		}
		if n, err := e.svc.UnreadThreads(e.as(p.staff)); err != nil || n != 0 {
			t.Fatalf("the front desk's unread count %d %v", n, err)
		}
		for _, ev := range e.events(p.id)[:len(e.events(p.id))-before] {
			if ev.Decision != haven.DecisionAllow || ev.Action != "message.inbox" {
				t.Fatalf("the front desk's inbox logged %+v", ev)
			}
		}
		// The barred clinician is kept out even on her care team.
		if err := e.svc.AddToCareTeam(e.as(p.admin), p.chartA.PatientID, p.otherClinician.UserID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ReadThread(e.as(p.otherClinician), tv.ID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("the barred clinician read: %v", err)
		}
		people, err := e.svc.Assignees(e.as(p.clinician), tv.ID)
		if err != nil || len(people) != 1 || people[0].UserID != p.clinician.UserID || people[0].Name != "Worker doc@riverside.example" {
			t.Fatalf("assignees %+v %v", people, err)
		}
		if err := e.svc.AssignThread(e.as(p.clinician), tv.ID, p.staff.UserID); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("given to the front desk: %v", err)
		}
		// She cannot write to the front desk; to her care team, yes, and
		// the notice goes to her clinician alone.
		if _, err := e.svc.StartThread(e.as(p.patientA), service.NewThread{Audience: haven.AudienceFrontDesk, Subject: "x", Body: "y"}); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("wrote to the front desk: %v", err)
		}
		e.write(p.patientA, haven.AudienceCareTeam, "Again", "Another question.")
		var to []string
		rows, err := e.db.SQL().Query(`SELECT user_id FROM message_notices WHERE pending_us IS NOT NULL`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			rows.Scan(&id)
			to = append(to, id)
		}
		rows.Close()
		if len(to) != 1 || to[0] != p.clinician.UserID {
			t.Fatalf("notices pending for %v, want the clinician's alone", to)
		}
	})
}

// TestTriageGivesAThreadToAPersonAndMarksItDone: the front desk gives a
// thread to the clinician by name; it is in the clinician's "mine"; done,
// it leaves the open view for the done view; the patient's next message
// reopens it. Nobody outside the assignees can be given it.
func TestTriageGivesAThreadToAPersonAndMarksItDone(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "t4")
		tv := e.write(p.patientA, haven.AudienceFrontDesk, "Refill", "Can my prescription be renewed?")
		people, err := e.svc.Assignees(e.as(p.staff), tv.ID)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range people {
			names = append(names, m.Name)
		}
		// The unrelated clinician could not answer her, so is not offered.
		if fmt.Sprint(names) != "[Worker desk@riverside.example Worker doc@riverside.example]" {
			t.Fatalf("assignees %v", names)
		}
		for _, who := range []string{p.otherClinician.UserID, p.admin.UserID, p.chartB.PatientID, haven.NewID(), "Not An Id"} {
			if err := e.svc.AssignThread(e.as(p.staff), tv.ID, who); haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("given to %s: %v", who, err)
			}
		}
		if err := e.svc.AssignThread(e.as(p.staff), tv.ID, p.clinician.UserID); err != nil {
			t.Fatal(err)
		}
		if ev := e.lastEvent(p.id); ev.Action != "message.triage" || ev.ActorID != p.staff.UserID || ev.ResourceID != tv.ID || ev.Decision != haven.DecisionAllow {
			t.Fatalf("assignment not audited: %+v", ev)
		}
		in, err := e.svc.Inbox(e.as(p.clinician), service.InboxMine, "")
		if err != nil || len(in.Threads) != 1 || in.Threads[0].AssigneeName != "Worker doc@riverside.example" {
			t.Fatalf("the clinician's own %+v %v", in, err)
		}
		if err := e.svc.SetThreadDone(e.as(p.clinician), tv.ID, true); err != nil {
			t.Fatal(err)
		}
		if e.inboxHas(p.staff, service.InboxOpen, tv.ID) || !e.inboxHas(p.staff, service.InboxDone, tv.ID) {
			t.Fatal("done, yet open")
		}
		if _, err := e.svc.Reply(e.as(p.patientA), tv.ID, "Thanks! One more thing.", nil); err != nil {
			t.Fatal(err)
		}
		if !e.inboxHas(p.staff, service.InboxOpen, tv.ID) {
			t.Fatal("her reply did not reopen the thread")
		}
		if _, err := e.svc.Inbox(e.as(p.staff), "everything", ""); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("an unknown view: %v", err)
		}
		if _, err := e.svc.Inbox(e.as(p.staff), "", "12.NOT-AN-ID"); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("a forged page: %v", err)
		}
		// The patient, the administrator and the compliance officer have
		// no inbox.
		for _, who := range []haven.Actor{p.patientA, p.admin, p.compliance} {
			if _, err := e.svc.Inbox(e.as(who), "", ""); haven.ErrorCode(err) != haven.EFORBIDDEN {
				t.Fatalf("%s opened the inbox: %v", who.Role, err)
			}
		}
	})
}

// TestAnInboxViewDoesNotRaiseTheBulkAccessAlert: the front desk's inbox
// lists many patients' threads; viewing it, again and again, records each
// line in the patient's own history but raises no bulk-access alert (the
// list is the practice's work, not a choice of records). Opening that
// many patients' threads one after another does raise it.
func TestAnInboxViewDoesNotRaiseTheBulkAccessAlert(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "t5")
		settings := service.DefaultSettings()
		settings.BulkAccessPatients = 5
		if err := e.svc.UpdateSettings(e.as(p.admin), settings); err != nil {
			t.Fatal(err)
		}
		var threads []string
		for i := range 8 {
			c, err := e.svc.RegisterPatient(e.as(p.staff), service.NewPatient{MRN: fmt.Sprintf("MRN-b%d", i),
				Demographics: service.Demographics{Name: fmt.Sprintf("Bulk Patient %d", i), DateOfBirth: "1970-01-01"},
				Contact:      service.Contact{Email: fmt.Sprintf("bulk%d@riverside.example", i)}})
			if err != nil {
				t.Fatal(err)
			}
			pa := haven.Actor{UserID: c.PatientID, PracticeID: p.id, Role: haven.RolePatient}
			threads = append(threads, e.write(pa, haven.AudienceFrontDesk, "Question", fmt.Sprintf("Question %d", i)).ID)
		}
		alerts := func() int {
			as, err := e.svc.Alerts(e.as(p.compliance), true)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, a := range as {
				if a.Rule == service.RuleBulkAccess && a.ActorID == p.staff.UserID {
					n++
				}
			}
			return n
		}
		for range 3 {
			in, err := e.svc.Inbox(e.as(p.staff), "", "")
			if err != nil || len(in.Threads) != 8 {
				t.Fatalf("inbox of %d, %v", len(in.Threads), err)
			}
			if _, err := e.svc.UnreadThreads(e.as(p.staff)); err != nil {
				t.Fatal(err)
			}
		}
		if n := alerts(); n != 0 {
			t.Fatalf("viewing the inbox raised %d bulk-access alerts", n)
		}
		// Each line is in its patient's history.
		lines := 0
		for _, ev := range e.events(p.id) {
			if ev.Action == "message.triage" && ev.ActorID == p.staff.UserID && ev.PatientID != "" && slices.Contains(threads, ev.ResourceID) {
				lines++
			}
		}
		if lines != 3*8 {
			t.Fatalf("%d inbox lines recorded, want %d", lines, 3*8)
		}
		for _, id := range threads[:6] {
			if _, err := e.svc.ReadThread(e.as(p.staff), id); err != nil {
				t.Fatal(err)
			}
		}
		if n := alerts(); n != 1 {
			t.Fatalf("reading six patients' threads raised %d bulk-access alerts, want 1", n)
		}
	})
}

func TestMessagesAndSubjectsAreChecked(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "t6")
		ok := service.NewThread{Audience: haven.AudienceCareTeam, Subject: "Subject", Body: "Body"}
		bad := map[string]func(nt *service.NewThread){
			"no subject":            func(nt *service.NewThread) { nt.Subject = "  " },
			"long subject":          func(nt *service.NewThread) { nt.Subject = strings.Repeat("s", service.MaxSubject+1) },
			"two-line subject":      func(nt *service.NewThread) { nt.Subject = "one\ntwo" },
			"bidi subject":          func(nt *service.NewThread) { nt.Subject = "pay \u202eto" },
			"empty body":            func(nt *service.NewThread) { nt.Body = "\n \t" },
			"long body":             func(nt *service.NewThread) { nt.Body = strings.Repeat("é", service.MaxMessage+1) },
			"control in body":       func(nt *service.NewThread) { nt.Body = "bell\x07" },
			"nul in body":           func(nt *service.NewThread) { nt.Body = "a\x00b" },
			"invalid utf8":          func(nt *service.NewThread) { nt.Body = "caf\xe9" },
			"isolate":               func(nt *service.NewThread) { nt.Body = "a\u2066b" },
			"no audience":           func(nt *service.NewThread) { nt.Audience = "" },
			"unknown audience":      func(nt *service.NewThread) { nt.Audience = "billing" },
			"a visit's audience":    func(nt *service.NewThread) { nt.Audience = haven.AudienceVisit },
			"too many files":        func(nt *service.NewThread) { nt.FileIDs = []string{"a", "b", "c", "d", "e", "f"} },
			"a file twice":          func(nt *service.NewThread) { nt.FileIDs = []string{"a", "a"} },
			"a malformed file":      func(nt *service.NewThread) { nt.FileIDs = []string{"A/B"} },
			"an unknown file":       func(nt *service.NewThread) { nt.FileIDs = []string{haven.NewID()} },
			"another patient's key": func(nt *service.NewThread) { nt.FileIDs = []string{e.upload(p.patientB, "b.txt")} },
		}
		for name, edit := range bad {
			nt := ok
			edit(&nt)
			if _, err := e.svc.StartThread(e.as(p.patientA), nt); haven.ErrorCode(err) != haven.EINVALID {
				t.Errorf("%s: %v", name, err)
			}
		}
		var n int
		e.db.SQL().QueryRow(`SELECT COUNT(*) FROM threads`).Scan(&n)
		if n != 0 {
			t.Fatalf("refused threads stored: %d", n)
		}
		tv := e.write(p.patientA, haven.AudienceCareTeam, strings.Repeat("s", service.MaxSubject), strings.Repeat("é", service.MaxMessage))
		// A reply to an ordinary thread may hold lines; a visit's line may not.
		if _, err := e.svc.Reply(e.as(p.clinician), tv.ID, "line one\nline two", nil); err != nil {
			t.Fatal(err)
		}
	})
}

// upload adds a small file to patient's record and returns its id.
func (e *env) upload(patient haven.Actor, name string) string {
	e.t.Helper()
	f, err := e.svc.UploadFile(e.as(patient), patient.UserID, name, strings.NewReader("%PDF-1.4\n% some text "+name))
	if err != nil {
		e.t.Fatal(err)
	}
	return f.ID
}

// TestAttachmentsAreFilesOfThePatientsRecord: a patient attaches a file
// of her record; her clinician sees its name (file.read, audited); the
// front desk, whose role opens no files, sees that one is there and
// nothing else, and is not logged refusing it. Another patient's file
// cannot be attached.
func TestAttachmentsAreFilesOfThePatientsRecord(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "t7")
		mine := e.upload(p.patientA, "rash-photo.txt")
		theirs := e.upload(p.patientB, "other.txt")
		tv, err := e.svc.StartThread(e.as(p.patientA), service.NewThread{Audience: haven.AudienceCareTeam, Subject: "Rash", Body: "Photo attached.", FileIDs: []string{mine}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Reply(e.as(p.patientA), tv.ID, "And this one", []string{theirs}); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("another patient's file: %v", err)
		}
		page, err := e.svc.ReadThread(e.as(p.clinician), tv.ID)
		if err != nil || len(page.Messages) != 1 || len(page.Messages[0].Attachments) != 1 {
			t.Fatalf("%+v %v", page, err)
		}
		if a := page.Messages[0].Attachments[0]; a.FileID != mine || a.Name != "rash-photo.txt" || a.Hidden || a.Size == 0 {
			t.Fatalf("the clinician sees %+v", a)
		}
		found := false
		for _, ev := range e.events(p.id)[:3] {
			found = found || ev.Action == "file.read" && ev.ActorID == p.clinician.UserID && ev.Decision == haven.DecisionAllow
		}
		if !found {
			t.Fatal("the file names' opening is not audited")
		}
		page, err = e.svc.ReadThread(e.as(p.staff), tv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a := page.Messages[0].Attachments[0]; !a.Hidden || a.Name != "" || a.ContentType != "" {
			t.Fatalf("the front desk sees %+v", a)
		}
		if ev := e.lastEvent(p.id); ev.Action != "message.read" || ev.Decision != haven.DecisionAllow {
			t.Fatalf("the front desk's read left %+v", ev)
		}
		// The front desk, which may not open her files, may not attach one.
		if _, err := e.svc.Reply(e.as(p.staff), tv.ID, "Here", []string{mine}); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("the front desk attached a file: %v", err)
		}
	})
}

// TestNoticeSaysOnlyThatThereIsAMessage: the clinician's three messages
// in a minute make one email to the patient, and a fourth a quarter of an
// hour later another; the email names the practice and links to sign in,
// and holds nothing of the messages, the subject, the patient or the
// clinician. Her own messages notify her care team, not her.
func TestNoticeSaysOnlyThatThereIsAMessage(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "t8")
		box := &outbox.Memory{}
		n := service.NewNotices(e.svc, service.NoticeConfig{Outbox: box, BaseURL: "https://clinic.example/"})
		tv := e.write(p.patientA, haven.AudienceCareTeam, "SubjectQx8", "BodyQx8 first")
		for i := range 3 {
			if _, err := e.svc.Reply(e.as(p.clinician), tv.ID, fmt.Sprintf("ReplyQx8 %d", i), nil); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(20 * time.Second)
		}
		sent, err := n.SendDue(context.Background(), e.clock.Now())
		if err != nil || sent != 2 {
			t.Fatalf("sent %d, %v; want the patient's and the clinician's", sent, err)
		}
		mails := box.Sent()
		to := map[string]outbox.Message{}
		for _, m := range mails {
			to[m.To] = m
		}
		pm, ok := to["pta@riverside.example"]
		if !ok || len(mails) != 2 {
			t.Fatalf("mails %+v", mails)
		}
		if pm.Subject != "You have a new secure message from riverside" || !strings.Contains(pm.Text, "https://clinic.example/app/messages\n") {
			t.Fatalf("the patient's notice: %+v", pm)
		}
		if dm := to["doc@riverside.example"]; !strings.Contains(dm.Text, "https://clinic.example/app/inbox\n") {
			t.Fatalf("the clinician's notice: %+v", dm)
		}
		for _, m := range mails {
			for _, leak := range []string{"Qx8", "Namet8", "Worker", "doc@", tv.ID, p.chartA.PatientID, "Rash"} {
				if strings.Contains(m.Subject+m.Text, leak) && !(leak == "doc@" && m.To == "doc@riverside.example") {
					t.Fatalf("a notice holds %q: %+v", leak, m)
				}
			}
		}
		if ev := e.lastEventOf(p.id, service.ActMessageNotify); ev.ActorID != service.NoticeActor || ev.Decision != haven.DecisionAllow {
			t.Fatalf("notice not audited: %+v", ev)
		}
		// Within the quarter hour, more messages wait.
		if _, err := e.svc.Reply(e.as(p.clinician), tv.ID, "One more", nil); err != nil {
			t.Fatal(err)
		}
		if sent, err := n.SendDue(context.Background(), e.clock.Now()); err != nil || sent != 0 {
			t.Fatalf("sent %d within the quarter hour, %v", sent, err)
		}
		e.clock.Advance(service.NoticeQuiet)
		if sent, err := n.SendDue(context.Background(), e.clock.Now()); err != nil || sent != 1 || len(box.Sent()) != 3 || box.Sent()[2].To != "pta@riverside.example" {
			t.Fatalf("after the quarter hour: %d %v %+v", sent, err, box.Sent())
		}
		// Her history says a notice went out, in no more words than that.
		h, err := e.svc.AccessHistory(e.as(p.patientA), p.chartA.PatientID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(h.Events, func(ev service.AccessEvent) bool {
			return ev.Action == service.ActMessageNotify && ev.ActorName == service.NoticeActorName
		}) {
			t.Fatal("the notice is not in her history")
		}
	})
}

// TestWatchWakesForANewMessage: a patient's list watch and a thread watch
// return as soon as a message arrives, with a stamp that differs from
// what they saw; a watch that saw the current stamp waits.
func TestWatchWakesForANewMessage(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "t9")
		tv := e.write(p.patientA, haven.AudienceCareTeam, "Hello", "First")
		list, err := e.svc.WatchThreads(e.as(p.patientA), 0, 0)
		if err != nil || list == 0 {
			t.Fatalf("list stamp %d %v", list, err)
		}
		one, err := e.svc.WatchThread(e.as(p.patientA), tv.ID, 0, 0)
		if err != nil || one != list {
			t.Fatalf("thread stamp %d (list %d) %v", one, list, err)
		}
		if same, err := e.svc.WatchThreads(e.as(p.patientA), list, 10*time.Millisecond); err != nil || same != list {
			t.Fatalf("an unchanged list answered %d %v", same, err)
		}
		got := make(chan int64, 2)
		go func() {
			n, err := e.svc.WatchThread(e.as(p.patientA), tv.ID, one, time.Minute)
			if err != nil {
				t.Error(err)
			}
			got <- n
		}()
		go func() {
			n, err := e.svc.WatchThreads(e.as(p.staff), list, time.Minute)
			if err != nil {
				t.Error(err)
			}
			got <- n
		}()
		time.Sleep(100 * time.Millisecond)
		if _, err := e.svc.Reply(e.as(p.clinician), tv.ID, "Answer", nil); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if n := <-got; n == one || n == 0 {
				t.Fatalf("a watch woke with %d", n)
			}
		}
		if _, err := e.svc.WatchThread(e.as(p.patientB), tv.ID, 0, 0); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another patient watched: %v", err)
		}
	})
}

// TestMessageMovedToAnotherRowDoesNotOpen: a body or a subject copied
// over another's row (same patient) fails to open, and the thread is
// refused rather than shown wrong.
func TestMessageMovedToAnotherRowDoesNotOpen(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "t10")
		a := e.write(p.patientA, haven.AudienceCareTeam, "First subject", "first")
		b := e.write(p.patientA, haven.AudienceCareTeam, "Second subject", "second")
		if _, err := e.db.SQL().Exec(`UPDATE threads SET subject_sealed = (SELECT subject_sealed FROM threads WHERE id = $1) WHERE id = $2`, a.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ReadThread(e.as(p.patientA), b.ID); err == nil {
			t.Fatal("a moved subject opened")
		}
		if _, err := e.svc.ReadThread(e.as(p.patientA), a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.SQL().Exec(`UPDATE messages SET body_sealed = (SELECT m.body_sealed FROM messages m WHERE m.thread_id = $1) WHERE thread_id = $2`, b.ID, a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ReadThread(e.as(p.patientA), a.ID); err == nil {
			t.Fatal("a moved body opened")
		}
	})
}

// TestRawFilesHoldNoMessage searches the database's raw files (and, on
// PostgreSQL, a dump) for a conversation's subject and bodies.
func TestRawFilesHoldNoMessage(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "t11")
		tv := e.write(p.patientA, haven.AudienceCareTeam, "SubjectQx11Marker", "BodyQx11Marker from the patient")
		if _, err := e.svc.Reply(e.as(p.clinician), tv.ID, "ReplyQx11Marker from the clinician", nil); err != nil {
			t.Fatal(err)
		}
		if page, err := e.svc.ReadThread(e.as(p.patientA), tv.ID); err != nil || len(page.Messages) != 2 {
			t.Fatalf("%+v %v", page, err)
		}
		e.assertNotInTheClear(t, tv.ID, "SubjectQx11Marker", "BodyQx11Marker", "ReplyQx11Marker")
	})
}

package service_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/outbox"
	"haven/service"
)

// reminderWeek is the clinicians' availability for the reminder tests:
// Wednesday afternoon (the env clock's day), Thursday and Friday mornings,
// all UTC in 30-minute slots.
var reminderWeek = []service.AvailabilityBlock{
	{Weekday: time.Wednesday, Start: "15:00", End: "17:00", SlotMinutes: 30, TimeZone: "UTC"},
	{Weekday: time.Thursday, Start: "09:00", End: "12:00", SlotMinutes: 30, TimeZone: "UTC"},
	{Weekday: time.Friday, Start: "09:00", End: "12:00", SlotMinutes: 30, TimeZone: "UTC"},
}

func thu(hour, min int) time.Time { return time.Date(2026, 11, 26, hour, min, 0, 0, time.UTC) }

// reminderOutbox is a directory outbox dated by the env clock, and what it
// holds.
type reminderOutbox struct {
	*outbox.Dir
	t *testing.T
}

func (e *env) reminderOutbox() reminderOutbox {
	return reminderOutbox{Dir: &outbox.Dir{Path: filepath.Join(e.t.TempDir(), "outbox"), Key: make([]byte, outbox.KeySize), Now: e.clock.Now}, t: e.t}
}

// files returns the messages in the outbox, opened.
func (o reminderOutbox) files() []string {
	o.t.Helper()
	msgs, err := o.Messages()
	if err != nil {
		o.t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Raw))
	}
	return out
}

// reminders returns a reminder sender over svc writing to o.
func (o reminderOutbox) reminders(svc *service.Service) *service.Reminders {
	return service.NewReminders(svc, service.ReminderConfig{Outbox: o.Dir, BaseURL: "https://clinic.example"})
}

// secondNode is another Haven process on the same database (see
// stack.Stack.Node).
func (e *env) secondNode() *service.Service { return e.s.Node().Service }

// remindEvents returns the allowed visit.remind events of a log.
func (e *env) remindEvents(logID string) []audit.Event {
	e.t.Helper()
	rows, err := e.db.SearchAudit(context.Background(), haven.AuditQuery{LogID: logID, Action: service.ActVisitRemind, Decision: haven.DecisionAllow, Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]audit.Event, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Event)
	}
	return out
}

func (e *env) reminded(visitID string) bool {
	e.t.Helper()
	_, ok, err := e.db.VisitReminded(context.Background(), visitID)
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

// visitTimeStrings are the ways a visit's time could be written into an
// email: dates, days, clock times, machine forms.
func visitTimeStrings(ts ...time.Time) []string {
	layouts := []string{"2006-01-02", "20060102", "Jan 2", "2 Jan", "Jan 02", "02 Jan", "January 2", "2 January",
		"01/02", "02/01", "1/2/2006", "2/1/2006", "02.01.2006", "Monday", "Mon,", "Mon 2", "15:04", "3:04", "3:04PM", "3:04 PM", "3PM", "3 PM",
		time.RFC3339, time.RFC1123, time.RFC1123Z, time.ANSIC, time.Kitchen, time.DateTime}
	var out []string
	for _, t := range ts {
		for _, l := range layouts {
			out = append(out, t.Format(l))
		}
		out = append(out, strconv.FormatInt(t.Unix(), 10), strconv.FormatInt(t.UnixMilli(), 10))
	}
	return out
}

// leaks returns the forbidden strings found in raw. Quoted-printable soft
// line breaks are undone first, so a value split across lines is found.
func leaks(raw string, forbidden []string) []string {
	flat := strings.ReplaceAll(raw, "=\r\n", "")
	var found []string
	for _, f := range forbidden {
		if f != "" && strings.Contains(strings.ToLower(flat), strings.ToLower(f)) {
			found = append(found, f)
		}
	}
	return found
}

// TestReminderGoesOutOnceAndCarriesNoPHI: of a patient's visit due
// tomorrow morning, another patient's visit that has already started, one
// two days out and one cancelled, only the first gets a reminder; a second
// run sends nothing more. The email, as written to the outbox file, holds
// none of the patient's name, the clinician's name, the reason, the
// practice's name, any id, or the visit's date and time in any common
// format, and it points to the sign-in page. The send is audited as the
// system's, with ids only.
func TestReminderGoesOutOnceAndCarriesNoPHI(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := e.seed("riverside", "m1")
		if err := e.svc.SetAvailability(e.as(p.clinician), reminderWeek); err != nil {
			t.Fatal(err)
		}
		const reason = "persistent migraine with aura"
		due, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, thu(9, 30), reason)
		if err != nil {
			t.Fatal(err)
		}
		started := e.bookAt(p.patientB, p.chartB.PatientID, p.clinician, wed(15, 0))
		later := e.bookAt(p.patientB, p.chartB.PatientID, p.clinician, thu(10, 0).AddDate(0, 0, 1))
		cancelled := e.bookAt(p.patientB, p.chartB.PatientID, p.clinician, thu(10, 0))
		if err := e.svc.CancelVisit(e.as(p.patientB), cancelled.ID); err != nil {
			t.Fatal(err)
		}

		// 15:07 on Wednesday: the 15:00 visit has begun, Thursday 09:30 is
		// within a day, Friday 10:00 is not.
		e.clock.Advance(67 * time.Minute)
		box := e.reminderOutbox()
		rem := box.reminders(e.svc)
		n, err := rem.SendDueReminders(ctx, e.clock.Now())
		if err != nil || n != 1 {
			t.Fatalf("first run sent %d: %v", n, err)
		}
		if n, err := rem.SendDueReminders(ctx, e.clock.Now()); err != nil || n != 0 {
			t.Fatalf("second run sent %d: %v", n, err)
		}
		files := box.files()
		if len(files) != 1 {
			t.Fatalf("the outbox holds %d messages", len(files))
		}
		for v, want := range map[string]bool{due.ID: true, started.ID: false, later.ID: false, cancelled.ID: false} {
			if e.reminded(v) != want {
				t.Errorf("visit %s reminded = %v, want %v", v, !want, want)
			}
		}

		raw := files[0]
		if !strings.Contains(raw, "To: <pta@riverside.example>") {
			t.Fatalf("the reminder is not addressed to the patient's account email:\n%s", raw)
		}
		if !strings.Contains(strings.ReplaceAll(raw, "=\r\n", ""), "https://clinic.example/app/visits") {
			t.Fatalf("the reminder does not point to the sign-in page:\n%s", raw)
		}
		clinicianName := "Worker doc@riverside.example"
		forbidden := append([]string{"Namem1A", "Namem1", clinicianName, "Worker", reason, "migraine", "MRN-m1A",
			due.ID, p.chartA.PatientID, p.clinician.UserID, p.id}, visitTimeStrings(due.Start, due.End)...)
		// The test's own check must be able to fail: a message written
		// with the visit's time or the patient's name is caught.
		for _, leaky := range []string{"See you " + due.Start.Format("Mon 2 Jan 15:04"), "Dear Namem1A", due.Start.Format(time.RFC3339)} {
			if len(leaks(leaky, forbidden)) == 0 {
				t.Fatalf("the PHI check would miss %q", leaky)
			}
		}
		if found := leaks(raw, forbidden); len(found) > 0 {
			t.Fatalf("the reminder email carries %q:\n%s", found, raw)
		}
		// The practice's name is in the patient's address here, so it is
		// looked for in the subject and the body only.
		_, after, _ := strings.Cut(raw, "Subject:")
		if found := leaks(after, []string{"riverside"}); len(found) > 0 {
			t.Fatalf("the reminder names the practice:\n%s", raw)
		}

		evs := e.remindEvents(p.id)
		if len(evs) != 1 {
			t.Fatalf("%d reminder events", len(evs))
		}
		ev := evs[0]
		if ev.ActorID != service.ReminderActor || ev.ResourceID != due.ID || ev.PatientID != p.chartA.PatientID || ev.SessionID != "" {
			t.Fatalf("reminder event %+v", ev)
		}
		if found := leaks(string(ev.Canonical()), append([]string{"pta@riverside.example"}, forbidden[:7]...)); len(found) > 0 {
			t.Fatalf("the audit event carries %q", found)
		}
		// The patient sees the send in their access history as Haven's own,
		// not as an unknown user's.
		h, err := e.svc.AccessHistory(e.as(p.patientA), p.chartA.PatientID)
		if err != nil {
			t.Fatal(err)
		}
		var shown []string
		for _, x := range h.Events {
			if x.Action == service.ActVisitRemind {
				shown = append(shown, x.ActorName)
			}
		}
		if len(shown) != 1 || shown[0] != service.ReminderActorName {
			t.Fatalf("the access history shows the reminder as %q", shown)
		}
	})
}

// TestTwoNodesSendEachReminderOnce: two Haven processes on one database
// run the sender at the same moment, twice each; every due visit's patient
// gets exactly one email and the log holds exactly one send per visit.
func TestTwoNodesSendEachReminderOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := e.seed("riverside", "m2")
		if err := e.svc.SetAvailability(e.as(p.clinician), reminderWeek); err != nil {
			t.Fatal(err)
		}
		var due []string
		for i, start := range []time.Time{thu(9, 0), thu(9, 30), thu(10, 0), thu(10, 30), thu(11, 0), thu(11, 30)} {
			who, chart := p.patientA, p.chartA
			if i%2 == 1 {
				who, chart = p.patientB, p.chartB
			}
			due = append(due, e.bookAt(who, chart.PatientID, p.clinician, start).ID)
		}
		box := e.reminderOutbox()
		nodes := []*service.Reminders{box.reminders(e.svc), box.reminders(e.secondNode())}
		now := e.clock.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		gate := make(chan struct{})
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				n, err := nodes[i%2].SendDueReminders(ctx, now)
				if err != nil {
					t.Errorf("node %d: %v", i%2, err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}()
		}
		close(gate)
		wg.Wait()
		if total != len(due) {
			t.Fatalf("the nodes sent %d reminders for %d visits", total, len(due))
		}
		if files := box.files(); len(files) != len(due) {
			t.Fatalf("the outbox holds %d messages for %d visits", len(files), len(due))
		}
		perVisit := map[string]int{}
		for _, ev := range e.remindEvents(p.id) {
			perVisit[ev.ResourceID]++
		}
		for _, id := range due {
			if perVisit[id] != 1 || !e.reminded(id) {
				t.Errorf("visit %s: %d sends recorded", id, perVisit[id])
			}
		}
	})
}

// TestRescheduleReArmsTheReminder: a visit whose reminder went out is
// moved; the new time gets its own reminder, once.
func TestRescheduleReArmsTheReminder(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := e.seed("riverside", "m3")
		if err := e.svc.SetAvailability(e.as(p.clinician), reminderWeek); err != nil {
			t.Fatal(err)
		}
		v := e.bookAt(p.patientA, p.chartA.PatientID, p.clinician, thu(9, 0))
		box := e.reminderOutbox()
		rem := box.reminders(e.svc)
		if n, err := rem.SendDueReminders(ctx, e.clock.Now()); err != nil || n != 1 {
			t.Fatalf("first reminder: %d %v", n, err)
		}
		if _, err := e.svc.RescheduleVisit(e.as(p.patientA), v.ID, thu(11, 0)); err != nil {
			t.Fatal(err)
		}
		if e.reminded(v.ID) {
			t.Fatal("the move kept the old reminder's mark")
		}
		for run, want := range []int{1, 0} {
			if n, err := rem.SendDueReminders(ctx, e.clock.Now()); err != nil || n != want {
				t.Fatalf("run %d after the move sent %d: %v", run, n, err)
			}
		}
		if files := box.files(); len(files) != 2 {
			t.Fatalf("the outbox holds %d messages", len(files))
		}
		// Moved beyond the lead (next Thursday), it waits for its time.
		if _, err := e.svc.RescheduleVisit(e.as(p.staff), v.ID, thu(9, 0).AddDate(0, 0, 7)); err != nil {
			t.Fatal(err)
		}
		if n, err := rem.SendDueReminders(ctx, e.clock.Now()); err != nil || n != 0 {
			t.Fatalf("a visit a week out was reminded: %d %v", n, err)
		}
		if n, err := rem.SendDueReminders(ctx, thu(9, 0).AddDate(0, 0, 6)); err != nil || n != 1 {
			t.Fatalf("the day before the new time: %d %v", n, err)
		}
	})
}

// TestPracticeSetsItsReminderLead: a practice that reminds two days ahead
// reaches a visit the default day would not; the lead is bounded.
func TestPracticeSetsItsReminderLead(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := e.seed("riverside", "m4")
		q := e.seed("lakeshore", "n4")
		for _, doc := range []haven.Actor{p.clinician, q.clinician} {
			if err := e.svc.SetAvailability(e.as(doc), reminderWeek); err != nil {
				t.Fatal(err)
			}
		}
		friday := thu(10, 0).AddDate(0, 0, 1) // 44 hours ahead
		mine := e.bookAt(p.patientA, p.chartA.PatientID, p.clinician, friday)
		theirs := e.bookAt(q.patientA, q.chartA.PatientID, q.clinician, friday)
		st := service.DefaultSettings()
		for _, bad := range []time.Duration{10 * time.Minute, 30 * 24 * time.Hour} {
			st.VisitReminderLead = service.Duration(bad)
			if err := e.svc.UpdateSettings(e.as(p.admin), st); haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("lead %s: %v", bad, err)
			}
		}
		st.VisitReminderLead = service.Duration(48 * time.Hour)
		if err := e.svc.UpdateSettings(e.as(p.admin), st); err != nil {
			t.Fatal(err)
		}
		box := e.reminderOutbox()
		if n, err := box.reminders(e.svc).SendDueReminders(ctx, e.clock.Now()); err != nil || n != 1 {
			t.Fatalf("sent %d: %v", n, err)
		}
		if !e.reminded(mine.ID) || e.reminded(theirs.ID) {
			t.Fatal("the lead of one practice decided another's reminders")
		}
	})
}

// TestReminderLoopSendsAndStopsWithItsContext: the loop serve runs sends a
// due reminder, keeps ticking without sending it again, and returns when
// its context ends.
func TestReminderLoopSendsAndStopsWithItsContext(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "m5")
		if err := e.svc.SetAvailability(e.as(p.clinician), reminderWeek); err != nil {
			t.Fatal(err)
		}
		e.bookAt(p.patientA, p.chartA.PatientID, p.clinician, thu(9, 0))
		mail := &outbox.Memory{}
		rem := service.NewReminders(e.svc, service.ReminderConfig{Outbox: mail, BaseURL: "https://clinic.example"})
		ctx, cancel := context.WithCancel(context.Background())
		reports := make(chan int, 100)
		done := make(chan struct{})
		go func() {
			defer close(done)
			rem.Run(ctx, time.Millisecond, func(n int, err error) {
				if err != nil {
					t.Errorf("run: %v", err)
				}
				reports <- n
			})
		}()
		if n := <-reports; n != 1 {
			t.Fatalf("the loop reported %d", n)
		}
		// More runs, these and the loop's own ticks, send nothing more.
		for range 3 {
			if _, err := rem.SendDueReminders(ctx, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		<-done
		if sent := mail.Sent(); len(sent) != 1 || sent[0].To != "pta@riverside.example" || sent[0].Subject != service.ReminderSubject {
			t.Fatalf("sent %+v", sent)
		}
		if len(reports) != 0 {
			t.Fatalf("the loop reported again: %d", <-reports)
		}
	})
}

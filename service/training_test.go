package service_test

import (
	"strings"
	"testing"
	"time"

	"haven"
	"haven/policy"
	"haven/service"
)

// passAll answers every quiz of every module rightly as actor a.
func (e *env) passAll(a haven.Actor) {
	e.t.Helper()
	for _, m := range haven.TrainingModules {
		answers := make([]int, len(m.Questions))
		for i, q := range m.Questions {
			answers[i] = q.Answer
		}
		r, err := e.svc.TakeTraining(e.as(a), m.ID, answers)
		if err != nil || !r.Passed {
			e.t.Fatalf("%s: %+v, %v", m.ID, r, err)
		}
	}
}

// requireTraining turns the practice's training requirement on.
func (e *env) requireTraining(p *practice, grace time.Duration) {
	e.t.Helper()
	ctx := e.as(p.admin)
	ps, err := e.svc.Settings(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	ps.TrainingRequired, ps.TrainingGrace = true, service.Duration(grace)
	if err := e.svc.UpdateSettings(ctx, ps); err != nil {
		e.t.Fatal(err)
	}
}

// TestTrainingQuizGradesAndRecords: a wrong quiz is graded and not
// recorded; a right one is, current for a year; a module that does not
// exist, or a quiz with answers missing, is refused; a patient may not
// take the workforce's training.
func TestTrainingQuizGradesAndRecords(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "tq1")
		ctx := e.as(p.clinician)
		m := haven.TrainingModules[0]
		wrong := make([]int, len(m.Questions))
		for i, q := range m.Questions {
			wrong[i] = (q.Answer + 1) % len(q.Choices)
		}
		r, err := e.svc.TakeTraining(ctx, m.ID, wrong)
		if err != nil || r.Passed || r.Score != 0 || len(r.Wrong) != len(m.Questions) {
			t.Fatalf("a wrong quiz: %+v, %v", r, err)
		}
		st, err := e.svc.MyTraining(ctx)
		if err != nil || st.Modules[0].State != service.TrainingNever {
			t.Fatalf("a failed quiz counted: %+v, %v", st, err)
		}
		if _, err := e.svc.TakeTraining(ctx, m.ID, []int{m.Questions[0].Answer}); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("half a quiz: %v", err)
		}
		if _, err := e.svc.TakeTraining(ctx, "nonesuch", nil); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("unknown module: %v", err)
		}
		if _, err := e.svc.TakeTraining(e.as(p.patientA), m.ID, wrong); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("a patient took workforce training: %v", err)
		}
		e.passAll(p.clinician)
		st, err = e.svc.MyTraining(ctx)
		if err != nil || st.State != service.TrainingCurrent {
			t.Fatalf("after passing: %+v, %v", st, err)
		}
		for _, ms := range st.Modules {
			if ms.State != service.TrainingCurrent || !ms.Expires.Equal(ms.Completed.Add(haven.TrainingValidity)) {
				t.Fatalf("module %s: %+v", ms.Module.ID, ms)
			}
		}
		// Eleven months on, it is due; past a year, overdue.
		e.clock.Advance(340 * 24 * time.Hour)
		if st, _ = e.svc.MyTraining(ctx); st.State != service.TrainingDue {
			t.Fatalf("eleven months on: %s", st.State)
		}
		e.clock.Advance(30 * 24 * time.Hour)
		if st, _ = e.svc.MyTraining(ctx); st.State != service.TrainingOverdue || st.Blocked {
			t.Fatalf("a year on, not required: %s blocked=%v", st.State, st.Blocked)
		}
	})
}

// TestTrainingReportNamesWhoIsDue: the administrator and the compliance
// officer see every active workforce member by name, overdue first; the
// clinician and patients may not see it, nor another practice's people.
func TestTrainingReportNamesWhoIsDue(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "tr1")
		other := e.seed("hillside", "tr2")
		e.passAll(p.clinician)
		for _, a := range []haven.Actor{p.admin, p.compliance} {
			rows, err := e.svc.TrainingReport(e.as(a))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 5 {
				t.Fatalf("%d rows, want the five workforce members", len(rows))
			}
			last := rows[len(rows)-1]
			if last.UserID != p.clinician.UserID || last.State != service.TrainingCurrent || last.Name == "" {
				t.Fatalf("the trained clinician is not last and current: %+v", last)
			}
			for _, r := range rows[:4] {
				if r.State != service.TrainingOverdue || r.Name == "" {
					t.Fatalf("an untrained member: %+v", r)
				}
				if r.UserID == other.clinician.UserID || r.UserID == other.admin.UserID {
					t.Fatalf("another practice's member in the report")
				}
			}
		}
		for _, a := range []haven.Actor{p.clinician, p.staff, p.patientA} {
			if _, err := e.svc.TrainingReport(e.as(a)); haven.ErrorCode(err) != haven.EFORBIDDEN {
				t.Fatalf("%s read the training report: %v", a.Role, err)
			}
		}
	})
}

// TestTrainingGateRefusesAndRecovers: with training required, a clinician
// whose training lapsed past the grace period is refused the chart she
// could read before, with a message naming the training page and the
// refusal audited; within the grace period she still reads; once she
// passes the modules she reads again, at once, on a second node of the
// same database too (nothing about training is cached). Settings and
// training stay hers to reach while refused.
func TestTrainingGateRefusesAndRecovers(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "tg1")
		node2 := e.secondNode()
		read := func(svc *service.Service) error {
			_, err := svc.Chart(e.as(p.clinician), p.chartA.PatientID)
			return err
		}
		if err := read(e.svc); err != nil {
			t.Fatalf("before the rule: %v", err)
		}
		grace := 14 * 24 * time.Hour
		e.requireTraining(p, grace)
		// Never trained, just turned on: within the grace period.
		if err := read(e.svc); err != nil {
			t.Fatalf("within the grace period: %v", err)
		}
		if st, err := e.svc.MyTraining(e.as(p.clinician)); err != nil || st.State != service.TrainingDue || !st.Lapsed || st.Blocked ||
			!st.GraceEnds.Equal(e.clock.Now().Add(grace)) {
			t.Fatalf("her page within the grace period: %+v, %v", st, err)
		}
		e.clock.Advance(grace + time.Minute)
		for i, svc := range []*service.Service{e.svc, node2} {
			err := read(svc)
			if haven.ErrorCode(err) != haven.EFORBIDDEN || !strings.Contains(haven.ErrorMessage(err), policy.TrainingPage) {
				t.Fatalf("node %d: lapsed past grace, read gives %v", i+1, err)
			}
		}
		ev := e.lastEventOf(p.id, string(policy.ChartRead))
		if ev.Decision != haven.DecisionDeny || ev.Reason != string(policy.ReasonTrainingLapsed) || ev.ActorID != p.clinician.UserID {
			t.Fatalf("the refusal's event: %+v", ev)
		}
		// Others of the workforce are refused too; patients are not.
		if _, err := e.svc.Chart(e.as(p.staff), p.chartA.PatientID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("untrained staff read: %v", err)
		}
		if _, err := e.svc.Chart(e.as(p.patientA), p.chartA.PatientID); err != nil {
			t.Fatalf("the patient was refused her own chart: %v", err)
		}
		st, err := e.svc.MyTraining(e.as(p.clinician))
		if err != nil || !st.Blocked || st.State != service.TrainingOverdue {
			t.Fatalf("her own page while refused: %+v, %v", st, err)
		}
		// Passing on node 2 opens records on node 1 and node 2.
		e.svc, node2 = node2, e.svc
		e.passAll(p.clinician)
		e.svc, node2 = node2, e.svc
		for i, svc := range []*service.Service{e.svc, node2} {
			if err := read(svc); err != nil {
				t.Fatalf("node %d after training: %v", i+1, err)
			}
		}
		if ev := e.lastEventOf(p.id, string(policy.ChartRead)); ev.Decision != haven.DecisionAllow {
			t.Fatalf("after training: %+v", ev)
		}
		// A year later, lapsed again; within the grace, still allowed;
		// turning the rule off opens records whatever the training.
		e.clock.Advance(haven.TrainingValidity + grace/2)
		if err := read(e.svc); err != nil {
			t.Fatalf("lapsed within the grace: %v", err)
		}
		e.clock.Advance(grace)
		if err := read(node2); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("lapsed again past grace: %v", err)
		}
		ctx := e.as(p.admin)
		ps, _ := e.svc.Settings(ctx)
		ps.TrainingRequired = false
		if err := e.svc.UpdateSettings(ctx, ps); err != nil {
			t.Fatal(err)
		}
		if err := read(node2); err != nil {
			t.Fatalf("the rule off: %v", err)
		}
	})
}

// TestTrainingSettingsRange: the grace period is refused outside its
// range, and when the requirement was turned on is the service's, not the
// caller's, kept while it stays on.
func TestTrainingSettingsRange(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "ts1")
		ctx := e.as(p.admin)
		ps, _ := e.svc.Settings(ctx)
		ps.TrainingRequired = true
		for _, g := range []time.Duration{-time.Hour, service.MaxTrainingGrace + time.Hour} {
			ps.TrainingGrace = service.Duration(g)
			if err := e.svc.UpdateSettings(ctx, ps); haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("grace %s: %v", g, err)
			}
		}
		ps.TrainingGrace = service.Duration(7 * 24 * time.Hour)
		ps.TrainingRequiredSince = e.clock.Now().Add(1000 * time.Hour) // a caller's forgery
		if err := e.svc.UpdateSettings(ctx, ps); err != nil {
			t.Fatal(err)
		}
		got, _ := e.svc.Settings(ctx)
		if !got.TrainingRequiredSince.Equal(e.clock.Now().UTC()) {
			t.Fatalf("required since %v, want now %v", got.TrainingRequiredSince, e.clock.Now())
		}
		e.clock.Advance(time.Hour)
		got.TrainingRequiredSince = time.Time{}
		if err := e.svc.UpdateSettings(e.as(p.admin), got); err != nil {
			t.Fatal(err)
		}
		again, _ := e.svc.Settings(ctx)
		if !again.TrainingRequiredSince.Equal(e.clock.Now().Add(-time.Hour).UTC()) {
			t.Fatalf("required since moved to %v", again.TrainingRequiredSince)
		}
	})
}

// TestTrainingOfOthersInThreads: with training required, who may be given
// a thread is decided on each member's own training, not the asker's: the
// clinician is offered once she has passed, not before.
func TestTrainingOfOthersInThreads(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "tt1")
		tv := e.write(p.patientA, haven.AudienceCareTeam, "Subject", "Body")
		e.requireTraining(p, 0)
		e.passAll(p.staff)
		offered := func() bool {
			t.Helper()
			ms, err := e.svc.Assignees(e.as(p.staff), tv.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.UserID == p.clinician.UserID {
					return true
				}
			}
			return false
		}
		if offered() {
			t.Fatal("an untrained clinician is offered the thread")
		}
		e.passAll(p.clinician)
		if !offered() {
			t.Fatal("the trained clinician is not offered the thread")
		}
	})
}

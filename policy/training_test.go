package policy_test

import (
	"strings"
	"testing"
	"time"

	"haven"
	"haven/policy"
)

// TestTrainingGate: when the practice requires current security training,
// a workforce member whose training lapsed more than the grace period ago
// is refused every PHI action (and nothing else); within the grace period,
// with current training, or when the practice does not require it, the
// usual rules decide. Training loaded for someone else fails closed.
func TestTrainingGate(t *testing.T) {
	const me = "clinician-1"
	a := haven.Actor{UserID: me, PracticeID: practiceA, Role: haven.RoleClinician, MFA: true, AuthTime: now}
	chart := policy.Resource{Kind: policy.KindChart, ID: "p1", PracticeID: practiceA, PatientID: "p1"}
	facts := func(required bool, grace time.Duration, until time.Time, who string) policy.Facts {
		return policy.Facts{Now: now,
			Practice: policy.PracticeFacts{PracticeID: practiceA, TrainingRequired: required, TrainingGrace: grace},
			Patient:  policy.PatientFacts{PracticeID: practiceA, PatientID: "p1", CareTeam: []string{me}},
			Training: policy.TrainingFacts{UserID: who, CurrentUntil: until}}
	}
	day := 24 * time.Hour
	for _, tc := range []struct {
		name string
		f    policy.Facts
		want policy.Reason
	}{
		{"not required, lapsed long ago", facts(false, 0, now.Add(-400*day), me), policy.ReasonCareTeam},
		{"required, current", facts(true, 0, now.Add(day), me), policy.ReasonCareTeam},
		{"required, lapsed, within grace", facts(true, 14*day, now.Add(-13*day), me), policy.ReasonCareTeam},
		{"required, lapsed past grace", facts(true, 14*day, now.Add(-15*day), me), policy.ReasonTrainingLapsed},
		{"required, lapsed at this instant, no grace", facts(true, 0, now, me), policy.ReasonTrainingLapsed},
		{"required, never trained (zero time)", facts(true, 14*day, time.Time{}, me), policy.ReasonTrainingLapsed},
		{"required, negative grace counts as none", facts(true, -day, now.Add(-time.Minute), me), policy.ReasonTrainingLapsed},
		{"required, someone else's training", facts(true, 0, now.Add(day), "clinician-2"), policy.ReasonFactsMissing},
	} {
		d := policy.Decide(a, policy.ChartRead, chart, tc.f)
		if d.Reason != tc.want || d.Allow != (tc.want == policy.ReasonCareTeam) {
			t.Errorf("%s: got %+v, want %s", tc.name, d, tc.want)
		}
		if tc.want == policy.ReasonTrainingLapsed {
			if err := d.Err(); haven.ErrorCode(err) != haven.EFORBIDDEN || !strings.Contains(haven.ErrorMessage(err), policy.TrainingPage) {
				t.Errorf("%s: refusal %v does not point to %s", tc.name, err, policy.TrainingPage)
			}
		}
	}

	// Not PHI: taking the training itself, and the admin's report, stay
	// open to a member whose training lapsed (or they could never catch up).
	lapsed := facts(true, 0, now.Add(-400*day), me)
	if d := policy.Decide(a, policy.TrainingTake, policy.Resource{Kind: policy.KindTraining, PracticeID: practiceA}, lapsed); !d.Allow {
		t.Errorf("training.take refused to a lapsed member: %+v", d)
	}
	// A patient is never gated by the workforce's training.
	p := haven.Actor{UserID: "p1", PracticeID: practiceA, Role: haven.RolePatient, MFA: true, AuthTime: now}
	pf := lapsed
	pf.Training = policy.TrainingFacts{}
	if d := policy.Decide(p, policy.ChartRead, chart, pf); !d.Allow {
		t.Errorf("patient refused her own chart under the workforce's training rule: %+v", d)
	}
	// Another practice is still refused as such, whatever the training.
	other := chart
	other.PracticeID = practiceB
	if d := policy.Decide(a, policy.ChartRead, other, lapsed); d.Reason != policy.ReasonOtherPractice {
		t.Errorf("other practice: %+v", d)
	}
}

package policy_test

import (
	"fmt"
	"testing"
	"time"

	"haven"
	"haven/policy"
)

// bareCall has Decide's signature and does nothing: the same-run baseline
// that prices passing the arguments, so Decide's own cost can be read as a
// ratio.
//
//go:noinline
func bareCall(a haven.Actor, act policy.Action, r policy.Resource, f policy.Facts) policy.Decision {
	return policy.Decision{Reason: policy.ReasonDenyDefault}
}

var sink policy.Decision

func BenchmarkDecide(b *testing.B) {
	clinician := member(drDiaz, haven.RoleClinician)
	note := on(policy.NoteRead, alice)

	// A busy patient: a large care team, a year of visits, old grants.
	busy := about(alice)
	for i := range 30 {
		busy.Patient.CareTeam = append(busy.Patient.CareTeam, fmt.Sprintf("clinician-%02d", i))
	}
	for i := range 50 {
		start := now.Add(-time.Duration(i) * 7 * 24 * time.Hour)
		busy.Patient.Visits = append(busy.Patient.Visits, haven.Visit{ClinicianID: fmt.Sprintf("clinician-%02d", i%30), Start: start, End: start.Add(time.Hour)})
	}
	for i := range 5 {
		busy.Patient.BreakGlass = append(busy.Patient.BreakGlass, haven.BreakGlassGrant{UserID: fmt.Sprintf("clinician-%02d", i), Start: now.Add(-48 * time.Hour), Expires: now.Add(-47 * time.Hour)})
	}
	busy.Patient.Restrictions.BarredUsers = []string{"clinician-99"}
	emergency := busy
	emergency.Patient.BreakGlass = append(append([]haven.BreakGlassGrant(nil), busy.Patient.BreakGlass...),
		haven.BreakGlassGrant{UserID: drDiaz, Start: now.Add(-time.Minute), Expires: now.Add(time.Hour)})

	cases := []struct {
		name string
		fn   func(haven.Actor, policy.Action, policy.Resource, policy.Facts) policy.Decision
		a    haven.Actor
		act  policy.Action
		r    policy.Resource
		f    policy.Facts
	}{
		{"baseline_bare_call", bareCall, clinician, policy.NoteRead, note, onCareTeam(about(alice), drDiaz)},
		{"other_practice_deny", policy.Decide, clinician, policy.NoteRead, policy.Resource{Kind: policy.KindNote, PracticeID: practiceB, PatientID: alice}, onCareTeam(about(alice), drDiaz)},
		{"care_team_allow", policy.Decide, clinician, policy.NoteRead, note, onCareTeam(about(alice), drDiaz)},
		{"staff_practice_wide_allow", policy.Decide, member(frontDesk, haven.RoleStaff), policy.VisitBook, on(policy.VisitBook, alice), about(alice)},
		{"patient_self_allow", policy.Decide, member(alice, haven.RolePatient), policy.NoteRead, note, about(alice)},
		{"busy_patient_not_on_team_deny", policy.Decide, clinician, policy.NoteRead, note, busy},
		{"busy_patient_breakglass_allow", policy.Decide, clinician, policy.NoteRead, note, emergency},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = c.fn(c.a, c.act, c.r, c.f)
			}
		})
	}
}

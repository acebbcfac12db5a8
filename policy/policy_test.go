package policy_test

import (
	"testing"
	"time"

	"haven"
	"haven/policy"
)

var now = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const (
	practiceA = "practice-a"
	practiceB = "practice-b"
	alice     = "patient-alice" // a patient of practice A
	bob       = "patient-bob"   // another patient of practice A
	drCarter  = "clinician-carter"
	drDiaz    = "clinician-diaz"
	frontDesk = "staff-evans"
	admin     = "admin-fischer"
	officer   = "compliance-garcia"
	operator  = "operator-hall"
)

// member returns a fully authenticated actor: MFA passed, step-up a minute ago.
func member(id string, role haven.Role) haven.Actor {
	p := practiceA
	if role == haven.RolePlatformOperator {
		p = ""
	}
	return haven.Actor{UserID: id, PracticeID: p, Role: role, MFA: true, AuthTime: now.Add(-time.Minute)}
}

// on returns a resource of act's kind in practice A concerning patient.
func on(act policy.Action, patient string) policy.Resource {
	return policy.Resource{Kind: act.Sensitivity().Kind, ID: "res-1", PracticeID: practiceA, PatientID: patient}
}

// about returns facts for a request on patient in practice A, with the
// patient's relationships and restrictions loaded (empty until the test
// fills them).
func about(patient string) policy.Facts {
	return policy.Facts{
		Now:      now,
		Practice: policy.PracticeFacts{PracticeID: practiceA},
		Patient:  policy.PatientFacts{PracticeID: practiceA, PatientID: patient},
	}
}

func onCareTeam(f policy.Facts, ids ...string) policy.Facts {
	f.Patient.CareTeam = append(f.Patient.CareTeam, ids...)
	return f
}

func mustAllow(t *testing.T, d policy.Decision, reason policy.Reason, purpose policy.Purpose) {
	t.Helper()
	if !d.Allow || d.StepUp || d.Reason != reason || d.Purpose != purpose {
		t.Fatalf("got %+v, want allow with reason %q and purpose %q", d, reason, purpose)
	}
	if err := d.Err(); err != nil {
		t.Fatalf("allowed decision has error %v", err)
	}
}

func mustDeny(t *testing.T, d policy.Decision, reason policy.Reason) {
	t.Helper()
	if d.Allow || d.StepUp || d.Reason != reason {
		t.Fatalf("got %+v, want deny with reason %q", d, reason)
	}
	if d.Err() == nil {
		t.Fatal("denied decision has no error")
	}
}

// patientActions are the actions a patient may take on their own record.
func patientActions() []policy.Action {
	var out []policy.Action
	for _, act := range policy.Actions() {
		if policy.Permits(haven.RolePatient, act) {
			out = append(out, act)
		}
	}
	return out
}

func TestPatientReadsOwnChart(t *testing.T) {
	d := policy.Decide(member(alice, haven.RolePatient), policy.ChartRead, on(policy.ChartRead, alice), about(alice))
	mustAllow(t, d, policy.ReasonSelf, policy.PurposePatientRequest)
}

func TestPatientCannotReadAnotherPatientsChart(t *testing.T) {
	// Bob changes the id in the URL to Alice's, and the service even
	// (wrongly) loaded facts that put Bob on Alice's care team.
	bobActor := member(bob, haven.RolePatient)
	f := onCareTeam(about(alice), bob)
	d := policy.Decide(bobActor, policy.ChartRead, on(policy.ChartRead, alice), f)
	mustDeny(t, d, policy.ReasonOtherPatient)
	if haven.ErrorCode(d.Err()) != haven.ENOTFOUND {
		t.Fatalf("another patient's chart answers %v; it must look like nothing is there", d.Err())
	}
	for _, act := range patientActions() {
		if d := policy.Decide(bobActor, act, on(act, alice), f); d.Allow || d.StepUp {
			t.Errorf("%s on another patient's record: %+v", act, d)
		}
	}
}

func TestPatientCannotTakeWorkforceActionsOnOwnRecord(t *testing.T) {
	a := member(alice, haven.RolePatient)
	for _, act := range []policy.Action{policy.NoteWrite, policy.PrescriptionWrite, policy.LabOrder, policy.VisitAdmit, policy.CareTeamManage, policy.ChartWrite} {
		mustDeny(t, policy.Decide(a, act, on(act, alice), about(alice)), policy.ReasonRoleNotPermitted)
	}
}

func TestPracticeCanRequireMFAFromPatients(t *testing.T) {
	a := member(alice, haven.RolePatient)
	a.MFA = false
	f := about(alice)
	mustAllow(t, policy.Decide(a, policy.NoteRead, on(policy.NoteRead, alice), f), policy.ReasonSelf, policy.PurposePatientRequest)
	f.Practice.PatientsRequireMFA = true
	mustDeny(t, policy.Decide(a, policy.NoteRead, on(policy.NoteRead, alice), f), policy.ReasonMFARequired)
}

func TestClinicianOnCareTeamReadsNotes(t *testing.T) {
	d := policy.Decide(member(drCarter, haven.RoleClinician), policy.NoteRead, on(policy.NoteRead, alice), onCareTeam(about(alice), drCarter))
	mustAllow(t, d, policy.ReasonCareTeam, policy.PurposeTreatment)
}

func TestClinicianWithoutRelationshipCannotBrowseCharts(t *testing.T) {
	d := policy.Decide(member(drDiaz, haven.RoleClinician), policy.ChartRead, on(policy.ChartRead, alice), onCareTeam(about(alice), drCarter))
	mustDeny(t, d, policy.ReasonNotOnCareTeam)
}

func TestAdminSeesNoPHIByDefault(t *testing.T) {
	// Even placed on the care team, holding a break-glass grant and a
	// booked visit, the admin reaches only the care-team roster they
	// manage, never clinical content.
	adminActor := member(admin, haven.RolePracticeAdmin)
	f := onCareTeam(about(alice), admin)
	f.Patient.BreakGlass = []haven.BreakGlassGrant{{UserID: admin, Start: now.Add(-time.Minute), Expires: now.Add(time.Hour)}}
	f.Patient.Visits = []haven.Visit{{ClinicianID: admin, Start: now, End: now.Add(time.Hour)}}
	f.Practice.ClinicalAccess = []string{admin}
	roster := map[policy.Action]bool{policy.CareTeamRead: true, policy.CareTeamManage: true}
	for _, act := range policy.Actions() {
		if !act.Sensitivity().PHI || roster[act] {
			continue
		}
		d := policy.Decide(adminActor, act, on(act, alice), f)
		if d.Allow || d.StepUp {
			t.Errorf("admin may %s: %+v", act, d)
		}
	}
	mustAllow(t, policy.Decide(adminActor, policy.CareTeamManage, on(policy.CareTeamManage, alice), f), policy.ReasonRolePermitted, policy.PurposeOperations)
}

func TestComplianceOfficerSeesNoChartContent(t *testing.T) {
	o := member(officer, haven.RoleComplianceOfficer)
	f := onCareTeam(about(alice), officer)
	for _, act := range policy.Actions() {
		if d := policy.Decide(o, act, on(act, alice), f); act.Sensitivity().PHI && (d.Allow || d.StepUp) {
			t.Errorf("compliance officer may %s: %+v", act, d)
		}
	}
	r := policy.Resource{Kind: policy.KindBreakGlass, ID: "bg-1", PracticeID: practiceA, PatientID: alice}
	mustAllow(t, policy.Decide(o, policy.BreakGlassReview, r, f), policy.ReasonRolePermitted, policy.PurposeOperations)
}

func TestOperatorSeesNoPHIAtAll(t *testing.T) {
	op := member(operator, haven.RolePlatformOperator)
	for _, act := range policy.Actions() {
		// Inside a practice: nothing, not even the operator's own tools.
		f := onCareTeam(about(alice), operator)
		if d := policy.Decide(op, act, on(act, alice), f); d.Allow || d.StepUp || d.Reason != policy.ReasonOtherPractice {
			t.Errorf("operator %s inside practice A: %+v", act, d)
		}
		// On the platform: no PHI action, whatever the facts claim.
		r := policy.Resource{Kind: act.Sensitivity().Kind, ID: "res-1", PatientID: alice}
		pf := policy.Facts{Now: now, Patient: policy.PatientFacts{PatientID: alice, CareTeam: []string{operator}}}
		if d := policy.Decide(op, act, r, pf); act.Sensitivity().PHI && (d.Allow || d.StepUp) {
			t.Errorf("operator may %s on the platform: %+v", act, d)
		}
	}
	r := policy.Resource{Kind: policy.KindKey, ID: "root"}
	mustAllow(t, policy.Decide(op, policy.KeysManage, r, policy.Facts{Now: now}), policy.ReasonRolePermitted, policy.PurposeOperations)
}

func TestPracticeMembersCannotTouchPlatformResources(t *testing.T) {
	// A practice admin is not the platform's admin: the root key and the
	// practice registry have no practice, so they are another tenant.
	a := member(admin, haven.RolePracticeAdmin)
	f := policy.Facts{Now: now, Practice: policy.PracticeFacts{PracticeID: practiceA}}
	mustDeny(t, policy.Decide(a, policy.KeysManage, policy.Resource{Kind: policy.KindKey, ID: "root"}, f), policy.ReasonOtherPractice)
	mustDeny(t, policy.Decide(a, policy.PracticeProvision, policy.Resource{Kind: policy.KindPractice, ID: "new"}, f), policy.ReasonOtherPractice)
}

func TestActorWithoutPracticeCannotPassAsPlatform(t *testing.T) {
	// A clinician whose practice was lost on the way (an empty string)
	// would match the platform's resources; the actor's shape is checked.
	c := member(drCarter, haven.RoleClinician)
	c.PracticeID = ""
	r := policy.Resource{Kind: policy.KindAudit, ID: "platform-log"}
	mustDeny(t, policy.Decide(c, policy.AuditSearch, r, policy.Facts{Now: now}), policy.ReasonInvalidActor)
}

func TestInvalidActorsDenied(t *testing.T) {
	f := onCareTeam(about(alice), drCarter)
	r := on(policy.ChartRead, alice)
	for name, a := range map[string]haven.Actor{
		"no user":                {PracticeID: practiceA, Role: haven.RoleClinician, MFA: true, AuthTime: now},
		"unknown role":           {UserID: drCarter, PracticeID: practiceA, Role: "superuser", MFA: true, AuthTime: now},
		"no role":                {UserID: drCarter, PracticeID: practiceA, MFA: true, AuthTime: now},
		"operator with practice": {UserID: operator, PracticeID: practiceA, Role: haven.RolePlatformOperator, MFA: true, AuthTime: now},
	} {
		t.Run(name, func(t *testing.T) { mustDeny(t, policy.Decide(a, policy.ChartRead, r, f), policy.ReasonInvalidActor) })
	}
}

func TestUnknownActionDenied(t *testing.T) {
	c := member(drCarter, haven.RoleClinician)
	for _, act := range []policy.Action{"", "chart.*", "chart.read ", "CHART.READ", "admin"} {
		mustDeny(t, policy.Decide(c, act, on(policy.ChartRead, alice), onCareTeam(about(alice), drCarter)), policy.ReasonDenyDefault)
	}
}

func TestResourceOfWrongKindDenied(t *testing.T) {
	// Authorizing a note read must not authorize handing out a prescription.
	c := member(drCarter, haven.RoleClinician)
	r := on(policy.PrescriptionRead, alice)
	mustDeny(t, policy.Decide(c, policy.NoteRead, r, onCareTeam(about(alice), drCarter)), policy.ReasonInvalidResource)
}

func TestPatientActionWithoutPatientDenied(t *testing.T) {
	c := member(drCarter, haven.RoleClinician)
	mustDeny(t, policy.Decide(c, policy.NoteRead, on(policy.NoteRead, ""), onCareTeam(about(""), drCarter)), policy.ReasonInvalidResource)
}

func TestForgedCareTeamFactCannotCrossPractices(t *testing.T) {
	// A clinician of practice A asks for a chart of practice B, and every
	// fact (forged or mistaken) claims the clinician belongs there.
	c := member(drCarter, haven.RoleClinician)
	r := policy.Resource{Kind: policy.KindChart, ID: "chart-b", PracticeID: practiceB, PatientID: alice}
	grant := []haven.BreakGlassGrant{{UserID: drCarter, Start: now.Add(-time.Minute), Expires: now.Add(time.Hour)}}
	for _, factPractice := range []string{practiceA, practiceB} {
		f := policy.Facts{
			Now:      now,
			Practice: policy.PracticeFacts{PracticeID: factPractice, ClinicalAccess: []string{drCarter}},
			Patient: policy.PatientFacts{
				PracticeID: factPractice, PatientID: alice, CareTeam: []string{drCarter},
				Visits:     []haven.Visit{{ClinicianID: drCarter, Start: now, End: now.Add(time.Hour)}},
				BreakGlass: grant,
			},
		}
		for _, act := range policy.Actions() {
			r.Kind = act.Sensitivity().Kind
			d := policy.Decide(c, act, r, f)
			if d.Allow || d.StepUp || d.Reason != policy.ReasonOtherPractice {
				t.Errorf("facts of %s, %s: %+v", factPractice, act, d)
			}
		}
	}
}

func TestFactsAboutAnotherPatientProveNothing(t *testing.T) {
	// Facts loaded (or cached) for Bob must not open Alice's record.
	c := member(drCarter, haven.RoleClinician)
	mustDeny(t, policy.Decide(c, policy.NoteRead, on(policy.NoteRead, alice), onCareTeam(about(bob), drCarter)), policy.ReasonFactsMissing)
}

func TestUnloadedRestrictionsFailClosed(t *testing.T) {
	// A service that forgot to load the patient's facts gets a denial,
	// not a pass that skips the patient's restrictions.
	s := member(frontDesk, haven.RoleStaff)
	f := policy.Facts{Now: now, Practice: policy.PracticeFacts{PracticeID: practiceA}}
	mustDeny(t, policy.Decide(s, policy.MessageRead, on(policy.MessageRead, alice), f), policy.ReasonFactsMissing)
}

func TestUnloadedPracticeSettingsFailClosed(t *testing.T) {
	// Without the practice's settings Decide cannot know whether patients
	// must use MFA or how short the step-up window is.
	f := about(alice)
	f.Practice = policy.PracticeFacts{}
	mustDeny(t, policy.Decide(member(alice, haven.RolePatient), policy.NoteRead, on(policy.NoteRead, alice), f), policy.ReasonFactsMissing)
}

func TestMissingClockDenies(t *testing.T) {
	f := onCareTeam(about(alice), drCarter)
	f.Now = time.Time{}
	mustDeny(t, policy.Decide(member(drCarter, haven.RoleClinician), policy.NoteRead, on(policy.NoteRead, alice), f), policy.ReasonFactsMissing)
}

func TestWorkforceWithoutMFADenied(t *testing.T) {
	for _, role := range haven.Roles {
		if !role.Workforce() {
			continue
		}
		a := member("user-"+string(role), role)
		a.MFA = false
		f := onCareTeam(about(alice), a.UserID)
		f.Practice.PracticeID = a.PracticeID
		for _, act := range policy.Actions() {
			r := on(act, alice)
			r.PracticeID = a.PracticeID
			if d := policy.Decide(a, act, r, f); d.Allow || d.StepUp || d.Reason != policy.ReasonMFARequired {
				t.Errorf("%s without MFA, %s: %+v", role, act, d)
			}
		}
	}
}

func TestPrescribingNeedsRecentStepUp(t *testing.T) {
	c := member(drCarter, haven.RoleClinician)
	r := on(policy.PrescriptionWrite, alice)
	f := onCareTeam(about(alice), drCarter)

	c.AuthTime = now.Add(-policy.DefaultStepUpMaxAge)
	mustAllow(t, policy.Decide(c, policy.PrescriptionWrite, r, f), policy.ReasonCareTeam, policy.PurposeTreatment)

	for name, auth := range map[string]time.Time{
		"stale":            now.Add(-policy.DefaultStepUpMaxAge - time.Second),
		"this morning":     now.Add(-3 * time.Hour),
		"never":            {},
		"far in future":    now.Add(policy.ClockSkew + time.Second),
		"year zero plus 1": time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC),
	} {
		t.Run(name, func(t *testing.T) {
			c.AuthTime = auth
			d := policy.Decide(c, policy.PrescriptionWrite, r, f)
			if d.Allow || !d.StepUp || d.Reason != policy.ReasonStepUpRequired || d.Purpose != policy.PurposeTreatment {
				t.Fatalf("got %+v, want a step-up request", d)
			}
			if haven.ErrorCode(d.Err()) != haven.ESTEPUP {
				t.Fatalf("step-up decision maps to %v", d.Err())
			}
		})
	}
}

func TestPracticeCanShortenButNotLengthenStepUpWindow(t *testing.T) {
	c := member(drCarter, haven.RoleClinician)
	c.AuthTime = now.Add(-2 * time.Minute)
	r := on(policy.PrescriptionWrite, alice)
	f := onCareTeam(about(alice), drCarter)

	f.Practice.StepUpMaxAge = time.Minute
	if d := policy.Decide(c, policy.PrescriptionWrite, r, f); !d.StepUp {
		t.Fatalf("a practice's one-minute window was not honoured: %+v", d)
	}
	c.AuthTime = now.Add(-time.Hour)
	f.Practice.StepUpMaxAge = 24 * time.Hour
	if d := policy.Decide(c, policy.PrescriptionWrite, r, f); !d.StepUp {
		t.Fatalf("a practice widened the step-up window to a day: %+v", d)
	}
}

func TestStepUpIsNotOfferedWhenTheAnswerIsNo(t *testing.T) {
	// Asking for a fresh login first, then refusing, would tell an
	// attacker with a stale session which records exist behind it.
	c := member(drDiaz, haven.RoleClinician)
	c.AuthTime = now.Add(-time.Hour)
	d := policy.Decide(c, policy.PrescriptionWrite, on(policy.PrescriptionWrite, alice), onCareTeam(about(alice), drCarter))
	mustDeny(t, d, policy.ReasonNotOnCareTeam)
}

func TestExportNeedsStepUpEvenForThePatient(t *testing.T) {
	a := member(alice, haven.RolePatient)
	a.AuthTime = now.Add(-time.Hour)
	d := policy.Decide(a, policy.ExportPatient, on(policy.ExportPatient, alice), about(alice))
	if d.Allow || !d.StepUp || d.Purpose != policy.PurposePatientRequest {
		t.Fatalf("got %+v, want a step-up request", d)
	}
}

func TestActiveBreakGlassGrantOpensReadsForReview(t *testing.T) {
	c := member(drDiaz, haven.RoleClinician)
	f := about(alice)
	f.Patient.BreakGlass = []haven.BreakGlassGrant{{UserID: drDiaz, Start: now.Add(-10 * time.Minute), Expires: now.Add(time.Hour)}}
	mustAllow(t, policy.Decide(c, policy.LabRead, on(policy.LabRead, alice), f), policy.ReasonBreakGlass, policy.PurposeBreakGlass)
	mustAllow(t, policy.Decide(c, policy.NoteWrite, on(policy.NoteWrite, alice), f), policy.ReasonBreakGlass, policy.PurposeBreakGlass)
	// Emergency access is for reading and documenting, not prescribing.
	mustDeny(t, policy.Decide(c, policy.PrescriptionWrite, on(policy.PrescriptionWrite, alice), f), policy.ReasonNotOnCareTeam)
}

func TestExpiredBreakGlassGrantDenies(t *testing.T) {
	c := member(drDiaz, haven.RoleClinician)
	r := on(policy.ChartRead, alice)
	cases := map[string]haven.BreakGlassGrant{
		"expired an hour ago":  {UserID: drDiaz, Start: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)},
		"expires right now":    {UserID: drDiaz, Start: now.Add(-time.Hour), Expires: now},
		"longer than the cap":  {UserID: drDiaz, Start: now.Add(-policy.BreakGlassMaxDuration), Expires: now.Add(365 * 24 * time.Hour)},
		"expiry before start":  {UserID: drDiaz, Start: now.Add(-time.Minute), Expires: now.Add(-2 * time.Minute)},
		"expiry never written": {UserID: drDiaz, Start: now.Add(-time.Minute)},
	}
	for name, g := range cases {
		t.Run(name, func(t *testing.T) {
			f := about(alice)
			f.Patient.BreakGlass = []haven.BreakGlassGrant{g}
			mustDeny(t, policy.Decide(c, policy.ChartRead, r, f), policy.ReasonBreakGlassExpired)
		})
	}
}

func TestBreakGlassGrantOfSomeoneElseOrNotYetStartedDenies(t *testing.T) {
	c := member(drDiaz, haven.RoleClinician)
	r := on(policy.ChartRead, alice)
	for name, g := range map[string]haven.BreakGlassGrant{
		"another clinician's": {UserID: drCarter, Start: now.Add(-time.Minute), Expires: now.Add(time.Hour)},
		"not yet started":     {UserID: drDiaz, Start: now.Add(time.Minute), Expires: now.Add(time.Hour)},
		"without a start":     {UserID: drDiaz, Expires: now.Add(time.Hour)},
	} {
		t.Run(name, func(t *testing.T) {
			f := about(alice)
			f.Patient.BreakGlass = []haven.BreakGlassGrant{g}
			mustDeny(t, policy.Decide(c, policy.ChartRead, r, f), policy.ReasonNotOnCareTeam)
		})
	}
}

func TestBreakGlassIsForCliniciansOnly(t *testing.T) {
	s := member(frontDesk, haven.RoleStaff)
	f := about(alice)
	f.Practice.ClinicalAccess = []string{frontDesk}
	f.Patient.BreakGlass = []haven.BreakGlassGrant{{UserID: frontDesk, Start: now.Add(-time.Minute), Expires: now.Add(time.Hour)}}
	mustDeny(t, policy.Decide(s, policy.NoteRead, on(policy.NoteRead, alice), f), policy.ReasonNotOnCareTeam)
}

func TestCareTeamIsPreferredOverBreakGlass(t *testing.T) {
	// A clinician on the team who also holds a grant is doing ordinary
	// treatment, and must not flood the break-glass review queue.
	f := onCareTeam(about(alice), drCarter)
	f.Patient.BreakGlass = []haven.BreakGlassGrant{{UserID: drCarter, Start: now.Add(-time.Minute), Expires: now.Add(time.Hour)}}
	mustAllow(t, policy.Decide(member(drCarter, haven.RoleClinician), policy.NoteRead, on(policy.NoteRead, alice), f), policy.ReasonCareTeam, policy.PurposeTreatment)
}

func TestBreakGlassRequestNeedsStepUp(t *testing.T) {
	c := member(drDiaz, haven.RoleClinician)
	r := policy.Resource{Kind: policy.KindBreakGlass, PracticeID: practiceA, PatientID: alice}
	mustAllow(t, policy.Decide(c, policy.BreakGlassRequest, r, about(alice)), policy.ReasonRolePermitted, policy.PurposeBreakGlass)
	c.AuthTime = now.Add(-time.Hour)
	if d := policy.Decide(c, policy.BreakGlassRequest, r, about(alice)); !d.StepUp || d.Allow {
		t.Fatalf("stale break-glass request: %+v", d)
	}
}

func TestBarredClinicianIsDeniedEvenWithBreakGlass(t *testing.T) {
	c := member(drCarter, haven.RoleClinician)
	f := onCareTeam(about(alice), drCarter)
	f.Patient.Visits = []haven.Visit{{ClinicianID: drCarter, Start: now, End: now.Add(time.Hour)}}
	f.Patient.BreakGlass = []haven.BreakGlassGrant{{UserID: drCarter, Start: now.Add(-time.Minute), Expires: now.Add(time.Hour)}}
	f.Patient.Restrictions.BarredUsers = []string{drCarter}
	for _, act := range policy.Actions() {
		if !act.Sensitivity().PatientScoped {
			continue
		}
		if d := policy.Decide(c, act, on(act, alice), f); d.Allow || d.StepUp {
			t.Errorf("barred clinician may %s: %+v", act, d)
		}
	}
	mustDeny(t, policy.Decide(c, policy.BreakGlassRequest, on(policy.BreakGlassRequest, alice), f), policy.ReasonPatientRestriction)
	// The bar is on one person, not on the patient's care.
	mustAllow(t, policy.Decide(member(drDiaz, haven.RoleClinician), policy.NoteRead, on(policy.NoteRead, alice), onCareTeam(f, drDiaz)), policy.ReasonCareTeam, policy.PurposeTreatment)
}

func TestPatientCanKeepStaffOutOfMessages(t *testing.T) {
	f := onCareTeam(about(alice), drCarter)
	s := member(frontDesk, haven.RoleStaff)
	mustAllow(t, policy.Decide(s, policy.MessageRead, on(policy.MessageRead, alice), f), policy.ReasonRolePermitted, policy.PurposeOperations)

	f.Patient.Restrictions.StaffFromMessages = true
	mustDeny(t, policy.Decide(s, policy.MessageRead, on(policy.MessageRead, alice), f), policy.ReasonPatientRestriction)
	mustDeny(t, policy.Decide(s, policy.MessageSend, on(policy.MessageSend, alice), f), policy.ReasonPatientRestriction)
	// Scheduling still works, and the clinician still reads the messages.
	mustAllow(t, policy.Decide(s, policy.VisitBook, on(policy.VisitBook, alice), f), policy.ReasonRolePermitted, policy.PurposeOperations)
	mustAllow(t, policy.Decide(member(drCarter, haven.RoleClinician), policy.MessageRead, on(policy.MessageRead, alice), f), policy.ReasonCareTeam, policy.PurposeTreatment)
}

func TestStaffSeeNoClinicalContentWithoutGrant(t *testing.T) {
	s := member(frontDesk, haven.RoleStaff)
	f := onCareTeam(about(alice), frontDesk)
	clinical := []policy.Action{policy.NoteRead, policy.LabRead, policy.PrescriptionRead, policy.FileRead, policy.FileUpload}
	for _, act := range clinical {
		mustDeny(t, policy.Decide(s, act, on(act, alice), f), policy.ReasonNoClinicalGrant)
	}
	f.Practice.ClinicalAccess = []string{frontDesk}
	for _, act := range clinical {
		mustAllow(t, policy.Decide(s, act, on(act, alice), f), policy.ReasonCareTeam, policy.PurposeTreatment)
	}
	// The grant is read access through a relationship, not a master key.
	bobs := onCareTeam(about(bob), drCarter)
	bobs.Practice.ClinicalAccess = []string{frontDesk}
	mustDeny(t, policy.Decide(s, policy.NoteRead, on(policy.NoteRead, bob), bobs), policy.ReasonNotOnCareTeam)
	for _, act := range []policy.Action{policy.NoteWrite, policy.PrescriptionWrite, policy.LabOrder} {
		mustDeny(t, policy.Decide(s, act, on(act, alice), f), policy.ReasonRoleNotPermitted)
	}
}

func TestRestrictedCategoryNeedsConsentOrBreakGlass(t *testing.T) {
	c := member(drCarter, haven.RoleClinician)
	r := on(policy.NoteRead, alice)
	r.Category = "mental_health"
	f := onCareTeam(about(alice), drCarter)
	mustAllow(t, policy.Decide(c, policy.NoteRead, r, f), policy.ReasonCareTeam, policy.PurposeTreatment)

	f.Patient.Restrictions.Categories = []string{"mental_health"}
	mustDeny(t, policy.Decide(c, policy.NoteRead, r, f), policy.ReasonPatientRestriction)

	consented := f
	consented.Patient.Restrictions.Consents = []haven.CategoryConsent{{UserID: drCarter, Category: "mental_health"}}
	mustAllow(t, policy.Decide(c, policy.NoteRead, r, consented), policy.ReasonCareTeam, policy.PurposeTreatment)

	// Consent for another category, or for another clinician, does not count.
	other := f
	other.Patient.Restrictions.Consents = []haven.CategoryConsent{{UserID: drCarter, Category: "sexual_health"}, {UserID: drDiaz, Category: "mental_health"}}
	mustDeny(t, policy.Decide(c, policy.NoteRead, r, other), policy.ReasonPatientRestriction)

	// The emergency exception: an active grant opens it, for review.
	emergency := f
	emergency.Patient.BreakGlass = []haven.BreakGlassGrant{{UserID: drCarter, Start: now.Add(-time.Minute), Expires: now.Add(time.Hour)}}
	mustAllow(t, policy.Decide(c, policy.NoteRead, r, emergency), policy.ReasonBreakGlass, policy.PurposeBreakGlass)

	// The patient sees their own record whatever they restricted.
	mustAllow(t, policy.Decide(member(alice, haven.RolePatient), policy.NoteRead, r, f), policy.ReasonSelf, policy.PurposePatientRequest)
}

func TestBookedVisitOpensOnlyItsWindow(t *testing.T) {
	c := member(drDiaz, haven.RoleClinician)
	r := on(policy.ChartRead, alice)
	start := now.Add(2 * time.Hour)
	end := start.Add(30 * time.Minute)
	cases := []struct {
		name  string
		visit haven.Visit
		want  policy.Reason
	}{
		{"later today", haven.Visit{ClinicianID: drDiaz, Start: start, End: end}, policy.ReasonBookedVisit},
		{"opens a day before", haven.Visit{ClinicianID: drDiaz, Start: now.Add(policy.VisitAccessBefore), End: now.Add(policy.VisitAccessBefore + time.Hour)}, policy.ReasonBookedVisit},
		{"closes after the follow-up days", haven.Visit{ClinicianID: drDiaz, Start: now.Add(-policy.VisitAccessAfter - time.Hour), End: now.Add(-policy.VisitAccessAfter)}, policy.ReasonBookedVisit},
		{"too far ahead", haven.Visit{ClinicianID: drDiaz, Start: now.Add(policy.VisitAccessBefore + time.Second), End: now.Add(48 * time.Hour)}, policy.ReasonNotOnCareTeam},
		{"long over", haven.Visit{ClinicianID: drDiaz, Start: now.Add(-30 * 24 * time.Hour), End: now.Add(-30*24*time.Hour + time.Hour)}, policy.ReasonNotOnCareTeam},
		{"cancelled", haven.Visit{ClinicianID: drDiaz, Start: start, End: end, State: haven.VisitCancelled}, policy.ReasonNotOnCareTeam},
		{"another clinician's", haven.Visit{ClinicianID: drCarter, Start: start, End: end}, policy.ReasonNotOnCareTeam},
		{"no start", haven.Visit{ClinicianID: drDiaz, End: end}, policy.ReasonNotOnCareTeam},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := about(alice)
			f.Patient.Visits = []haven.Visit{tc.visit}
			d := policy.Decide(c, policy.ChartRead, r, f)
			if d.Reason != tc.want || d.Allow != (tc.want == policy.ReasonBookedVisit) {
				t.Fatalf("got %+v, want %s", d, tc.want)
			}
		})
	}
}

func TestDecisionErrCodes(t *testing.T) {
	for _, tc := range []struct {
		d    policy.Decision
		code string
	}{
		{policy.Decision{Allow: true, Reason: policy.ReasonSelf}, ""},
		{policy.Decision{StepUp: true, Reason: policy.ReasonStepUpRequired}, haven.ESTEPUP},
		{policy.Decision{Reason: policy.ReasonOtherPractice}, haven.ENOTFOUND},
		{policy.Decision{Reason: policy.ReasonOtherPatient}, haven.ENOTFOUND},
		{policy.Decision{Reason: policy.ReasonNotOnCareTeam}, haven.EFORBIDDEN},
		{policy.Decision{Reason: policy.ReasonMFARequired}, haven.EFORBIDDEN},
		{policy.Decision{}, haven.EFORBIDDEN},
	} {
		if got := haven.ErrorCode(tc.d.Err()); got != tc.code {
			t.Errorf("%+v: code %q, want %q", tc.d, got, tc.code)
		}
	}
}

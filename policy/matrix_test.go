package policy_test

import (
	"fmt"
	"testing"
	"time"

	"haven"
	"haven/policy"
)

// How a role may take an action, in words. The matrix below is written out
// by hand from DESIGN.md ("Who uses it", "Authorization") and uses the
// actions' wire names rather than the package's constants, so a change to
// the policy table, a renamed action or a new one fails here until a person
// agrees with it.
const (
	ownRecord       = "on their own record"
	related         = "on the care team or with a booked visit"
	relatedOrBreak  = "related, or under break-glass"
	grantAndRelated = "with the practice's clinical grant, and related"
	anywhere        = "anywhere in their own practice (the operator: on the platform)"
)

var permissions = map[haven.Role]map[string]string{
	haven.RolePatient: {
		"chart.read": ownRecord, "chart.write_contact": ownRecord, "careteam.read": ownRecord,
		"note.read": ownRecord, "message.read": ownRecord, "message.send": ownRecord,
		"file.read": ownRecord, "file.upload": ownRecord, "prescription.read": ownRecord, "lab.read": ownRecord,
		"visit.book": ownRecord, "visit.cancel": ownRecord, "visit.reschedule": ownRecord, "visit.read": ownRecord,
		"visit.checkin": ownRecord, "visit.join": ownRecord,
		"export.patient": ownRecord, "audit.read_own": ownRecord,
		"restrictions.read": ownRecord, "restrictions.write": ownRecord,
		"amendment.request": ownRecord, "amendment.read": ownRecord,
		"payment.read": ownRecord, "payment.pay": ownRecord,
		"contact.verify": ownRecord, "observation.record": ownRecord,
	},
	haven.RoleClinician: {
		"chart.read": relatedOrBreak, "chart.write": related, "chart.write_contact": related,
		"careteam.read": relatedOrBreak, "careteam.patients": anywhere,
		"note.read": relatedOrBreak, "note.write": relatedOrBreak, "note.sign": related,
		"amendment.read": relatedOrBreak, "amendment.decide": related, "amendment.queue": anywhere,
		"message.read": relatedOrBreak, "message.send": related,
		"message.inbox": anywhere, "message.triage": related,
		"file.read": relatedOrBreak, "file.upload": related,
		"prescription.read": relatedOrBreak, "prescription.write": related, "prescription.draft": related,
		"lab.read": relatedOrBreak, "lab.order": related,
		"visit.book": related, "visit.cancel": related, "visit.reschedule": related, "visit.read": relatedOrBreak,
		"visit.admit": related, "visit.join": related, "visit.end": related,
		"visit.queue":        anywhere,
		"breakglass.request": anywhere,
		"training.take":      anywhere,
	},
	haven.RoleStaff: {
		"chart.read": anywhere, "chart.write": anywhere, "chart.write_contact": anywhere,
		"patient.register": anywhere, "patient.search": anywhere, "patient.find": anywhere,
		"careteam.read": anywhere,
		"message.read":  anywhere, "message.send": anywhere,
		"message.inbox": anywhere, "message.triage": anywhere,
		"visit.book": anywhere, "visit.cancel": anywhere, "visit.reschedule": anywhere, "visit.read": anywhere,
		"visit.queue": anywhere, "visit.checkin": anywhere,
		"note.read": grantAndRelated, "lab.read": grantAndRelated, "prescription.read": grantAndRelated,
		"file.read": grantAndRelated, "file.upload": grantAndRelated,
		"access_request.manage": anywhere, "access_request.queue": anywhere, "export.request": anywhere,
		"training.take": anywhere,
	},
	haven.RolePracticeAdmin: {
		"user.manage": anywhere, "role.manage": anywhere, "mfa.reset": anywhere,
		"practice.settings": anywhere, "vendor.read": anywhere, "vendor.manage": anywhere, "keys.manage": anywhere,
		"careteam.read": anywhere, "careteam.manage": anywhere, "patient.find": anywhere,
		"payment.list": anywhere, "payment.refund": anywhere, "payment.prices": anywhere,
		"training.take": anywhere, "training.report": anywhere,
	},
	haven.RoleComplianceOfficer: {
		"audit.search": anywhere, "audit.verify": anywhere, "alert.review": anywhere,
		"breakglass.review": anywhere, "incident.manage": anywhere, "backup.restore_drill": anywhere,
		"incident.contain": anywhere, "incident.letter": anywhere,
		"patient.find": anywhere, "vendor.read": anywhere, "amendment.queue": anywhere,
		"access_request.queue": anywhere,
		"training.take":        anywhere, "training.report": anywhere,
	},
	haven.RolePlatformOperator: {
		"practice.provision": anywhere, "keys.manage": anywhere, "user.manage": anywhere, "mfa.reset": anywhere,
		"audit.search": anywhere, "audit.verify": anywhere, "alert.review": anywhere,
		"backup.restore_drill": anywhere,
	},
	// A backend system: reads of the structured record, practice-wide,
	// one patient at a time; no notes, files or messages, no writes.
	haven.RoleIntegration: {
		"chart.read": anywhere, "lab.read": anywhere, "prescription.read": anywhere, "visit.read": anywhere,
	},
}

// Actions that concern no single patient's record.
var practiceLevel = set("access_request.queue", "patient.register", "patient.search", "careteam.patients", "patient.find", "visit.queue", "message.inbox", "amendment.queue",
	"audit.search", "audit.verify", "alert.review", "breakglass.review", "incident.manage", "incident.contain", "incident.letter",
	"backup.restore_drill", "user.manage", "role.manage", "mfa.reset", "practice.settings",
	"vendor.read", "vendor.manage", "keys.manage", "practice.provision", "payment.list", "payment.refund", "payment.prices",
	"training.take", "training.report")

// Actions a stolen or left-open session must not be able to take.
var needsStepUp = set("incident.contain", "prescription.write", "note.sign", "export.patient", "export.request", "breakglass.request",
	"mfa.reset", "role.manage", "visit.admit", "keys.manage", "practice.settings", "practice.provision", "vendor.manage", "payment.refund")

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// scenario is the actor's relationship to the record asked for.
type scenario string

const (
	self              scenario = "self"                      // the record is the actor's own
	careTeam          scenario = "care team"                 // the actor is on the patient's care team
	careTeamGranted   scenario = "care team, clinical grant" // and the practice granted them clinical reading
	bookedVisit       scenario = "booked visit"              // the actor has a visit with the patient in two hours
	noRelationship    scenario = "none"                      // nothing links the actor to the patient
	otherPatient      scenario = "other patient"             // the facts link the actor to a different patient
	otherPractice     scenario = "other practice"            // the record is another practice's; forged facts claim everything
	breakGlassActive  scenario = "break-glass active"        // a grant for the actor, started ten minutes ago
	breakGlassExpired scenario = "break-glass expired"       // a grant that ended an hour ago
	barred            scenario = "barred by patient"         // on the care team, but the patient barred the actor
)

var scenarios = []scenario{self, careTeam, careTeamGranted, bookedVisit, noRelationship, otherPatient,
	otherPractice, breakGlassActive, breakGlassExpired, barred}

// request builds the Decide inputs for role, action and scenario.
func request(role haven.Role, action string, sc scenario, mfa, freshStepUp bool) (haven.Actor, policy.Action, policy.Resource, policy.Facts) {
	const me, patientX, patientY = "user-me", "patient-x", "patient-y"
	home := practiceA
	if role == haven.RolePlatformOperator {
		home = ""
	}
	a := haven.Actor{UserID: me, PracticeID: home, Role: role, MFA: mfa, AuthTime: now.Add(-time.Minute)}
	if !freshStepUp {
		a.AuthTime = now.Add(-time.Hour)
	}
	act := policy.Action(action)
	patient := patientX
	if sc == self {
		patient = me
	}
	r := policy.Resource{Kind: act.Sensitivity().Kind, ID: "res-1", PracticeID: home, PatientID: patient}
	f := policy.Facts{
		Now:      now,
		Practice: policy.PracticeFacts{PracticeID: home},
		Patient:  policy.PatientFacts{PracticeID: home, PatientID: patient},
	}
	grant := func(start, end time.Time) {
		f.Patient.BreakGlass = []haven.BreakGlassGrant{{UserID: me, Start: start, Expires: end}}
	}
	switch sc {
	case careTeam:
		f.Patient.CareTeam = []string{"clinician-other", me}
	case careTeamGranted:
		f.Patient.CareTeam = []string{me}
		f.Practice.ClinicalAccess = []string{me}
	case bookedVisit:
		f.Patient.Visits = []haven.Visit{{ClinicianID: me, Start: now.Add(2 * time.Hour), End: now.Add(150 * time.Minute)}}
	case otherPatient:
		f.Patient.PatientID = patientY
		f.Patient.CareTeam = []string{me}
	case otherPractice:
		r.PracticeID = practiceB
		f.Practice = policy.PracticeFacts{PracticeID: practiceB, ClinicalAccess: []string{me}}
		f.Patient = policy.PatientFacts{PracticeID: practiceB, PatientID: patient, CareTeam: []string{me},
			Visits: []haven.Visit{{ClinicianID: me, Start: now, End: now.Add(time.Hour)}}}
		grant(now.Add(-time.Minute), now.Add(time.Hour))
	case breakGlassActive:
		grant(now.Add(-10*time.Minute), now.Add(50*time.Minute))
	case breakGlassExpired:
		grant(now.Add(-2*time.Hour), now.Add(-time.Hour))
	case barred:
		f.Patient.CareTeam = []string{me}
		f.Patient.Restrictions.BarredUsers = []string{"someone-else", me}
	}
	return a, act, r, f
}

// expected is what Haven promises for one request, reasoned from the
// matrix above in the order DESIGN.md gives: tenant, MFA, role, the
// patient's own record, the patient's bars, the relationship, and last the
// step-up.
func expected(role haven.Role, action string, sc scenario, mfa, freshStepUp bool) policy.Decision {
	no := func(r policy.Reason) policy.Decision { return policy.Decision{Reason: r} }
	if sc == otherPractice {
		return no(policy.ReasonOtherPractice)
	}
	if role != haven.RolePatient && !mfa {
		return no(policy.ReasonMFARequired)
	}
	how, ok := permissions[role][action]
	if !ok {
		return no(policy.ReasonRoleNotPermitted)
	}

	var yes policy.Decision
	switch {
	case practiceLevel[action]:
		yes = policy.Decision{Reason: policy.ReasonRolePermitted, Purpose: policy.PurposeOperations}
	case how == ownRecord:
		if sc != self {
			return no(policy.ReasonOtherPatient)
		}
		yes = policy.Decision{Reason: policy.ReasonSelf, Purpose: policy.PurposePatientRequest}
	case sc == otherPatient:
		return no(policy.ReasonFactsMissing)
	case sc == barred:
		return no(policy.ReasonPatientRestriction)
	case how == anywhere:
		yes = policy.Decision{Reason: policy.ReasonRolePermitted, Purpose: policy.PurposeOperations}
	case how == grantAndRelated && sc != careTeamGranted:
		return no(policy.ReasonNoClinicalGrant)
	case sc == careTeam || sc == careTeamGranted:
		yes = policy.Decision{Reason: policy.ReasonCareTeam, Purpose: policy.PurposeTreatment}
	case sc == bookedVisit:
		yes = policy.Decision{Reason: policy.ReasonBookedVisit, Purpose: policy.PurposeTreatment}
	case sc == breakGlassActive && how == relatedOrBreak:
		yes = policy.Decision{Reason: policy.ReasonBreakGlass, Purpose: policy.PurposeBreakGlass}
	case sc == breakGlassExpired && how == relatedOrBreak:
		return no(policy.ReasonBreakGlassExpired)
	default:
		return no(policy.ReasonNotOnCareTeam)
	}
	if action == "export.request" {
		// The front desk answers the patient's own written request.
		yes.Purpose = policy.PurposePatientRequest
	}
	if action == "breakglass.request" {
		yes.Purpose = policy.PurposeBreakGlass
	}
	if needsStepUp[action] && !freshStepUp {
		return policy.Decision{StepUp: true, Reason: policy.ReasonStepUpRequired, Purpose: yes.Purpose}
	}
	yes.Allow = true
	return yes
}

// TestEveryRoleActionAndRelationship checks Decide against the hand-written
// matrix for every role × action × relationship, with and without MFA and
// a fresh step-up.
func TestEveryRoleActionAndRelationship(t *testing.T) {
	var checked, allowed int
	for _, role := range haven.Roles {
		for _, act := range policy.Actions() {
			for _, sc := range scenarios {
				for _, mfa := range []bool{true, false} {
					for _, fresh := range []bool{true, false} {
						want := expected(role, string(act), sc, mfa, fresh)
						got := policy.Decide(request(role, string(act), sc, mfa, fresh))
						checked++
						if got.Allow {
							allowed++
						}
						if got != want {
							t.Errorf("%s %s, %s, mfa=%v fresh=%v:\n got %+v\nwant %+v", role, act, sc, mfa, fresh, got, want)
						}
					}
				}
			}
		}
	}
	// The sweep must have exercised both answers, or it proves nothing.
	if allowed == 0 || allowed == checked {
		t.Fatalf("%d of %d requests allowed", allowed, checked)
	}
	t.Logf("%d requests checked, %d allowed", checked, allowed)
}

// TestMatrixNamesEveryActionAndNothingElse keeps the hand-written matrix and
// the policy's table in step: every action is in someone's row (or it
// would be a dead constant), and the matrix names no action the policy
// does not know.
func TestMatrixNamesEveryActionAndNothingElse(t *testing.T) {
	inMatrix := map[string]bool{}
	for role, row := range permissions {
		for action := range row {
			inMatrix[action] = true
			if !policy.Action(action).Valid() {
				t.Errorf("matrix gives %s the unknown action %q", role, action)
			}
			if !policy.Permits(role, policy.Action(action)) {
				t.Errorf("matrix lets %s %s; the policy table never does", role, action)
			}
		}
	}
	for _, act := range policy.Actions() {
		if !inMatrix[string(act)] {
			t.Errorf("no role may %s according to the matrix; add it or remove the action", act)
		}
		for _, role := range haven.Roles {
			if _, ok := permissions[role][string(act)]; policy.Permits(role, act) && !ok {
				t.Errorf("the policy table lets %s %s; the matrix does not", role, act)
			}
		}
		s := act.Sensitivity()
		if s.PatientScoped == practiceLevel[string(act)] {
			t.Errorf("%s: policy says patient-scoped=%v, the test's list disagrees", act, s.PatientScoped)
		}
		if s.StepUp != needsStepUp[string(act)] {
			t.Errorf("%s: policy says step-up=%v, the test's list disagrees", act, s.StepUp)
		}
	}
}

func ExampleDecide() {
	clinician := haven.Actor{UserID: "clinician-1", PracticeID: "practice-1", Role: haven.RoleClinician,
		MFA: true, AuthTime: now.Add(-30 * time.Minute)}
	facts := policy.Facts{
		Now:      now,
		Practice: policy.PracticeFacts{PracticeID: "practice-1"},
		Patient: policy.PatientFacts{PracticeID: "practice-1", PatientID: "patient-1",
			CareTeam: []string{"clinician-1"}},
	}
	note := policy.Resource{Kind: policy.KindNote, ID: "note-1", PracticeID: "practice-1", PatientID: "patient-1"}
	fmt.Printf("%+v\n", policy.Decide(clinician, policy.NoteRead, note, facts))

	rx := policy.Resource{Kind: policy.KindPrescription, ID: "rx-1", PracticeID: "practice-1", PatientID: "patient-1"}
	d := policy.Decide(clinician, policy.PrescriptionWrite, rx, facts)
	fmt.Printf("%+v %v\n", d, d.Err())

	other := note
	other.PracticeID = "practice-2"
	fmt.Printf("%+v\n", policy.Decide(clinician, policy.NoteRead, other, facts))
	// Output:
	// {Allow:true StepUp:false Reason:care_team Purpose:treatment}
	// {Allow:false StepUp:true Reason:step_up_required Purpose:treatment} step_up: this action needs a fresh authentication
	// {Allow:false StepUp:false Reason:other_practice Purpose:}
}

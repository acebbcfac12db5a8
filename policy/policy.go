// Package policy owns Haven's access decisions: whether an actor may take an
// action on a resource, why, and for what purpose of use. Decide is one pure
// function that denies by default; the service layer calls it before every
// read or write and records its Decision in the audit log.
//
// Policy must never do I/O, read the clock, or see PHI content. It decides on
// identifiers, roles and facts the service layer established (care-team
// membership, booked visits, break-glass grants, the patient's restrictions,
// the time), so it can be tested exhaustively and reasoned about alone.
package policy

import (
	"net/netip"
	"slices"
	"time"

	"haven"
)

// Windows that bound time-based access. They are policy, not configuration,
// so that a practice setting cannot quietly widen them.
const (
	// DefaultStepUpMaxAge is how old an authentication may be for a step-up
	// action. A practice may shorten it, never lengthen it: a session left
	// open on a shared clinic computer must not be able to prescribe.
	DefaultStepUpMaxAge = 5 * time.Minute

	// ClockSkew is how far in the future an authentication time may lie
	// (servers' clocks differ a little). Anything further is not trusted.
	ClockSkew = time.Minute

	// VisitAccessBefore and VisitAccessAfter open a booked visit's patient
	// to its clinician from a day before (to prepare) until three days
	// after (to finish notes and act on results). Beyond that, access comes
	// from the care team.
	VisitAccessBefore = 24 * time.Hour
	VisitAccessAfter  = 72 * time.Hour

	// BreakGlassMaxDuration caps every break-glass grant, whatever its
	// stated expiry: emergency access is time-boxed even if the code that
	// created the grant was wrong.
	BreakGlassMaxDuration = 4 * time.Hour
)

// Resource is what an action is applied to. Only identifiers: policy never
// sees the content.
type Resource struct {
	Kind Kind
	ID   string
	// PracticeID is the tenant the resource belongs to; "" for the
	// platform's own resources (its audit log, root keys, practice registry).
	PracticeID string
	// PatientID is the user id of the patient the resource concerns, if any.
	PatientID string
	// Category is the record's sensitive category ("mental_health",
	// "substance_use", "sexual_health" …), or "" for none. A patient may
	// restrict categories (see haven.Restrictions).
	Category string
}

// Facts are what the service layer established, from its own storage, before
// calling Decide. Decide trusts no fact that is not bound to the actor's
// practice and the resource's patient: a fact loaded for another patient or
// practice proves nothing here.
//
// Facts that restrict (patient restrictions, practice settings) fail closed:
// the service must load them for the patient and practice in question (even
// when empty), or Decide denies with ReasonFactsMissing.
type Facts struct {
	// Now is the time of the request. Decide never reads the clock.
	Now      time.Time
	Practice PracticeFacts
	// Patient is about Resource.PatientID; needed for workforce actions on
	// one patient's record.
	Patient PatientFacts
	// Training is the actor's own security training, needed for a
	// workforce member's PHI action when the practice requires training.
	Training TrainingFacts
}

// TrainingFacts are a workforce member's security training (164.308(a)(5)).
type TrainingFacts struct {
	// UserID must equal the actor's: training loaded for someone else
	// proves nothing.
	UserID string
	// CurrentUntil is when the member's training stops being current: the
	// earliest expiry among the modules, or, for a module never passed,
	// when it became due (the later of the account's creation and the
	// practice's requirement).
	CurrentUntil time.Time
}

// PracticeFacts are the actor's practice's settings.
type PracticeFacts struct {
	// PracticeID must equal the actor's practice ("" for the platform).
	PracticeID string
	// PatientsRequireMFA makes the practice's patients pass a second factor
	// before any PHI action (workforce always must).
	PatientsRequireMFA bool
	// StepUpMaxAge shortens DefaultStepUpMaxAge; zero means the default.
	StepUpMaxAge time.Duration
	// ClinicalAccess lists staff user ids whom the practice has granted
	// read access to clinical content (notes, results, prescriptions,
	// files), for example medical assistants. They still need a
	// relationship to each patient.
	ClinicalAccess []string
	// TrainingRequired refuses the workforce any PHI action once their
	// security training has lapsed for longer than TrainingGrace.
	TrainingRequired bool
	TrainingGrace    time.Duration
	// WorkforceNetworks, when not empty, are the only networks the
	// practice's workforce may act from (network.go).
	WorkforceNetworks []netip.Prefix
}

// PatientFacts are the relationships to, and restrictions of, one patient.
type PatientFacts struct {
	PracticeID string
	PatientID  string
	// CareTeam lists the user ids on the patient's care team.
	CareTeam []string
	// Visits lists the patient's visits as stored (cancelled ones may be
	// included; Decide ignores them). Decide reads their clinician, times
	// and state, never their sealed reason.
	Visits []haven.Visit
	// BreakGlass lists break-glass grants on this patient as stored; Decide
	// reads their user and times.
	BreakGlass   []haven.BreakGlassGrant
	Restrictions haven.Restrictions
}

// Purpose is the purpose of use recorded with every access (HIPAA).
type Purpose string

const (
	PurposeNone           Purpose = "" // denials carry no purpose
	PurposeTreatment      Purpose = "treatment"
	PurposeOperations     Purpose = "operations"
	PurposePatientRequest Purpose = "patient_request"
	PurposeBreakGlass     Purpose = "break_glass"
)

// Reason is a short machine code saying why Decide decided as it did. It
// goes into the audit event and may be shown to the actor; it never carries
// PHI.
type Reason string

// Reasons for allowing.
const (
	ReasonSelf          Reason = "self"             // a patient on their own record
	ReasonCareTeam      Reason = "care_team"        // on the patient's care team
	ReasonBookedVisit   Reason = "booked_visit"     // clinician of a visit in its access window
	ReasonBreakGlass    Reason = "breakglass_grant" // under an active break-glass grant: alerted, reviewed
	ReasonRolePermitted Reason = "role_permitted"   // the role may do this anywhere in its practice
)

// Reasons for denying.
const (
	ReasonDenyDefault        Reason = "deny_default"        // unknown action
	ReasonOtherPractice      Reason = "other_practice"      // the resource belongs to another tenant
	ReasonInvalidActor       Reason = "invalid_actor"       // actor without user, with unknown role, or with a practice its role forbids
	ReasonInvalidResource    Reason = "invalid_resource"    // wrong kind for the action, or a patient action naming no patient
	ReasonFactsMissing       Reason = "facts_missing"       // no time, or settings/restrictions not loaded for this practice and patient
	ReasonMFARequired        Reason = "mfa_required"        // the session has no second factor
	ReasonRoleNotPermitted   Reason = "role_not_permitted"  // the role may never do this
	ReasonOtherPatient       Reason = "other_patient"       // a patient acting on someone else's record
	ReasonPatientRestriction Reason = "patient_restriction" // the patient barred this actor, staff from messages, or the category
	ReasonNotOnCareTeam      Reason = "not_on_care_team"    // no relationship to the patient
	ReasonBreakGlassExpired  Reason = "breakglass_expired"  // only an expired break-glass grant
	ReasonNoClinicalGrant    Reason = "no_clinical_grant"   // staff without the practice's clinical access grant
	ReasonStepUpRequired     Reason = "step_up_required"    // allowed after a fresh authentication
	ReasonTrainingLapsed     Reason = "training_lapsed"     // the practice requires current security training and the actor's lapsed past the grace period
	ReasonOutsideNetwork     Reason = "outside_network"     // a workforce member acting from outside the practice's networks
)

// Decision is Decide's answer.
type Decision struct {
	// Allow is true only when the action may proceed now.
	Allow bool
	// StepUp is true when the action would be allowed after a fresh
	// authentication: the caller should ask for one and decide again.
	StepUp  bool
	Reason  Reason
	Purpose Purpose
}

// Err returns nil for an allowed decision and otherwise the error the
// service should return: ESTEPUP when a fresh authentication would do,
// ENOTFOUND when the resource belongs to another practice or patient (ids
// are not secrets, but an attacker changing ids learns nothing from us), and
// EFORBIDDEN otherwise.
func (d Decision) Err() error {
	switch {
	case d.Allow:
		return nil
	case d.StepUp:
		return haven.Errorf(haven.ESTEPUP, "this action needs a fresh authentication")
	case d.Reason == ReasonOtherPractice || d.Reason == ReasonOtherPatient:
		return haven.Errorf(haven.ENOTFOUND, "not found")
	case d.Reason == ReasonOutsideNetwork:
		return haven.Errorf(haven.EFORBIDDEN, "your practice lets its team in only from its own networks, and this connection comes from outside them. Connect from the clinic's network or its VPN, then try again")
	case d.Reason == ReasonTrainingLapsed:
		return haven.Errorf(haven.EFORBIDDEN, "your security training is not current: the practice requires it before patient records are opened. Complete it on the Training page (%s), then try again", TrainingPage)
	default:
		return haven.Errorf(haven.EFORBIDDEN, "access denied (%s)", d.Reason)
	}
}

// Decide decides whether actor a may take action act on resource r, given
// the facts f. It denies unless a rule allows, in this order:
//
//  1. tenant isolation: nothing of another practice, whatever else is true;
//  2. a well-formed actor and a known action;
//  3. MFA for every workforce action (a backend system's signed key
//     assertion is its strong authentication);
//  4. the role's row in the permission table;
//  5. a resource of the action's kind (naming its patient if it has one),
//     and facts bound to this practice and patient;
//  6. a workforce member acting from the practice's networks, when it
//     sets them; then their current security training, for a PHI action,
//     when the practice requires it (after its grace period);
//  7. patients: their own record only;
//     workforce: the patient's bars, then the access path (practice-wide,
//     care team, booked visit, break-glass), then restricted categories;
//  8. a recent step-up for the sensitive actions, asked for only once
//     everything else allows (so the prompt reveals nothing).
func Decide(a haven.Actor, act Action, r Resource, f Facts) Decision {
	if a.PracticeID != r.PracticeID {
		return deny(ReasonOtherPractice)
	}
	if !validActor(a) {
		return deny(ReasonInvalidActor)
	}
	rl, ok := table[act]
	if !ok {
		return deny(ReasonDenyDefault)
	}
	workforce := a.Role != haven.RolePatient
	if workforce && !a.MFA {
		return deny(ReasonMFARequired)
	}
	how := rl.roles[a.Role]
	if how == never {
		return deny(ReasonRoleNotPermitted)
	}
	if r.Kind != rl.kind || (rl.patient && r.PatientID == "") {
		return deny(ReasonInvalidResource)
	}
	if f.Now.IsZero() || f.Practice.PracticeID != a.PracticeID {
		return deny(ReasonFactsMissing)
	}

	// A backend system is held to its own registered networks, checked
	// on every token use before its actor reaches here, not to the
	// workforce's (a lab calls from the lab); it is no person, so takes no
	// training. It reads one patient's record at a time, practice-wide,
	// and nothing else: a table mistake still could not give it a
	// practice-level act or a relationship it cannot have.
	system := a.Role == haven.RoleIntegration
	if system && (!rl.patient || how != anyInPractice) {
		return deny(ReasonRoleNotPermitted)
	}
	if workforce && !system && outsideNetworks(a, f) {
		return deny(ReasonOutsideNetwork)
	}
	if workforce && !system && rl.phi && f.Practice.TrainingRequired {
		if f.Training.UserID != a.UserID {
			return deny(ReasonFactsMissing)
		}
		if !f.Now.Before(f.Training.CurrentUntil.Add(max(f.Practice.TrainingGrace, 0))) {
			return deny(ReasonTrainingLapsed)
		}
	}

	if !workforce {
		// A patient acts on their own record, and only patient actions are
		// in a patient's row; a table mistake still could not reach
		// another record.
		if !rl.patient || how != own {
			return deny(ReasonRoleNotPermitted)
		}
		if r.PatientID != a.UserID {
			return deny(ReasonOtherPatient)
		}
		if rl.phi && f.Practice.PatientsRequireMFA && !a.MFA {
			return deny(ReasonMFARequired)
		}
		return stepUp(a, rl, f, allow(ReasonSelf, PurposePatientRequest))
	}

	if how == own {
		return deny(ReasonRoleNotPermitted) // "own record" is for patients only
	}
	if !rl.patient {
		if how != anyInPractice {
			return deny(ReasonRoleNotPermitted)
		}
		return stepUp(a, rl, f, allow(ReasonRolePermitted, purpose(rl, PurposeOperations)))
	}

	p := &f.Patient
	if p.PatientID != r.PatientID || p.PracticeID != r.PracticeID {
		return deny(ReasonFactsMissing)
	}
	if slices.Contains(p.Restrictions.BarredUsers, a.UserID) {
		return deny(ReasonPatientRestriction)
	}
	if (a.Role == haven.RoleStaff || system) && rl.kind == KindMessage && p.Restrictions.StaffFromMessages {
		return deny(ReasonPatientRestriction)
	}

	var d Decision
	switch how {
	case anyInPractice:
		d = allow(ReasonRolePermitted, purpose(rl, PurposeOperations))
	case related, relatedOrBreakGlass:
		d = relationship(a, p, f.Now, how == relatedOrBreakGlass)
	case grantedAndRelated:
		if a.Role != haven.RoleStaff || !slices.Contains(f.Practice.ClinicalAccess, a.UserID) {
			return deny(ReasonNoClinicalGrant)
		}
		d = relationship(a, p, f.Now, false)
	default:
		return deny(ReasonDenyDefault)
	}
	if !d.Allow {
		return d
	}

	if r.Category != "" && slices.Contains(p.Restrictions.Categories, r.Category) &&
		!slices.Contains(p.Restrictions.Consents, haven.CategoryConsent{UserID: a.UserID, Category: r.Category}) {
		if how != relatedOrBreakGlass || breakGlass(a, p, f.Now) != grantActive {
			return deny(ReasonPatientRestriction)
		}
		d = allow(ReasonBreakGlass, PurposeBreakGlass)
	}
	return stepUp(a, rl, f, d)
}

// validActor checks the actor's shape: a user, a known role, and a practice
// exactly when the role has one. Without this an actor with an empty
// practice would match the platform's resources.
func validActor(a haven.Actor) bool {
	if a.UserID == "" || !a.Role.Valid() {
		return false
	}
	if a.Role == haven.RolePlatformOperator {
		return a.PracticeID == ""
	}
	return a.PracticeID != ""
}

// relationship allows a workforce member related to the patient: on the care
// team, the clinician of a booked visit in its window, or (when breakGlassOK)
// holding an active break-glass grant. The ordinary paths are preferred so
// that a clinician who happens to hold a grant is not flagged for review
// when they needed none.
func relationship(a haven.Actor, p *PatientFacts, now time.Time, breakGlassOK bool) Decision {
	if slices.Contains(p.CareTeam, a.UserID) {
		return allow(ReasonCareTeam, PurposeTreatment)
	}
	for _, v := range p.Visits {
		if v.ClinicianID == a.UserID && v.State != haven.VisitCancelled && inVisitWindow(v, now) {
			return allow(ReasonBookedVisit, PurposeTreatment)
		}
	}
	if breakGlassOK {
		switch breakGlass(a, p, now) {
		case grantActive:
			return allow(ReasonBreakGlass, PurposeBreakGlass)
		case grantExpired:
			return deny(ReasonBreakGlassExpired)
		}
	}
	return deny(ReasonNotOnCareTeam)
}

func inVisitWindow(v haven.Visit, now time.Time) bool {
	if v.Start.IsZero() {
		return false
	}
	end := v.End
	if end.Before(v.Start) {
		end = v.Start
	}
	return !now.Before(v.Start.Add(-VisitAccessBefore)) && !now.After(end.Add(VisitAccessAfter))
}

type grantState uint8

const (
	grantNone grantState = iota
	grantExpired
	grantActive
)

// breakGlass reports the state of the actor's best grant on the patient. A
// grant not yet started, or without a start, counts as none.
func breakGlass(a haven.Actor, p *PatientFacts, now time.Time) grantState {
	if _, ok := BreakGlassUntil(a, p.BreakGlass, now); ok {
		return grantActive
	}
	for _, g := range p.BreakGlass {
		if g.UserID == a.UserID && !g.Start.IsZero() && !now.Before(g.Start) {
			return grantExpired
		}
	}
	return grantNone
}

// BreakGlassUntil returns when a's access under its active break-glass
// grants among grants ends (each capped at BreakGlassMaxDuration), and
// false when a holds none: what the chart shows the clinician reading
// under one.
func BreakGlassUntil(a haven.Actor, grants []haven.BreakGlassGrant, now time.Time) (time.Time, bool) {
	var until time.Time
	for _, g := range grants {
		if g.UserID != a.UserID || g.Start.IsZero() || now.Before(g.Start) {
			continue
		}
		end := g.Expires
		if limit := g.Start.Add(BreakGlassMaxDuration); end.After(limit) {
			end = limit
		}
		if now.Before(end) && end.After(until) {
			until = end
		}
	}
	return until, !until.IsZero()
}

// stepUp turns an allow into a request for a fresh authentication when the
// action needs one and the actor's last authentication is too old.
func stepUp(a haven.Actor, rl rule, f Facts, d Decision) Decision {
	if !rl.stepUp || freshAuth(a, f) {
		return d
	}
	return Decision{StepUp: true, Reason: ReasonStepUpRequired, Purpose: d.Purpose}
}

func freshAuth(a haven.Actor, f Facts) bool {
	if a.AuthTime.IsZero() {
		return false
	}
	maxAge := DefaultStepUpMaxAge
	if s := f.Practice.StepUpMaxAge; s > 0 && s < maxAge {
		maxAge = s
	}
	age := f.Now.Sub(a.AuthTime)
	return age >= -ClockSkew && age <= maxAge
}

func purpose(rl rule, fallback Purpose) Purpose {
	if rl.purpose != PurposeNone {
		return rl.purpose
	}
	return fallback
}

func allow(r Reason, p Purpose) Decision { return Decision{Allow: true, Reason: r, Purpose: p} }

func deny(r Reason) Decision { return Decision{Reason: r} }

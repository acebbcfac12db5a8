package policy

import (
	"slices"

	"haven"
)

// Action is one thing an actor asks to do. Every service method names exactly
// one Action before it touches data, and the audit event records it.
type Action string

// The actions, grouped by area. Each one's sensitivity (whether it touches
// PHI, whether it needs a recent step-up) and which roles may take it are
// in the table below; an Action missing from that table is denied to
// everyone, and a test keeps every constant here in the table.
const (
	// Chart: the patient's identity record — demographics, contact
	// details, medical record number — and the practice's patient list.
	ChartRead       Action = "chart.read"
	ChartWrite      Action = "chart.write"         // demographics and MRN
	ContactWrite    Action = "chart.write_contact" // phone, email, address: a patient may keep their own current
	PatientRegister Action = "patient.register"    // create a patient record at the front desk
	PatientSearch   Action = "patient.search"      // find a patient to schedule; each hit is still decided per patient
	// PatientFind identifies a patient by full name and date of birth, for
	// a task that needs the patient but not their record: the
	// administrator's care teams, the compliance officer's audit search.
	// It opens nothing for the searcher: it answers whether someone they
	// already name and date is a patient here (as an administrator's
	// lookup of a patient's account by exact email does), so it is not a
	// PHI action; the search itself is audited, without what was typed.
	PatientFind Action = "patient.find"

	// Care team: who treats the patient. Membership is PHI (a patient on an
	// oncologist's team has told you something), and it is also what grants
	// clinicians access, so changing it is an administrative act.
	CareTeamRead   Action = "careteam.read"
	CareTeamManage Action = "careteam.manage"
	// CareTeamPatients is a clinician's list of the patients she cares
	// for, by name: PHI, so decided (her practice's networks, her second
	// factor) and audited like the front desk's patient.search.
	CareTeamPatients Action = "careteam.patients"

	// Clinical record.
	NoteRead  Action = "note.read"
	NoteWrite Action = "note.write" // a visit note's draft; only the visit's clinician, which the service checks
	// NoteSign locks a visit note under the practice's signature, and
	// appends an addendum to a signed one: what a clinician signs is the
	// record, so a stolen session must not sign it.
	NoteSign    Action = "note.sign"
	MessageRead Action = "message.read"
	MessageSend Action = "message.send"
	// MessageInbox opens the practice's inbox: the list of its patients'
	// threads and the unread counts on a home page. Each thread in it is
	// still decided per patient (MessageTriage), so a patient's
	// restrictions hold in the list as in the thread.
	MessageInbox Action = "message.inbox"
	// MessageTriage is the inbox's work on one thread: seeing its line
	// (the patient's name, the subject, who has it), giving it to a
	// person, marking it done.
	MessageTriage     Action = "message.triage"
	FileRead          Action = "file.read"
	FileUpload        Action = "file.upload"
	PrescriptionRead  Action = "prescription.read"
	PrescriptionWrite Action = "prescription.write"
	// PrescriptionDraft writes a prescription not yet signed: nothing
	// leaves until PrescriptionWrite signs it, after a fresh
	// authentication that each signature consumes.
	PrescriptionDraft Action = "prescription.draft"
	LabRead           Action = "lab.read"
	LabOrder          Action = "lab.order"
	// ObservationRecord is a patient recording a vital sign of her own (a
	// blood pressure, a weight) from a device or an app: it joins her
	// record with her results, read as they are (LabRead), marked as
	// hers, not a laboratory's.
	ObservationRecord Action = "observation.record"

	// Amendments (HIPAA 164.526): a patient asks for a part of her record
	// to be amended and may attach a statement of disagreement to a
	// denial (AmendmentRequest); she and her related clinicians read the
	// requests (AmendmentRead); a related clinician accepts, denies or
	// extends one (AmendmentDecide); clinicians and the compliance officer
	// see the practice's open requests and their deadlines, without their
	// text: no PHI but whose request it is, as patient.find names people
	// (AmendmentQueue).
	AmendmentRequest Action = "amendment.request"
	AmendmentRead    Action = "amendment.read"
	AmendmentDecide  Action = "amendment.decide"
	AmendmentQueue   Action = "amendment.queue"

	// Visits: booked → checked in → admitted → in call → ended.
	VisitBook    Action = "visit.book"
	VisitCancel  Action = "visit.cancel"
	VisitRead    Action = "visit.read"
	VisitQueue   Action = "visit.queue" // the day's list and waiting room; each entry is still decided per patient
	VisitCheckIn Action = "visit.checkin"
	VisitAdmit   Action = "visit.admit"
	VisitJoin    Action = "visit.join"
	VisitEnd     Action = "visit.end"

	// VisitReschedule moves a booked visit to another free slot of its
	// clinician: whoever may book or cancel the visit may move it.
	VisitReschedule Action = "visit.reschedule"

	// The patient's rights over their own record (HIPAA right of access and
	// accounting of disclosures).
	ExportPatient Action = "export.patient"
	AuditReadOwn  Action = "audit.read_own"
	// A patient may also ask in writing (164.524(b)): the front desk
	// records the request, which the practice must answer within 30 days
	// (AccessRequestManage), and produces the same export for it after a
	// fresh authentication (ExportForRequest; the service requires an open
	// request for that patient). The compliance officer and the front desk
	// see the practice's requests and the days left, naming whose request
	// each is and nothing of the record (AccessRequestQueue).
	AccessRequestManage Action = "access_request.manage"
	AccessRequestQueue  Action = "access_request.queue"
	ExportForRequest    Action = "export.request"
	// RestrictionsRead and RestrictionsWrite are a patient's own limits on
	// who sees her record (haven.Restrictions): hers alone to read and
	// set. Policy itself reads them for every decision without an action.
	RestrictionsRead  Action = "restrictions.read"
	RestrictionsWrite Action = "restrictions.write"

	// Payments: visit fees. What a visit was paid with, by whom and for
	// which visit is the patient's (PHI): she reads and pays her own. The
	// administrator works the ledger by opaque reference, amount and state,
	// never by name or visit (so no PHI), sets the prices, and refunds with
	// a recent step-up (a stolen session must not pay money out).
	PaymentRead   Action = "payment.read"
	PaymentPay    Action = "payment.pay"
	PaymentList   Action = "payment.list"
	PaymentRefund Action = "payment.refund"
	PaymentPrices Action = "payment.prices"

	// Oversight: the compliance officer's tools.
	AuditSearch       Action = "audit.search"
	AuditVerify       Action = "audit.verify"
	AlertReview       Action = "alert.review"
	BreakGlassRequest Action = "breakglass.request"
	BreakGlassReview  Action = "breakglass.review"
	IncidentManage    Action = "incident.manage"
	// An incident (164.308(a)(6)) is the compliance officer's alone:
	// opening, scoping and deciding it (IncidentManage, which also names
	// the affected patients, as the officer's alert screens name them);
	// containing it, which shuts the scoped accounts out and so needs a
	// fresh authentication (IncidentContain); and a breach's letter to one
	// patient (IncidentLetter), whose decision names her so that it lands
	// in her access history. A letter holds her name and last known address
	// (164.404(d)(1) sends it by first-class mail) and which kinds of her
	// records were opened when, never chart content: the officer's
	// screens name patients the same way.
	IncidentContain    Action = "incident.contain"
	IncidentLetter     Action = "incident.letter"
	BackupRestoreDrill Action = "backup.restore_drill"

	// Administration of a practice (or, for the operator, of the platform).
	UserManage       Action = "user.manage"
	RoleManage       Action = "role.manage"
	MFAReset         Action = "mfa.reset"
	PracticeSettings Action = "practice.settings"
	// VendorRead lists the outside systems the practice's data may go to
	// and their agreements; VendorManage registers, changes and retires
	// them, after a fresh authentication (a stolen session must not be able
	// to open a new way out for PHI).
	VendorRead   Action = "vendor.read"
	VendorManage Action = "vendor.manage"
	KeysManage   Action = "keys.manage"

	// Workforce security training (164.308(a)(5)): each member takes the
	// modules and their quizzes for themselves (TrainingTake: their own
	// record only, whatever the role); the administrator and the
	// compliance officer see who is current, due or overdue, by name
	// (TrainingReport). Neither touches PHI.
	TrainingTake   Action = "training.take"
	TrainingReport Action = "training.report"

	// ContactVerify is a patient checking that an email came from her
	// practice (by the code every email of Haven's carries), and reporting
	// one that did not. What a code answers (that the practice wrote to
	// her on a date, about a visit or a message) is hers, so it is PHI.
	ContactVerify Action = "contact.verify"

	// Platform: the operator's registry of practices.
	PracticeProvision Action = "practice.provision"
)

// TrainingPage is where a workforce member takes security training: the
// page a refusal for lapsed training points to.
const TrainingPage = "/app/training"

// Kind names what a Resource is. Decide refuses a resource whose kind is not
// the one its action is about, so a service cannot authorize a note read and
// then hand out a prescription.
type Kind string

const (
	KindChart         Kind = "chart"
	KindPatient       Kind = "patient" // the practice's patient list
	KindCareTeam      Kind = "careteam"
	KindNote          Kind = "note"
	KindAmendment     Kind = "amendment"
	KindAccessRequest Kind = "access_request"
	KindMessage       Kind = "message"
	KindRestrictions  Kind = "restrictions"
	KindFile          Kind = "file"
	KindPrescription  Kind = "prescription"
	KindLab           Kind = "lab"
	KindVisit         Kind = "visit"
	KindPayment       Kind = "payment"
	KindAudit         Kind = "audit"
	KindAlert         Kind = "alert"
	KindBreakGlass    Kind = "breakglass"
	KindIncident      Kind = "incident"
	KindBackup        Kind = "backup"
	KindUser          Kind = "user"
	KindPractice      Kind = "practice"
	KindVendor        Kind = "vendor"
	KindKey           Kind = "key"
	KindTraining      Kind = "training"
	KindContact       Kind = "contact"
)

// access is how a role may take an action. The zero value is "never", so a
// role left out of an action's row is denied.
type access uint8

const (
	never access = iota
	// own: a patient, on their own record only.
	own
	// related: on the care team, or the clinician of a booked visit in its
	// access window.
	related
	// relatedOrBreakGlass: as related, or under an active break-glass grant
	// for this patient (the emergency path, alerted and reviewed).
	relatedOrBreakGlass
	// grantedAndRelated: a staff member whom the practice has explicitly
	// granted clinical read access, and who is related to the patient.
	grantedAndRelated
	// anyInPractice: any record of the actor's own practice (for the
	// operator: of the platform, which holds no PHI).
	anyInPractice
)

// rule is one row of the permission table.
type rule struct {
	kind Kind
	// patient: the action concerns one patient's record, so the resource
	// must name the patient and the patient's restrictions apply.
	patient bool
	// phi: the action reads or changes protected health information.
	phi bool
	// stepUp: the action needs a fresh authentication (StepUpMaxAge)
	// because a stolen session must not be able to take it.
	stepUp bool
	// purpose overrides the purpose of use implied by the access path.
	purpose Purpose
	roles   perms
}

// Shorthands for the table's role columns.
const (
	rPatient    = haven.RolePatient
	rClinician  = haven.RoleClinician
	rStaff      = haven.RoleStaff
	rAdmin      = haven.RolePracticeAdmin
	rCompliance = haven.RoleComplianceOfficer
	rOperator   = haven.RolePlatformOperator
	rSystem     = haven.RoleIntegration
)

// table is Haven's permission table: least privilege, one row per action.
// Reading it top to bottom answers "who may do what":
//   - patients act only on their own record;
//   - clinicians reach a record through a relationship (care team, booked
//     visit), and reach further only through break-glass;
//   - staff run the front desk practice-wide (scheduling, check-in,
//     messages, demographics) and see clinical content only with an
//     explicit grant and a relationship;
//   - the practice admin manages people, settings and care teams and sees
//     no clinical content;
//   - the compliance officer works the audit log, alerts, break-glass
//     reviews and incidents, and sees no chart content;
//   - the platform operator runs the platform and never acts inside a
//     practice (tenant isolation keeps them to platform resources).
var table = map[Action]rule{
	ChartRead:       {kind: KindChart, patient: true, phi: true, roles: perms{rPatient: own, rClinician: relatedOrBreakGlass, rStaff: anyInPractice, rSystem: anyInPractice}},
	ChartWrite:      {kind: KindChart, patient: true, phi: true, roles: perms{rClinician: related, rStaff: anyInPractice}},
	ContactWrite:    {kind: KindChart, patient: true, phi: true, roles: perms{rPatient: own, rClinician: related, rStaff: anyInPractice}},
	PatientRegister: {kind: KindPatient, phi: true, roles: perms{rStaff: anyInPractice}},
	PatientSearch:   {kind: KindPatient, phi: true, roles: perms{rStaff: anyInPractice}},
	PatientFind:     {kind: KindPatient, roles: perms{rStaff: anyInPractice, rAdmin: anyInPractice, rCompliance: anyInPractice}},

	CareTeamRead:     {kind: KindCareTeam, patient: true, phi: true, roles: perms{rPatient: own, rClinician: relatedOrBreakGlass, rStaff: anyInPractice, rAdmin: anyInPractice}},
	CareTeamManage:   {kind: KindCareTeam, patient: true, phi: true, roles: perms{rAdmin: anyInPractice}},
	CareTeamPatients: {kind: KindPatient, phi: true, roles: perms{rClinician: anyInPractice}},

	NoteRead:          {kind: KindNote, patient: true, phi: true, roles: perms{rPatient: own, rClinician: relatedOrBreakGlass, rStaff: grantedAndRelated}},
	NoteWrite:         {kind: KindNote, patient: true, phi: true, roles: perms{rClinician: relatedOrBreakGlass}},
	NoteSign:          {kind: KindNote, patient: true, phi: true, stepUp: true, roles: perms{rClinician: related}},
	MessageRead:       {kind: KindMessage, patient: true, phi: true, roles: perms{rPatient: own, rClinician: relatedOrBreakGlass, rStaff: anyInPractice}},
	MessageSend:       {kind: KindMessage, patient: true, phi: true, roles: perms{rPatient: own, rClinician: related, rStaff: anyInPractice}},
	MessageInbox:      {kind: KindMessage, phi: true, roles: perms{rClinician: anyInPractice, rStaff: anyInPractice}},
	MessageTriage:     {kind: KindMessage, patient: true, phi: true, roles: perms{rClinician: related, rStaff: anyInPractice}},
	FileRead:          {kind: KindFile, patient: true, phi: true, roles: perms{rPatient: own, rClinician: relatedOrBreakGlass, rStaff: grantedAndRelated}},
	FileUpload:        {kind: KindFile, patient: true, phi: true, roles: perms{rPatient: own, rClinician: related, rStaff: grantedAndRelated}},
	PrescriptionRead:  {kind: KindPrescription, patient: true, phi: true, roles: perms{rPatient: own, rClinician: relatedOrBreakGlass, rStaff: grantedAndRelated, rSystem: anyInPractice}},
	PrescriptionWrite: {kind: KindPrescription, patient: true, phi: true, stepUp: true, roles: perms{rClinician: related}},
	PrescriptionDraft: {kind: KindPrescription, patient: true, phi: true, roles: perms{rClinician: related}},
	LabRead:           {kind: KindLab, patient: true, phi: true, roles: perms{rPatient: own, rClinician: relatedOrBreakGlass, rStaff: grantedAndRelated, rSystem: anyInPractice}},
	LabOrder:          {kind: KindLab, patient: true, phi: true, roles: perms{rClinician: related}},
	ObservationRecord: {kind: KindLab, patient: true, phi: true, roles: perms{rPatient: own}},

	AmendmentRequest: {kind: KindAmendment, patient: true, phi: true, roles: perms{rPatient: own}},
	AmendmentRead:    {kind: KindAmendment, patient: true, phi: true, roles: perms{rPatient: own, rClinician: relatedOrBreakGlass}},
	AmendmentDecide:  {kind: KindAmendment, patient: true, phi: true, roles: perms{rClinician: related}},
	AmendmentQueue:   {kind: KindAmendment, roles: perms{rClinician: anyInPractice, rCompliance: anyInPractice}},

	VisitBook:    {kind: KindVisit, patient: true, phi: true, roles: perms{rPatient: own, rClinician: related, rStaff: anyInPractice}},
	VisitCancel:  {kind: KindVisit, patient: true, phi: true, roles: perms{rPatient: own, rClinician: related, rStaff: anyInPractice}},
	VisitRead:    {kind: KindVisit, patient: true, phi: true, roles: perms{rPatient: own, rClinician: relatedOrBreakGlass, rStaff: anyInPractice, rSystem: anyInPractice}},
	VisitQueue:   {kind: KindVisit, phi: true, roles: perms{rClinician: anyInPractice, rStaff: anyInPractice}},
	VisitCheckIn: {kind: KindVisit, patient: true, phi: true, roles: perms{rPatient: own, rStaff: anyInPractice}},
	VisitAdmit:   {kind: KindVisit, patient: true, phi: true, stepUp: true, roles: perms{rClinician: related}},
	VisitJoin:    {kind: KindVisit, patient: true, phi: true, roles: perms{rPatient: own, rClinician: related}},
	VisitEnd:     {kind: KindVisit, patient: true, phi: true, roles: perms{rClinician: related}},

	VisitReschedule: {kind: KindVisit, patient: true, phi: true, roles: perms{rPatient: own, rClinician: related, rStaff: anyInPractice}},

	ExportPatient:       {kind: KindChart, patient: true, phi: true, stepUp: true, roles: perms{rPatient: own}},
	AuditReadOwn:        {kind: KindAudit, patient: true, phi: true, roles: perms{rPatient: own}},
	AccessRequestManage: {kind: KindAccessRequest, patient: true, phi: true, roles: perms{rStaff: anyInPractice}},
	AccessRequestQueue:  {kind: KindAccessRequest, roles: perms{rStaff: anyInPractice, rCompliance: anyInPractice}},
	ExportForRequest:    {kind: KindChart, patient: true, phi: true, stepUp: true, purpose: PurposePatientRequest, roles: perms{rStaff: anyInPractice}},
	// Setting restrictions needs no step-up: a stolen session could lift
	// one, but it already reads everything the restriction guards.
	RestrictionsRead:  {kind: KindRestrictions, patient: true, phi: true, roles: perms{rPatient: own}},
	RestrictionsWrite: {kind: KindRestrictions, patient: true, phi: true, roles: perms{rPatient: own}},

	PaymentRead:   {kind: KindPayment, patient: true, phi: true, roles: perms{rPatient: own}},
	PaymentPay:    {kind: KindPayment, patient: true, phi: true, roles: perms{rPatient: own}},
	PaymentList:   {kind: KindPayment, roles: perms{rAdmin: anyInPractice}},
	PaymentRefund: {kind: KindPayment, stepUp: true, roles: perms{rAdmin: anyInPractice}},
	PaymentPrices: {kind: KindPayment, roles: perms{rAdmin: anyInPractice}},

	AuditSearch:        {kind: KindAudit, roles: perms{rCompliance: anyInPractice, rOperator: anyInPractice}},
	AuditVerify:        {kind: KindAudit, roles: perms{rCompliance: anyInPractice, rOperator: anyInPractice}},
	AlertReview:        {kind: KindAlert, roles: perms{rCompliance: anyInPractice, rOperator: anyInPractice}},
	BreakGlassRequest:  {kind: KindBreakGlass, patient: true, phi: true, stepUp: true, purpose: PurposeBreakGlass, roles: perms{rClinician: anyInPractice}},
	BreakGlassReview:   {kind: KindBreakGlass, roles: perms{rCompliance: anyInPractice}},
	IncidentManage:     {kind: KindIncident, roles: perms{rCompliance: anyInPractice}},
	IncidentContain:    {kind: KindIncident, stepUp: true, roles: perms{rCompliance: anyInPractice}},
	IncidentLetter:     {kind: KindIncident, roles: perms{rCompliance: anyInPractice}},
	BackupRestoreDrill: {kind: KindBackup, roles: perms{rCompliance: anyInPractice, rOperator: anyInPractice}},

	UserManage:       {kind: KindUser, roles: perms{rAdmin: anyInPractice, rOperator: anyInPractice}},
	RoleManage:       {kind: KindUser, stepUp: true, roles: perms{rAdmin: anyInPractice}},
	MFAReset:         {kind: KindUser, stepUp: true, roles: perms{rAdmin: anyInPractice, rOperator: anyInPractice}},
	PracticeSettings: {kind: KindPractice, stepUp: true, roles: perms{rAdmin: anyInPractice}},
	VendorRead:       {kind: KindVendor, roles: perms{rAdmin: anyInPractice, rCompliance: anyInPractice}},
	VendorManage:     {kind: KindVendor, stepUp: true, roles: perms{rAdmin: anyInPractice}},
	KeysManage:       {kind: KindKey, stepUp: true, roles: perms{rAdmin: anyInPractice, rOperator: anyInPractice}},

	TrainingTake:   {kind: KindTraining, roles: perms{rClinician: anyInPractice, rStaff: anyInPractice, rAdmin: anyInPractice, rCompliance: anyInPractice}},
	TrainingReport: {kind: KindTraining, roles: perms{rAdmin: anyInPractice, rCompliance: anyInPractice}},
	ContactVerify:  {kind: KindContact, patient: true, phi: true, roles: perms{rPatient: own}},

	PracticeProvision: {kind: KindPractice, stepUp: true, roles: perms{rOperator: anyInPractice}},
}

// perms is a table row's role column.
type perms = map[haven.Role]access

// Actions returns every known action, sorted.
func Actions() []Action {
	out := make([]Action, 0, len(table))
	for a := range table {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Valid reports whether a is a known action.
func (a Action) Valid() bool {
	_, ok := table[a]
	return ok
}

// Sensitivity is what an action risks, for callers that must prepare for it
// (the web layer asks for a step-up before the form, the audit layer flags
// PHI access).
type Sensitivity struct {
	Kind Kind
	// PatientScoped: the action concerns one patient's record; the resource
	// must name the patient.
	PatientScoped bool
	// PHI: the action reads or changes protected health information. Every
	// workforce action needs MFA (admin and oversight actions decide who
	// sees PHI, so they are guarded as strongly); PHI is what a practice
	// can additionally require MFA for from its patients.
	PHI bool
	// StepUp: the action needs an authentication no older than the step-up
	// window, so that a stolen or left-open session cannot prescribe,
	// export, break the glass, change roles or factors, admit to a visit,
	// or touch keys and security settings.
	StepUp bool
}

// Sensitivity returns a's sensitivity; the zero value for an unknown action.
func (a Action) Sensitivity() Sensitivity {
	r, ok := table[a]
	if !ok {
		return Sensitivity{}
	}
	return Sensitivity{Kind: r.kind, PatientScoped: r.patient, PHI: r.phi, StepUp: r.stepUp}
}

// Permits reports whether role's row in the permission table includes act
// at all, for pages that hide what a role can never do. It is never a
// substitute for Decide, which also weighs tenant, relationship,
// restrictions and authentication.
func Permits(role haven.Role, act Action) bool {
	return table[act].roles[role] != never
}

package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/session"
	"haven/keyring"
	"haven/policy"
	"haven/store/sqlstore"
)

// The evidence report: for each HIPAA safeguard Haven answers, what Haven
// does in plain words, the evidence this instance gives of it now
// (computed when the report is made, never remembered), a status with its
// reason, and the tests in the code that prove the control. It holds
// counts, dates and settings, never a patient: no PHI.
//
// The report is a list of controls, each with its own evidence function:
// a control that a later piece of Haven makes answerable (training
// records, incidents) replaces its entry and nothing else.

// ControlStatus is how a control stands in this instance.
type ControlStatus string

const (
	StatusMet       ControlStatus = "met"
	StatusAttention ControlStatus = "attention" // in force, but something needs a person's action
	StatusNotMet    ControlStatus = "not_met"
)

// Label is the status in plain words.
func (s ControlStatus) Label() string {
	switch s {
	case StatusMet:
		return "Met"
	case StatusAttention:
		return "Needs attention"
	}
	return "Not met"
}

// Fact is one piece of evidence: what was measured and its value, in words.
type Fact struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// ControlReport is one control as the report shows it.
type ControlReport struct {
	ID        string        `json:"id"` // the rule's citation, e.g. 164.312(b)
	Title     string        `json:"title"`
	Statement string        `json:"statement"` // the control as Haven implements it
	Evidence  []Fact        `json:"evidence"`
	Status    ControlStatus `json:"status"`
	Reason    string        `json:"reason"`
	Tests     []string      `json:"tests"` // test functions in the code that prove it
}

// ComplianceReport is a practice's evidence report.
type ComplianceReport struct {
	PracticeID string          `json:"practice_id"`
	Practice   string          `json:"practice"` // its name
	Generated  time.Time       `json:"generated"`
	Met        int             `json:"met"`
	Attention  int             `json:"attention"`
	NotMet     int             `json:"not_met"`
	Controls   []ControlReport `json:"controls"`
}

// Verdict is what a control's evidence function finds.
type Verdict struct {
	Evidence []Fact
	Status   ControlStatus
	Reason   string
}

// Control is one safeguard of the report: its words, the tests that prove
// it, and the function that gathers its evidence for one practice.
type Control struct {
	ID, Title, Statement string
	Tests                []string
	Evidence             func(context.Context, *ReportRun) (Verdict, error)
}

// ReportResourceID names the report in the audit event its generation is.
const ReportResourceID = "compliance_report"

// ActComplianceReport is the audit action of a report the operator makes
// from the command line.
const ActComplianceReport = "compliance.report"

// ComplianceReport makes the signed-in compliance officer's practice's
// report. Making it is decided (audit.verify: it verifies the practice's
// audit log among the rest) and audited as one event.
func (s *Service) ComplianceReport(ctx context.Context) (*ComplianceReport, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.AuditVerify, policy.Resource{Kind: policy.KindAudit, ID: ReportResourceID, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	if a.PracticeID == "" {
		return nil, haven.Errorf(haven.EINVALID, "the evidence report is a practice's: give the practice")
	}
	return s.complianceReport(ctx, a.PracticeID)
}

// OperatorComplianceReport makes a practice's report for the operator at
// the command line, audited in the practice's log as an operator event.
func (s *Service) OperatorComplianceReport(ctx context.Context, practiceID string) (*ComplianceReport, error) {
	if !haven.PlausibleID(practiceID) {
		return nil, haven.Errorf(haven.ENOTFOUND, "no such practice")
	}
	if _, err := s.db.FindPracticeByID(ctx, practiceID); err != nil {
		return nil, err
	}
	if _, err := s.record(ctx, OperatorEvent(practiceID, ActComplianceReport, string(policy.KindAudit), ReportResourceID, "")); err != nil {
		return nil, err
	}
	return s.complianceReport(ctx, practiceID)
}

func (s *Service) complianceReport(ctx context.Context, practiceID string) (*ComplianceReport, error) {
	p, err := s.db.FindPracticeByID(ctx, practiceID)
	if err != nil {
		return nil, err
	}
	ps, err := s.settings(ctx, practiceID)
	if err != nil {
		return nil, err
	}
	run := &ReportRun{s: s, PracticeID: practiceID, Now: s.now(), Settings: ps}
	rep := &ComplianceReport{PracticeID: p.ID, Practice: p.Name, Generated: run.Now, Controls: []ControlReport{}}
	for _, c := range Controls() {
		v, err := c.Evidence(ctx, run)
		if err != nil {
			return nil, haven.Wrap(haven.ErrorCode(err), err, "cannot gather the evidence of "+c.ID)
		}
		if v.Evidence == nil {
			v.Evidence = []Fact{}
		}
		rep.Controls = append(rep.Controls, ControlReport{ID: c.ID, Title: c.Title, Statement: c.Statement, Evidence: v.Evidence,
			Status: v.Status, Reason: v.Reason, Tests: append([]string{}, c.Tests...)})
		switch v.Status {
		case StatusMet:
			rep.Met++
		case StatusAttention:
			rep.Attention++
		default:
			rep.NotMet++
		}
	}
	return rep, nil
}

// ReportRun is one report being made: the practice, the moment, and what
// several controls share, read once.
type ReportRun struct {
	s          *Service
	PracticeID string
	Now        time.Time
	Settings   PracticeSettings

	mfa      *sqlstore.MFACoverage
	verified *audit.Report
	verErr   error
	verDone  bool
	keys     *keyring.PracticeReport
	vendors  []*haven.Vendor
	vendDone bool
	incs     []*haven.Incident
	incDone  bool
}

func (r *ReportRun) mfaCoverage(ctx context.Context) (sqlstore.MFACoverage, error) {
	if r.mfa == nil {
		c, err := r.s.db.MFACoverage(ctx, r.PracticeID)
		if err != nil {
			return c, haven.Wrap(haven.EUNAVAILABLE, err, "cannot count accounts")
		}
		r.mfa = &c
	}
	return *r.mfa, nil
}

// verify verifies the practice's audit log from scratch, once per run; a
// log that cannot be verified (no key configured) is an answer, not an
// error.
func (r *ReportRun) verify(ctx context.Context) (*audit.Report, error) {
	if !r.verDone {
		r.verified, r.verErr = r.s.audit.Verify(ctx, r.PracticeID)
		r.verDone = true
	}
	return r.verified, r.verErr
}

func (r *ReportRun) practiceKeys(ctx context.Context) (*keyring.PracticeReport, error) {
	if r.keys == nil {
		st, err := r.s.keys.Status(ctx)
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the key hierarchy")
		}
		r.keys = &keyring.PracticeReport{PracticeID: r.PracticeID}
		for i := range st.Practices {
			if st.Practices[i].PracticeID == r.PracticeID {
				r.keys = &st.Practices[i]
			}
		}
	}
	return r.keys, nil
}

func (r *ReportRun) practiceVendors(ctx context.Context) ([]*haven.Vendor, error) {
	if !r.vendDone {
		vs, err := r.s.db.Vendors(ctx, r.PracticeID, true)
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list vendors")
		}
		r.vendors, r.vendDone = vs, true
	}
	return r.vendors, nil
}

// The evidence's words.

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func ofTotal(n, total int) string {
	if total == 0 {
		return "none to count"
	}
	return fmt.Sprintf("%d of %d (%d%%)", n, total, n*100/total)
}

func reportDate(t time.Time) string { return t.UTC().Format("2006-01-02") }

func reportTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func reportDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return count(int(d/time.Hour), "hour", "hours")
	case d >= time.Minute && d%time.Minute == 0:
		return count(int(d/time.Minute), "minute", "minutes")
	}
	return d.Round(time.Second).String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func met(reason string) Verdict          { return Verdict{Status: StatusMet, Reason: reason} }
func (v Verdict) with(f ...Fact) Verdict { v.Evidence = append(v.Evidence, f...); return v }

// soonDays is how close a deadline must be to need attention.
const soonDays = 5

// staleReview is how long an alert or a break-glass use may wait for
// review before the report asks for attention.
const staleReview = 7 * 24 * time.Hour

// keyRotationDue is how old the active practice key may be before the
// report asks for a rotation: a year.
const keyRotationDue = 365 * 24 * time.Hour

// Controls returns the report's controls, in the order it shows them.
func Controls() []Control {
	return []Control{
		{ID: "164.312(a)(1)", Title: "Access control",
			Statement: "Every request that touches a record is decided by one policy table (role, relationship to the patient, purpose, recent authentication) before anything is opened, and every decision, allowed or refused, is written to the audit log first. A record of another practice is refused exactly as one that does not exist.",
			Tests:     []string{"TestEveryRoleActionAndRelationship", "TestClinicianWithoutRelationshipCannotBrowseCharts", "TestCrossPracticeDenialNamesNoOtherPracticesPatient", "TestSweepOtherPatientsAndPracticesIDs"},
			Evidence:  evidenceAccessControl},
		{ID: "164.312(a)(2)(i)", Title: "Unique user identification",
			Statement: "Every person signs in to an account of their own, found by their email address; every audit event names the account that acted. There are no shared or generic accounts.",
			Tests:     []string{"TestWorkforceSignInNeedsPasswordThenAnAuthenticator", "TestUnknownAndKnownEmailsGetTheSameAnswer", "TestAuditSearchKeepsToTheActorsLog"},
			Evidence:  evidenceUniqueUsers},
		{ID: "164.312(a)(2)(ii)", Title: "Emergency access procedure",
			Statement: "A clinician outside a patient's care team may open the record in an emergency (break-glass) after a fresh authentication and a written reason; the access lasts a short time and every use waits for the compliance officer's review.",
			Tests:     []string{"TestActiveBreakGlassGrantOpensReadsForReview", "TestExpiredBreakGlassGrantDenies", "TestBreakGlassRequestNeedsStepUp"},
			Evidence:  evidenceEmergencyAccess},
		{ID: "164.312(a)(2)(iii)", Title: "Automatic logoff",
			Statement: "Sessions end after a period without activity and after an absolute limit however active; the page warns first and clears patient details from view. A practice may shorten the platform's limits, never lengthen them.",
			Tests:     []string{"TestTimeouts", "TestActivityKeepsASessionAliveOnlyUntilItsAbsoluteEnd", "TestPracticeShortensSessionTimeouts", "TestBrowserIdleWarningClearsThePage"},
			Evidence:  evidenceLogoff},
		{ID: "164.312(a)(2)(iv)", Title: "Encryption and decryption",
			Statement: "Every patient detail and file is sealed (authenticated encryption) under the patient's own data key, wrapped by the practice's key, wrapped by the root key; storage sees only ciphertext. Shredding a patient's data key makes every copy unreadable.",
			Tests:     []string{"TestSealedValueHidesPlaintextAndRepeats", "TestPracticeKeyRotationRewrapsDataKeysAndRetiresOldVersion", "TestShreddedPatientCannotBeReadWhileOthersCan", "TestStatusHoldsNoKeyMaterial"},
			Evidence:  evidenceEncryption},
		{ID: "164.312(b)", Title: "Audit controls",
			Statement: "Every access decision and every change is appended to the practice's audit log before it takes effect: a Merkle tree whose batches are signed, with checkpoints published to witnesses outside the database, so a removed, edited or rolled-back entry is detected.",
			Tests:     []string{"TestAuditTamperEvidenceOnRealTables", "TestAuditVerifyCatchesTampering", "TestWitnessOnTheSameDiskAndMissingWitnessAreReported", "TestIndependentWitnessCosignsTheLogAndRefusesRollbacks"},
			Evidence:  evidenceAudit},
		{ID: "164.312(c)(1)", Title: "Integrity",
			Statement: "Sealed values are bound to the record and field they belong to, so a value edited or moved in the database fails to open; signed notes carry a signature checked when read; the audit log's tree proves it was not altered.",
			Tests:     []string{"TestFlippedBitAnywhereFailsToOpen", "TestSealedValueOpensOnlyWhereItBelongs", "TestASignedNoteEditedInTheDatabaseFailsItsCheck"},
			Evidence:  evidenceIntegrity},
		{ID: "164.312(c)(2)", Title: "Mechanism to authenticate electronic PHI",
			Statement: "Every opening of a sealed value authenticates it (a forged or altered value is refused, never shown); files are authenticated chunk by chunk as they are read.",
			Tests:     []string{"TestFlippedBitAnywhereFailsToOpen", "TestSealedFieldEncodingIsUnambiguous", "TestTamperedStreamFailsToOpen"},
			Evidence:  evidenceAuthenticateePHI},
		{ID: "164.312(d)", Title: "Person or entity authentication",
			Statement: "The workforce signs in with a password and a second factor (an authenticator app or a passkey), always; patients may be required to by the practice. Sensitive actions ask for a fresh authentication (step-up).",
			Tests:     []string{"TestWorkforceWithoutMFADenied", "TestWorkforceWithoutMFACannotReachPHI", "TestPasskeyIsASecondFactorAfterThePassword", "TestPracticeCanRequireMFAFromPatients"},
			Evidence:  evidenceAuthentication},
		{ID: "164.312(e)(1)", Title: "Transmission security",
			Statement: "Haven's server speaks TLS 1.3 only; the mail relay, object store, pharmacies and laboratories are reached over TLS, and nothing is sent to an outside system that is not registered.",
			Tests:     []string{"TestTLS12HandshakeIsRefused", "TestRelayWithoutSTARTTLSGetsNothing", "TestTLSIsTheDefault", "TestMLLPOverMutualTLS"},
			Evidence:  evidenceTransmission},
		{ID: "164.312(e)(2)", Title: "Integrity controls and encryption in transit",
			Statement: "TLS authenticates and encrypts every connection; laboratory results arrive over mutually authenticated TLS; video calls are encrypted end to end between the browsers.",
			Tests:     []string{"TestTLS12HandshakeIsRefused", "TestMLLPOverMutualTLS", "TestImplicitTLSRelay"},
			Evidence:  evidenceTransmissionEncryption},
		{ID: "164.308(a)(1)", Title: "Security management: risk analysis and management",
			Statement: "Haven watches its own audit log for risk (repeated refusals, access after hours, break-glass uses) and raises alerts for the compliance officer. The written risk analysis is the practice's own document; Haven supplies its evidence.",
			Tests:     []string{"TestRepeatedDenialsRaiseOneAlert", "TestAfterHoursAccessRaisesAlert"},
			Evidence:  evidenceRiskManagement},
		{ID: "164.308(a)(5)", Title: "Security awareness and training",
			Statement: "Each member of the workforce takes the security training (phishing, passwords and second factors, devices and networks, reporting incidents) with a quiz, renewed yearly; the practice can refuse patient records to anyone whose training has lapsed past a grace period.",
			Tests:     []string{"TestTrainingQuizGradesAndRecords", "TestTrainingReportNamesWhoIsDue", "TestTrainingGateRefusesAndRecovers"},
			Evidence:  evidenceTraining},
		{ID: "164.308(a)(6)", Title: "Security incident procedures",
			Statement: "Suspected incidents are recorded, scoped from the audit log, contained and decided on, with their evidence kept six years.",
			Tests:     []string{"TestIncidentAffectedPatientsComeFromTheAuditLog", "TestIncidentContainmentShutsTheAccountOut", "TestIncidentsHaveNoDeletePath"},
			Evidence:  evidenceIncidents},
		{ID: "164.308(a)(7)", Title: "Contingency plan: backups that restore",
			Statement: "Encrypted backups with a signed manifest; a restore never revives an erased patient; a restore drill restores the latest backup, verifies its audit log, opens a sample of records and records how long recovery took, against the practice's target.",
			Tests:     []string{"TestBackupRoundTrip", "TestBackupRestoreServesTheSameDataAndNeverRevivesAnErasure", "TestTamperedBackupIsRefused", "TestRestoreDrillStatusIsTheComplianceOfficers"},
			Evidence:  evidenceContingency},
		{ID: "164.308(b)", Title: "Business associate agreements",
			Statement: "Every outside system Haven sends to is registered with its agreement's dates and how much patient information it may receive; anything not covered by an agreement in force is refused before it leaves, and admins are told before an agreement ends.",
			Tests:     []string{"TestCheckEgressRefusesWhatNoAgreementCovers", "TestBAARemindersGoOutOnce", "TestOutsideSystemsAreGatedPerOperation"},
			Evidence:  evidenceBAA},
		{ID: "164.404–410", Title: "Breach notification",
			Statement: "For an incident decided to be a breach: the risk assessment, the 60-day clock from discovery, a letter per affected patient, and the notice to the regulator and media at 500 or more.",
			Tests:     []string{"TestBreachLettersHoldOnlyTheirPatient", "TestBreachNoticeRules"},
			Evidence:  evidenceBreach},
		{ID: "164.524", Title: "Right of access",
			Statement: "A patient downloads her whole record herself, at any time (a FHIR bundle with her files and a readable summary). Written requests are recorded by the front desk and tracked against the 30-day deadline.",
			Tests:     []string{"TestPatientExportsHerWholeRecordAsValidFHIR", "TestWrittenRequestIsTrackedAndAnsweredWithTheExport", "TestExportRefusesAnotherPatientAnotherPracticeAndAStaleSession"},
			Evidence:  evidenceAccessRequests},
		{ID: "164.526", Title: "Right to amend",
			Statement: "A patient asks for a correction of a signed note or her details; the clinician accepts it (a signed addendum) or denies it with a reason within 60 days (one 30-day extension), and the patient may file a disagreement.",
			Tests:     []string{"TestAmendmentRequestDenialAndDisagreement", "TestAnAcceptedAmendmentIsASignedAddendum"},
			Evidence:  evidenceAmendments},
		{ID: "164.528", Title: "Accounting of disclosures",
			Statement: "Every disclosure outside the practice (a prescription to a pharmacy, an order to a laboratory, a copy to another provider) is recorded in the audit log before it is sent, and listed for the patient with its date, recipient and purpose.",
			Tests:     []string{"TestDisclosuresListWhatLeftForThePharmacy", "TestDisclosuresListLabOrdersSentToTheLab"},
			Evidence:  evidenceDisclosures},
	}
}

func evidenceAccessControl(ctx context.Context, r *ReportRun) (Verdict, error) {
	c, err := r.mfaCoverage(ctx)
	if err != nil {
		return Verdict{}, err
	}
	return met("every access is decided by the policy table and audited; nothing in this instance bypasses it").with(
		Fact{"Actions the policy table decides", fmt.Sprint(len(policy.Actions()))},
		Fact{"Workforce accounts that can sign in", fmt.Sprint(c.Workforce)},
		Fact{"Patient accounts that can sign in", fmt.Sprint(c.Patients)}), nil
}

func evidenceUniqueUsers(ctx context.Context, r *ReportRun) (Verdict, error) {
	c, err := r.mfaCoverage(ctx)
	if err != nil {
		return Verdict{}, err
	}
	return met("accounts are personal by construction: one email address, one account").with(
		Fact{"Personal accounts that can sign in", fmt.Sprint(c.Workforce + c.Patients)}), nil
}

func evidenceEmergencyAccess(ctx context.Context, r *ReportRun) (Verdict, error) {
	gs, err := r.s.db.UnreviewedBreakGlassGrants(ctx, r.PracticeID)
	if err != nil {
		return Verdict{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list break-glass uses")
	}
	stale := 0
	oldest := time.Time{}
	for _, g := range gs {
		if oldest.IsZero() || g.Start.Before(oldest) {
			oldest = g.Start
		}
		if r.Now.Sub(g.Start) > staleReview {
			stale++
		}
	}
	v := met("every emergency access is waiting for, or has had, its review").with(Fact{"Break-glass uses waiting for review", fmt.Sprint(len(gs))})
	if !oldest.IsZero() {
		v = v.with(Fact{"The oldest waiting since", reportDate(oldest)})
	}
	if stale > 0 {
		v.Status, v.Reason = StatusAttention, count(stale, "break-glass use has", "break-glass uses have")+" waited more than 7 days for review"
	}
	return v, nil
}

// effectivePolicies are the session limits in force for the practice.
func (r *ReportRun) effectivePolicies() (workforce, patients session.Policy) {
	ps := r.Settings
	workforce = session.WorkforcePolicy.Within(session.Policy{Idle: time.Duration(ps.WorkforceIdle), Absolute: time.Duration(ps.WorkforceAbsolute)})
	patients = session.PatientPolicy.Within(session.Policy{Idle: time.Duration(ps.PatientIdle), Absolute: time.Duration(ps.PatientAbsolute), RequireMFA: ps.PatientsRequireMFA})
	return workforce, patients
}

func evidenceLogoff(ctx context.Context, r *ReportRun) (Verdict, error) {
	w, p := r.effectivePolicies()
	return met("idle and absolute limits are in force for every session").with(
		Fact{"Workforce: ends after inactivity", reportDuration(w.Idle)},
		Fact{"Workforce: ends however active after", reportDuration(w.Absolute)},
		Fact{"Patients: ends after inactivity", reportDuration(p.Idle)},
		Fact{"Patients: ends however active after", reportDuration(p.Absolute)},
		Fact{"Warning before the end", reportDuration(w.WarnBefore)}), nil
}

func evidenceEncryption(ctx context.Context, r *ReportRun) (Verdict, error) {
	k, err := r.practiceKeys(ctx)
	if err != nil {
		return Verdict{}, err
	}
	var active *keyring.KeyReport
	versions := 0
	for i := range k.Keys {
		if k.Keys[i].Kind != keyring.KindPractice {
			continue
		}
		versions++
		if k.Keys[i].State == keyring.StateActive {
			active = &k.Keys[i]
		}
	}
	v := met("patient data is sealed under a current practice key").with(
		Fact{"Patient data keys in use", fmt.Sprint(k.DataKeys)},
		Fact{"Patient data keys destroyed (erasures)", fmt.Sprint(k.DestroyedDataKeys)},
		Fact{"Practice key versions", fmt.Sprint(versions)})
	if active == nil {
		v.Status, v.Reason = StatusAttention, "the practice has no active key yet: nothing has been sealed for it"
		return v, nil
	}
	v = v.with(Fact{"Active practice key", fmt.Sprintf("version %d, created %s", active.Version, reportDate(active.CreatedAt))})
	var earlier []string
	for _, key := range k.Keys {
		if key.Kind == keyring.KindPractice && key.Version != active.Version {
			earlier = append(earlier, fmt.Sprintf("version %d created %s, %s", key.Version, reportDate(key.CreatedAt), key.State))
		}
	}
	if len(earlier) > 0 {
		v = v.with(Fact{"Earlier versions (rotations)", strings.Join(earlier, "; ")})
	}
	if age := r.Now.Sub(active.CreatedAt); age > keyRotationDue {
		v.Status, v.Reason = StatusAttention, fmt.Sprintf("the practice key is %d days old: rotate it (haven keys rotate --practice), at least yearly", int(age/(24*time.Hour)))
	}
	return v, nil
}

func evidenceAudit(ctx context.Context, r *ReportRun) (Verdict, error) {
	rep, err := r.verify(ctx)
	v := Verdict{Evidence: []Fact{{"Verified", reportTime(r.Now) + " (when this report was made)"}}}
	if err != nil {
		v.Status, v.Reason = StatusNotMet, "the audit log could not be verified: "+haven.ErrorMessage(err)
		return v, nil
	}
	witnessed, failing := 0, 0
	for _, w := range rep.Witnesses {
		if w.Err != nil {
			failing++
		} else if w.Warning == "" {
			witnessed++
		}
	}
	v = v.with(Fact{"Entries in the practice's log", fmt.Sprint(rep.Size)},
		Fact{"Signed checkpoints examined", fmt.Sprint(rep.Checkpoints)},
		Fact{"Entries vouched for by a signed checkpoint", fmt.Sprint(rep.Vouched)},
		Fact{"Witnesses configured", fmt.Sprint(len(r.s.audit.Witnesses()))},
		Fact{"Witnesses holding the log", fmt.Sprint(witnessed)})
	switch {
	case len(rep.Problems) > 0:
		first, _ := rep.First()
		v.Status, v.Reason = StatusNotMet, fmt.Sprintf("the audit log does not verify: %d problem(s), the first at entry %d", len(rep.Problems), first.Seq)
	case failing > 0:
		v.Status, v.Reason = StatusNotMet, count(failing, "witness", "witnesses")+" could not vouch for the log (unreachable, missing or behind)"
	case witnessed == 0:
		v.Status, v.Reason = StatusAttention, "the log verifies, but no witness outside the database holds it: a rollback could not be proven"
	case r.s.sameDisk:
		v.Status, v.Reason = StatusAttention, "the log verifies, but its only witnesses are on the same disk as the data: whoever can rewrite one can rewrite both (add a witness on another machine)"
	default:
		v.Status, v.Reason = StatusMet, "the log verifies from scratch and every witness holds it"
	}
	return v, nil
}

func evidenceIntegrity(ctx context.Context, r *ReportRun) (Verdict, error) {
	rep, err := r.verify(ctx)
	if err != nil {
		return Verdict{Status: StatusNotMet, Reason: "the audit log could not be verified: " + haven.ErrorMessage(err)}, nil
	}
	v := met("the audit log's tree verifies and every sealed value is authenticated when opened").with(
		Fact{"Audit log entries verified", fmt.Sprint(rep.Size)},
		Fact{"Batch seals examined", fmt.Sprint(rep.Seals)})
	if len(rep.Problems) > 0 {
		v.Status, v.Reason = StatusNotMet, "the audit log does not verify: an entry was altered or removed"
	}
	return v, nil
}

func evidenceAuthenticateePHI(ctx context.Context, r *ReportRun) (Verdict, error) {
	k, err := r.practiceKeys(ctx)
	if err != nil {
		return Verdict{}, err
	}
	return met("sealing is authenticated encryption: there is no way to open a value without checking it").with(
		Fact{"Patient data keys in use", fmt.Sprint(k.DataKeys)}), nil
}

func evidenceAuthentication(ctx context.Context, r *ReportRun) (Verdict, error) {
	c, err := r.mfaCoverage(ctx)
	if err != nil {
		return Verdict{}, err
	}
	_, p := r.effectivePolicies()
	v := met("every workforce account has a second factor").with(
		Fact{"Workforce with a second factor", ofTotal(c.WorkforceWithFactor, c.Workforce)},
		Fact{"Patients with a second factor", ofTotal(c.PatientsWithFactor, c.Patients)},
		Fact{"Second factor required of the workforce", "yes"},
		Fact{"Second factor required of patients", yesNo(p.RequireMFA)})
	var missing []string
	if n := c.Workforce - c.WorkforceWithFactor; n > 0 {
		missing = append(missing, count(n, "workforce account has", "workforce accounts have")+" no second factor yet (they must enrol one at their next sign-in)")
	}
	if n := c.Patients - c.PatientsWithFactor; n > 0 && p.RequireMFA {
		missing = append(missing, count(n, "patient account has", "patient accounts have")+" no second factor yet, which the practice requires")
	}
	if len(missing) > 0 {
		v.Status, v.Reason = StatusAttention, strings.Join(missing, "; ")
	}
	return v, nil
}

func evidenceTransmission(ctx context.Context, r *ReportRun) (Verdict, error) {
	vs, err := r.practiceVendors(ctx)
	if err != nil {
		return Verdict{}, err
	}
	active, plain := 0, 0
	for _, v := range vs {
		if !v.Retired.IsZero() {
			continue
		}
		active++
		if strings.HasPrefix(strings.ToLower(v.Endpoint), "http://") {
			plain++
		}
	}
	v := met("every connection Haven makes or accepts is over TLS").with(
		Fact{"Haven's server accepts", "TLS 1.3 only"},
		Fact{"Outside systems registered (in use)", fmt.Sprint(active)},
		Fact{"Of them reached without TLS (http://)", fmt.Sprint(plain)})
	if plain > 0 {
		v.Status, v.Reason = StatusAttention, count(plain, "outside system is", "outside systems are")+" registered at a plain http:// address"
	}
	return v, nil
}

func evidenceTransmissionEncryption(ctx context.Context, r *ReportRun) (Verdict, error) {
	v, err := evidenceTransmission(ctx, r)
	if err != nil || v.Status != StatusMet {
		return v, err
	}
	v.Reason = "TLS authenticates and encrypts every connection"
	return v, nil
}

func evidenceRiskManagement(ctx context.Context, r *ReportRun) (Verdict, error) {
	as, err := r.s.db.Alerts(ctx, r.PracticeID, false)
	if err != nil {
		return Verdict{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list alerts")
	}
	stale := 0
	for _, a := range as {
		if r.Now.Sub(a.CreatedAt) > staleReview {
			stale++
		}
	}
	v := met("detection runs on every audited access and its alerts are being reviewed").with(
		Fact{"Open alerts", fmt.Sprint(len(as))},
		Fact{"Open for more than 7 days", fmt.Sprint(stale)})
	if stale > 0 {
		v.Status, v.Reason = StatusAttention, count(stale, "alert has", "alerts have")+" been open more than 7 days"
	}
	return v, nil
}

// evidenceTraining counts the active workforce by training state (see
// trainingStatus): no one trained is not met; anyone overdue asks for
// attention, and the report says whether the practice makes current
// training a condition of PHI access.
func evidenceTraining(ctx context.Context, r *ReportRun) (Verdict, error) {
	users, err := r.s.db.ListUsers(ctx, r.PracticeID)
	if err != nil {
		return Verdict{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list the workforce")
	}
	done, err := r.s.db.LatestTraining(ctx, r.PracticeID, "")
	if err != nil {
		return Verdict{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load training")
	}
	workforce, inGrace, byState := 0, 0, map[string]int{}
	for _, u := range users {
		if !u.Role.Workforce() || u.Disabled {
			continue
		}
		workforce++
		st := r.s.trainingStatus(u, done, r.Settings)
		if st.State == TrainingDue && st.Lapsed {
			inGrace++
			continue
		}
		byState[st.State]++
	}
	required := "no"
	if r.Settings.TrainingRequired {
		required = fmt.Sprintf("yes, after a grace period of %s", reportDuration(time.Duration(r.Settings.TrainingGrace)))
	}
	v := met("the whole workforce's security training is current").with(
		Fact{"Workforce with current training", fmt.Sprintf("%d of %d", byState[TrainingCurrent], workforce)},
		Fact{"Expiring within 30 days", fmt.Sprint(byState[TrainingDue])},
		Fact{"Lapsed, within the grace period", fmt.Sprint(inGrace)},
		Fact{"Overdue", fmt.Sprint(byState[TrainingOverdue])},
		Fact{"Current training required before patient records", required})
	switch {
	case len(done) == 0:
		v.Status, v.Reason = StatusNotMet, "no training records: no one in the workforce has completed the security training"
	case byState[TrainingOverdue] > 0:
		v.Status, v.Reason = StatusAttention, count(byState[TrainingOverdue], "member of the workforce is", "members of the workforce are")+" overdue for security training"
	case inGrace > 0:
		v.Status, v.Reason = StatusAttention, count(inGrace, "member's training has", "members' training has")+" lapsed and is within the grace period"
	case !r.Settings.TrainingRequired:
		v.Status, v.Reason = StatusAttention, "training is current, but the practice does not require it before access to patient records"
	}
	return v, nil
}

// reportIncidents bounds the incidents a report reads: a practice with more
// than this many in six years has a different problem than its report.
const reportIncidents = 1000

// incidents lists the practice's incidents once per run, with plain state
// only (nothing sealed is opened for the report).
func (r *ReportRun) incidents(ctx context.Context) ([]*haven.Incident, error) {
	if !r.incDone {
		is, err := r.s.db.PracticeIncidents(ctx, r.PracticeID, reportIncidents)
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list incidents")
		}
		r.incs, r.incDone = is, true
	}
	return r.incs, nil
}

// evidenceIncidents: incidents are recorded and decided; one left open
// for long, or an alert older than a week with no incident or review, asks
// for attention.
func evidenceIncidents(ctx context.Context, r *ReportRun) (Verdict, error) {
	is, err := r.incidents(ctx)
	if err != nil {
		return Verdict{}, err
	}
	open, stale, contained := 0, 0, 0
	for _, i := range is {
		if i.ContainedAt != nil {
			contained++
		}
		if i.State == haven.IncidentDecided {
			continue
		}
		open++
		if r.Now.Sub(i.Discovered) > 30*24*time.Hour {
			stale++
		}
	}
	v := met("incidents are recorded, scoped from the audit log, contained and decided").with(
		Fact{"Incidents recorded (kept six years)", fmt.Sprint(len(is))},
		Fact{"Open (not yet decided)", fmt.Sprint(open)},
		Fact{"Contained", fmt.Sprint(contained)})
	if stale > 0 {
		v.Status, v.Reason = StatusAttention, count(stale, "incident has", "incidents have")+" been open more than 30 days without a decision"
	}
	return v, nil
}

// evidenceBreach: every breach's letters go out within 60 days of
// discovery; a letter still drafted or returned near or past the deadline
// is a finding.
func evidenceBreach(ctx context.Context, r *ReportRun) (Verdict, error) {
	is, err := r.incidents(ctx)
	if err != nil {
		return Verdict{}, err
	}
	breaches, media, unsent, late := 0, 0, 0, 0
	for _, i := range is {
		if i.Decision != haven.DecisionBreach {
			continue
		}
		breaches++
		if mediaNotice(i.Affected) {
			media++
		}
		ls, err := r.s.db.IncidentLetters(ctx, i.ID)
		if err != nil {
			return Verdict{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list breach letters")
		}
		deadline := noticeDeadline(i.Discovered)
		for _, l := range ls {
			switch {
			case l.State != haven.LetterSent && r.Now.After(deadline):
				late++
				unsent++
			case l.State != haven.LetterSent:
				unsent++
			case l.SentAt != nil && l.SentAt.After(deadline):
				late++
			}
		}
	}
	v := met("breaches are assessed and every affected patient is notified within 60 days").with(
		Fact{"Incidents decided to be breaches", fmt.Sprint(breaches)},
		Fact{"Of them 500 or more patients (media and regulator notice)", fmt.Sprint(media)},
		Fact{"Letters not yet sent (drafted or returned)", fmt.Sprint(unsent)},
		Fact{"Letters past the 60-day deadline", fmt.Sprint(late)})
	switch {
	case late > 0:
		v.Status, v.Reason = StatusNotMet, count(late, "notification letter is", "notification letters are")+" past the 60-day deadline"
	case unsent > 0:
		v.Status, v.Reason = StatusAttention, count(unsent, "notification letter is", "notification letters are")+" not sent yet"
	}
	return v, nil
}

func evidenceContingency(ctx context.Context, r *ReportRun) (Verdict, error) {
	target := haven.DefaultRecoveryTarget
	if r.Settings.RecoveryTarget > 0 {
		target = time.Duration(r.Settings.RecoveryTarget)
	}
	v := Verdict{Evidence: []Fact{{"The practice's recovery target", reportDuration(target)}}}
	d, err := r.s.db.LatestRestoreDrill(ctx)
	switch haven.ErrorCode(err) {
	case "":
	case haven.ENOTFOUND:
		v.Status, v.Reason = StatusNotMet, "no restore drill has been run (haven backup drill)"
		return v, nil
	default:
		return Verdict{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the restore drills")
	}
	v = v.with(Fact{"Last restore drill", reportTime(d.StartedAt)},
		Fact{"Its result", map[bool]string{true: "succeeded", false: "failed"}[d.OK]},
		Fact{"Recovery time", d.Duration.Round(time.Second).String()},
		Fact{"Backup it restored, made", reportTime(d.BackupCreated)},
		Fact{"Audit logs verified / records opened", fmt.Sprintf("%d / %d", d.AuditLogs, d.RecordsOpened)})
	switch {
	case !d.OK:
		v.Status, v.Reason = StatusNotMet, "the last restore drill failed"
	case !d.WithinTarget(target):
		v.Status, v.Reason = StatusNotMet, "the last restore drill took longer than the recovery target"
	case r.Now.Sub(d.StartedAt) > 365*24*time.Hour:
		v.Status, v.Reason = StatusAttention, "the last restore drill is more than a year old"
	default:
		v.Status, v.Reason = StatusMet, "the last restore drill succeeded within the target"
	}
	return v, nil
}

func evidenceBAA(ctx context.Context, r *ReportRun) (Verdict, error) {
	vs, err := r.practiceVendors(ctx)
	if err != nil {
		return Verdict{}, err
	}
	active, covered, none, expired, missing, soon := 0, 0, 0, 0, 0, 0
	for _, v := range vs {
		if !v.Retired.IsZero() {
			continue
		}
		active++
		end := v.BAAEnd()
		switch {
		case !end.IsZero() && !r.Now.Before(end):
			expired++
		case v.PHI == haven.PHINone && end.IsZero():
			none++
		case end.IsZero():
			missing++
		default:
			covered++
			if end.Sub(r.Now) <= haven.BAAReminderLead {
				soon++
			}
		}
	}
	v := met("every outside system that may receive patient information has an agreement in force").with(
		Fact{"Outside systems registered (in use)", fmt.Sprint(active)},
		Fact{"Covered by an agreement in force", fmt.Sprint(covered)},
		Fact{"Receiving no patient information (no agreement needed)", fmt.Sprint(none)},
		Fact{"Agreement ended", fmt.Sprint(expired)},
		Fact{"No agreement on file", fmt.Sprint(missing)},
		Fact{"Agreement ending within 30 days", fmt.Sprint(soon)})
	var why []string
	if expired > 0 {
		why = append(why, count(expired, "agreement has", "agreements have")+" ended")
	}
	if missing > 0 {
		why = append(why, count(missing, "system has", "systems have")+" no agreement on file")
	}
	if soon > 0 {
		why = append(why, count(soon, "agreement ends", "agreements end")+" within 30 days")
	}
	if len(why) > 0 {
		// Haven sends such a system nothing (CheckEgress), so no patient
		// information is leaving uncovered: it is the paperwork that needs
		// a person.
		v.Status, v.Reason = StatusAttention, strings.Join(why, "; ")+" (Haven sends nothing an agreement does not cover)"
	}
	return v, nil
}

func evidenceAccessRequests(ctx context.Context, r *ReportRun) (Verdict, error) {
	rows, err := r.s.db.PracticeAccessRequests(ctx, r.PracticeID, maxAccessList)
	if err != nil {
		return Verdict{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list the requests")
	}
	open, late, soon, answered, answeredLate := 0, 0, 0, 0, 0
	for _, q := range rows {
		if q.PracticeID != r.PracticeID {
			continue
		}
		if q.Fulfilled != nil {
			answered++
			if q.Fulfilled.After(q.Due) {
				answeredLate++
			}
			continue
		}
		open++
		switch left := q.Due.Sub(r.Now); {
		case left < 0:
			late++
		case left <= soonDays*24*time.Hour:
			soon++
		}
	}
	v := met("every written request was answered, or is open within its 30 days").with(
		Fact{"Open written requests", fmt.Sprint(open)},
		Fact{"Open past the 30-day deadline", fmt.Sprint(late)},
		Fact{"Due within 5 days", fmt.Sprint(soon)},
		Fact{"Answered", fmt.Sprint(answered)},
		Fact{"Answered after the deadline", fmt.Sprint(answeredLate)},
		Fact{"Patients download their own record", "at any time, from their account"})
	downloads, err := r.countEvents(ctx, haven.AuditQuery{Action: string(policy.ExportPatient), Decision: haven.DecisionAllow, Since: r.Now.AddDate(-1, 0, 0)}, false)
	if err != nil {
		return Verdict{}, err
	}
	v = v.with(Fact{"Records downloaded by patients in the last 12 months", fmt.Sprint(downloads)})
	switch {
	case late > 0:
		v.Status, v.Reason = StatusNotMet, count(late, "request is", "requests are")+" past the 30-day deadline"
	case soon > 0:
		v.Status, v.Reason = StatusAttention, count(soon, "request is", "requests are")+" due within 5 days"
	}
	return v, nil
}

func evidenceAmendments(ctx context.Context, r *ReportRun) (Verdict, error) {
	ams, err := r.s.db.PracticeAmendments(ctx, r.PracticeID, amendmentQueue)
	if err != nil {
		return Verdict{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list amendment requests")
	}
	open, late, soon, extended, accepted, denied := 0, 0, 0, 0, 0, 0
	for _, am := range ams {
		if am.PracticeID != r.PracticeID {
			continue
		}
		switch am.State {
		case haven.AmendmentAccepted:
			accepted++
			continue
		case haven.AmendmentDenied:
			denied++
			continue
		}
		open++
		if am.Extension != nil {
			extended++
		}
		switch left := time.UnixMicro(am.DueUS).Sub(r.Now); {
		case left < 0:
			late++
		case left <= soonDays*24*time.Hour:
			soon++
		}
	}
	v := met("every amendment request was decided, or is open within its deadline").with(
		Fact{"Open amendment requests", fmt.Sprint(open)},
		Fact{"Open past their deadline", fmt.Sprint(late)},
		Fact{"Due within 5 days", fmt.Sprint(soon)},
		Fact{"Open with the one extension taken", fmt.Sprint(extended)},
		Fact{"Accepted", fmt.Sprint(accepted)},
		Fact{"Denied", fmt.Sprint(denied)})
	switch {
	case late > 0:
		v.Status, v.Reason = StatusNotMet, count(late, "request is", "requests are")+" past the deadline"
	case soon > 0:
		v.Status, v.Reason = StatusAttention, count(soon, "request is", "requests are")+" due within 5 days"
	}
	return v, nil
}

func evidenceDisclosures(ctx context.Context, r *ReportRun) (Verdict, error) {
	counts := map[string]int{}
	for _, act := range []string{ActRxTransmit, ActLabTransmit} {
		n, err := r.countEvents(ctx, haven.AuditQuery{Action: act, Decision: haven.DecisionAllow}, true)
		if err != nil {
			return Verdict{}, err
		}
		counts[act] = n
	}
	return met("every disclosure is recorded in the audit log before it leaves, and listed for the patient from it").with(
		Fact{"Prescriptions and cancellations sent to pharmacies", fmt.Sprint(counts[ActRxTransmit])},
		Fact{"Lab orders sent to laboratories", fmt.Sprint(counts[ActLabTransmit])}), nil
}

// countEvents counts the practice log's events matching q (LogID is set
// here), paging backwards; with distinct, events of the same record and
// reason count once (a retried sending is one disclosure).
func (r *ReportRun) countEvents(ctx context.Context, q haven.AuditQuery, distinct bool) (int, error) {
	q.LogID, q.Limit = r.PracticeID, 500
	seen := map[string]bool{}
	n := 0
	for {
		page, err := r.s.db.SearchAudit(ctx, q)
		if err != nil {
			return 0, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the audit log")
		}
		for _, e := range page {
			if !distinct {
				n++
			} else if k := e.ResourceID + "/" + e.Reason; !seen[k] {
				seen[k] = true
				n++
			}
		}
		if len(page) < q.Limit {
			return n, nil
		}
		q.BeforeSeq = page[len(page)-1].Seq
	}
}

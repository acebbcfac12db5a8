package service

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"haven"
	"haven/auth/session"
	"haven/policy"
)

// PracticeSettings are a practice's own policy knobs and detection
// thresholds. They hold no PHI.
type PracticeSettings struct {
	PatientsRequireMFA bool     `json:"patients_require_mfa"`
	StepUpMaxAge       Duration `json:"step_up_max_age,omitempty"`
	ClinicalAccess     []string `json:"clinical_access,omitempty"` // staff user ids granted clinical read access

	// SelfRegistration opens the practice's public registration page
	// (/register/{practice id}), where patients create their own account
	// after proving their email address. Off by default: a practice that
	// turns it on takes patients its front desk has not met.
	SelfRegistration bool `json:"self_registration"`

	// Session timeouts of the practice's own. They only shorten the
	// platform's defaults (workforce 15 min idle / 12 h absolute, patients
	// 30 min / 24 h); zero keeps the default.
	WorkforceIdle     Duration `json:"workforce_idle,omitempty"`
	WorkforceAbsolute Duration `json:"workforce_absolute,omitempty"`
	PatientIdle       Duration `json:"patient_idle,omitempty"`
	PatientAbsolute   Duration `json:"patient_absolute,omitempty"`

	// VisitReminderLead is how long before a booked visit its patient is
	// emailed a reminder (see visits_remind.go); zero keeps
	// DefaultReminderLead.
	VisitReminderLead Duration `json:"visit_reminder_lead,omitempty"`

	// NoteReleaseDays is how many days after signing a visit note its
	// patient may read it: 0 (the default) releases it at once.
	NoteReleaseDays int `json:"note_release_days"`
	// MaxUploadMiB is the largest file the practice accepts, in MiB,
	// between 1 and MaxFileSize; zero keeps DefaultMaxUploadMiB. Photos
	// and DICOM images are bounded by media.MaxDecodedBytes too.
	MaxUploadMiB int `json:"max_upload_mib,omitempty"`
	// RecoveryTarget is how soon the practice needs its records back after
	// a disaster; restore drills are measured against it. Zero keeps
	// haven.DefaultRecoveryTarget (72 hours).
	RecoveryTarget Duration `json:"recovery_target,omitempty"`

	// TrainingRequired refuses the workforce any PHI access once their
	// security training (training.go) has lapsed for longer than
	// TrainingGrace. TrainingRequiredSince is when it was turned on (set by
	// UpdateSettings): a member who never trained is due from then, or from
	// their account's creation if later.
	TrainingRequired      bool      `json:"training_required"`
	TrainingGrace         Duration  `json:"training_grace,omitempty"`
	TrainingRequiredSince time.Time `json:"training_required_since,omitzero"`

	// WorkforceNetworks, when set, are the only networks (CIDR) the
	// practice's workforce may act from; patients are not held to them
	// (network.go).
	WorkforceNetworks []string `json:"workforce_networks,omitempty"`

	// Detection thresholds (see detect.go).
	BulkAccessPatients int      `json:"bulk_access_patients"` // distinct patients by one user …
	BulkAccessWindow   Duration `json:"bulk_access_window"`   // … within this window raise an alert
	DenialsThreshold   int      `json:"denials_threshold"`    // denials by one user …
	DenialsWindow      Duration `json:"denials_window"`       // … within this window raise an alert
	WorkdayStartHour   int      `json:"workday_start_hour"`   // PHI access by the workforce outside
	WorkdayEndHour     int      `json:"workday_end_hour"`     // [start, end) in TimeZone raises an alert
	TimeZone           string   `json:"time_zone"`
}

// DefaultMaxUploadMiB is a practice's upload limit until its admin sets
// one: room for scanned documents and DICOM images, well above a phone's
// photo.
const DefaultMaxUploadMiB = 100

// MaxUpload is the practice's upload limit in bytes.
func (p PracticeSettings) MaxUpload() int64 {
	if p.MaxUploadMiB <= 0 {
		return DefaultMaxUploadMiB << 20
	}
	return min(int64(p.MaxUploadMiB)<<20, MaxFileSize)
}

// Duration is a time.Duration that reads and writes as "15m" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// DefaultSettings are what a practice gets until its admin changes them.
func DefaultSettings() PracticeSettings {
	return PracticeSettings{
		BulkAccessPatients: 20, BulkAccessWindow: Duration(10 * time.Minute),
		DenialsThreshold: 10, DenialsWindow: Duration(10 * time.Minute),
		WorkdayStartHour: 7, WorkdayEndHour: 19, TimeZone: "UTC",
	}
}

// Ranges of the settings. A value outside them is refused, not clamped: a
// detection threshold of 2^62, or a window of a century or a nanosecond,
// would switch a detection rule off while looking configured.
const (
	MaxDetectionThreshold = 10_000              // distinct patients, or denials, before an alert
	MinDetectionWindow    = time.Minute         // detection windows …
	MaxDetectionWindow    = 24 * time.Hour      // … are between these
	maxClinicalAccess     = 1000                // staff ids in ClinicalAccess
	maxTimeZone           = 64                  // bytes of an IANA zone name
	MaxNoteReleaseDays    = 90                  // the longest a signed note may wait for its patient
	MaxTrainingGrace      = 90 * 24 * time.Hour // the longest lapsed training may still open records
)

// Validate checks settings before they are stored. Every number has a
// range and the message says it.
func (p PracticeSettings) Validate() error {
	switch {
	case p.BulkAccessPatients < 2 || p.BulkAccessPatients > MaxDetectionThreshold ||
		p.DenialsThreshold < 2 || p.DenialsThreshold > MaxDetectionThreshold:
		return haven.Errorf(haven.EINVALID, "detection thresholds must be between 2 and %d", MaxDetectionThreshold)
	case time.Duration(p.BulkAccessWindow) < MinDetectionWindow || time.Duration(p.BulkAccessWindow) > MaxDetectionWindow ||
		time.Duration(p.DenialsWindow) < MinDetectionWindow || time.Duration(p.DenialsWindow) > MaxDetectionWindow:
		return haven.Errorf(haven.EINVALID, "detection windows must be between %s and %s", MinDetectionWindow, MaxDetectionWindow)
	case p.WorkdayStartHour < 0 || p.WorkdayStartHour > 23 || p.WorkdayEndHour < 1 || p.WorkdayEndHour > 24 || p.WorkdayStartHour >= p.WorkdayEndHour:
		return haven.Errorf(haven.EINVALID, "working hours must satisfy 0 <= start < end <= 24")
	case p.StepUpMaxAge < 0 || time.Duration(p.StepUpMaxAge) > policy.DefaultStepUpMaxAge:
		return haven.Errorf(haven.EINVALID, "step-up age may shorten, not lengthen, the default %s", policy.DefaultStepUpMaxAge)
	case p.NoteReleaseDays < 0 || p.NoteReleaseDays > MaxNoteReleaseDays:
		return haven.Errorf(haven.EINVALID, "notes are released to patients 0 to %d days after signing", MaxNoteReleaseDays)
	case p.MaxUploadMiB < 0 || p.MaxUploadMiB > MaxFileSize>>20:
		return haven.Errorf(haven.EINVALID, "the upload limit must be between 1 and %d MiB, or 0 for the default (%d MiB)", MaxFileSize>>20, DefaultMaxUploadMiB)
	case p.TrainingGrace < 0 || time.Duration(p.TrainingGrace) > MaxTrainingGrace:
		return haven.Errorf(haven.EINVALID, "the training grace period must be between 0 and %d days", int(MaxTrainingGrace.Hours()/24))
	case p.VisitReminderLead != 0 && (time.Duration(p.VisitReminderLead) < MinReminderLead || time.Duration(p.VisitReminderLead) > MaxReminderLead):
		return haven.Errorf(haven.EINVALID, "the visit reminder lead must be between %s and %s", MinReminderLead, MaxReminderLead)
	}
	// Session timeouts only shorten the platform's defaults; zero keeps one.
	for _, t := range []struct {
		d   Duration
		max time.Duration
	}{
		{p.WorkforceIdle, session.WorkforcePolicy.Idle}, {p.WorkforceAbsolute, session.WorkforcePolicy.Absolute},
		{p.PatientIdle, session.PatientPolicy.Idle}, {p.PatientAbsolute, session.PatientPolicy.Absolute},
	} {
		if t.d != 0 && (time.Duration(t.d) < time.Minute || time.Duration(t.d) > t.max) {
			return haven.Errorf(haven.EINVALID, "session timeouts must be between 1m0s and the platform's default (workforce %s idle, %s absolute; patients %s idle, %s absolute), or 0 for the default",
				session.WorkforcePolicy.Idle, session.WorkforcePolicy.Absolute, session.PatientPolicy.Idle, session.PatientPolicy.Absolute)
		}
	}
	if _, err := parseNetworks(p.WorkforceNetworks); err != nil {
		return err
	}
	if len(p.ClinicalAccess) > maxClinicalAccess {
		return haven.Errorf(haven.EINVALID, "clinical access may name at most %d staff members", maxClinicalAccess)
	}
	for _, id := range p.ClinicalAccess {
		if !haven.PlausibleID(id) {
			return haven.Errorf(haven.EINVALID, "clinical access must list user ids")
		}
	}
	// "Local" is the server's own zone, not the practice's.
	if len(p.TimeZone) > maxTimeZone || p.TimeZone == "Local" {
		return haven.Errorf(haven.EINVALID, "time zone must be an IANA name such as America/Chicago")
	}
	if _, err := time.LoadLocation(p.TimeZone); err != nil {
		return haven.Errorf(haven.EINVALID, "unknown time zone; use an IANA name such as America/Chicago")
	}
	return nil
}

// settings loads a practice's settings, or the defaults.
func (s *Service) settings(ctx context.Context, practiceID string) (PracticeSettings, error) {
	ps := DefaultSettings()
	if practiceID == "" {
		return ps, nil
	}
	doc, err := s.db.PracticeSettings(ctx, practiceID)
	if err != nil {
		return ps, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load practice settings")
	}
	return ParseSettings(doc)
}

// sessionSettingsKey marks a context that carries a practice's settings
// document as the request's session check read it (WithSessionSettings).
type sessionSettingsKey struct{}

type sessionSettings struct{ practiceID, doc string }

// WithSessionSettings returns ctx carrying practiceID's settings document
// doc as the request's session check read it, in the session's own
// statement (sqlstore's SessionRecordByTokenHash): a decision in this
// request takes its settings from there instead of reading them again.
// Keep it to the request, as the session check is: the next request reads
// both afresh, whichever node changed them.
func WithSessionSettings(ctx context.Context, practiceID, doc string) context.Context {
	return context.WithValue(ctx, sessionSettingsKey{}, sessionSettings{practiceID, doc})
}

// decisionSettings are practiceID's settings for a decision: the ones read
// with the request's session when they are that practice's, else read now.
func (s *Service) decisionSettings(ctx context.Context, practiceID string) (PracticeSettings, error) {
	if r, ok := ctx.Value(sessionSettingsKey{}).(sessionSettings); ok && practiceID != "" && r.practiceID == practiceID {
		return ParseSettings(r.doc)
	}
	return s.settings(ctx, practiceID)
}

// ParseSettings reads a practice's stored settings document ("" for a
// practice that has set none: the defaults). Storage hands the document
// over with the reads that need it (a session's check, a decision's
// facts), so settings cost no round trip of their own and are never
// cached: a change on any node applies from the next request on. What is
// remembered is only the parse of a document already seen (parsed), keyed
// by its whole text: a changed document is another key, so it can never
// answer for a newer one.
func ParseSettings(doc string) (PracticeSettings, error) {
	if doc == "" {
		return DefaultSettings(), nil
	}
	if ps, ok := parsed.get(doc); ok {
		return ps, nil
	}
	ps := DefaultSettings()
	if err := json.Unmarshal([]byte(doc), &ps); err != nil {
		return ps, haven.Wrap(haven.EINTERNAL, err, "practice settings are unreadable")
	}
	parsed.put(doc, ps)
	return ps, nil
}

// parsed remembers settings documents by their text. Every request parses
// its practice's document twice (the session's check, the decision), and
// decoding JSON cost more than the rest of both; the documents of a
// deployment are few and rarely change.
var parsed = settingsMemo{m: map[string]PracticeSettings{}}

// maxParsedSettings bounds the memo: past it, it starts again empty
// (documents of practices long changed or gone are not kept forever).
const maxParsedSettings = 4096

type settingsMemo struct {
	mu sync.RWMutex
	m  map[string]PracticeSettings
}

// get returns doc's settings, with slices of their own: a caller that
// changes its copy cannot change another's.
func (c *settingsMemo) get(doc string) (PracticeSettings, bool) {
	c.mu.RLock()
	ps, ok := c.m[doc]
	c.mu.RUnlock()
	ps.ClinicalAccess, ps.WorkforceNetworks = slices.Clone(ps.ClinicalAccess), slices.Clone(ps.WorkforceNetworks)
	return ps, ok
}

func (c *settingsMemo) put(doc string, ps PracticeSettings) {
	ps.ClinicalAccess, ps.WorkforceNetworks = slices.Clone(ps.ClinicalAccess), slices.Clone(ps.WorkforceNetworks)
	c.mu.Lock()
	if len(c.m) >= maxParsedSettings {
		clear(c.m)
	}
	c.m[doc] = ps
	c.mu.Unlock()
}

// UpdateSettings replaces the actor's practice settings (practice admin,
// with a recent step-up).
func (s *Service) UpdateSettings(ctx context.Context, ps PracticeSettings) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	if err := ps.Validate(); err != nil {
		return err
	}
	if _, _, err := s.authorize(ctx, policy.PracticeSettings, policy.Resource{Kind: policy.KindPractice, ID: a.PracticeID, PracticeID: a.PracticeID}); err != nil {
		return err
	}
	nets, _ := parseNetworks(ps.WorkforceNetworks) // validated above
	if err := checkOwnNetwork(a, nets); err != nil {
		return err
	}
	// When the training requirement is turned on is the practice's fact,
	// not the caller's: kept while it stays on, set when it is turned on.
	old, err := s.settings(ctx, a.PracticeID)
	if err != nil {
		return err
	}
	switch {
	case !ps.TrainingRequired:
		ps.TrainingRequiredSince = time.Time{}
	case old.TrainingRequired && !old.TrainingRequiredSince.IsZero():
		ps.TrainingRequiredSince = old.TrainingRequiredSince
	default:
		ps.TrainingRequiredSince = s.now().UTC()
	}
	b, _ := json.Marshal(ps)
	return s.db.PutPracticeSettings(ctx, a.PracticeID, string(b))
}

// Settings returns the actor's practice settings (not PHI; any workforce
// member of the practice with MFA may read them, patients may not: the
// detection thresholds are not for everyone to know).
func (s *Service) Settings(ctx context.Context) (PracticeSettings, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return PracticeSettings{}, err
	}
	if !a.Role.Workforce() || !a.MFA || a.PracticeID == "" {
		return PracticeSettings{}, haven.Errorf(haven.EFORBIDDEN, "practice settings are for the practice's workforce")
	}
	return s.settings(ctx, a.PracticeID)
}

package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/service"
	"haven/store/sqlstore"
)

// TestPracticeSettingsAreBounded: every number a practice admin sets has a
// range, and a value outside it is refused (never clamped) with a message
// that gives the range. A threshold of 2^62 or a window of a nanosecond
// would switch a detection rule off while looking configured.
func TestPracticeSettingsAreBounded(t *testing.T) {
	if err := service.DefaultSettings().Validate(); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*service.PracticeSettings)
		says   string
	}{
		"BulkThreshold2To62":   {func(p *service.PracticeSettings) { p.BulkAccessPatients = 1 << 62 }, "between 2 and 10000"},
		"BulkThresholdOne":     {func(p *service.PracticeSettings) { p.BulkAccessPatients = 1 }, "between 2 and 10000"},
		"DenialThresholdHuge":  {func(p *service.PracticeSettings) { p.DenialsThreshold = service.MaxDetectionThreshold + 1 }, "between 2 and 10000"},
		"BulkWindowCentury":    {func(p *service.PracticeSettings) { p.BulkAccessWindow = service.Duration(100 * 365 * 24 * time.Hour) }, "between 1m0s and 24h0m0s"},
		"DenialWindowNanosec":  {func(p *service.PracticeSettings) { p.DenialsWindow = 1 }, "between 1m0s and 24h0m0s"},
		"WorkforceIdleLonger":  {func(p *service.PracticeSettings) { p.WorkforceIdle = service.Duration(16 * time.Minute) }, "platform's default"},
		"PatientAbsoluteYear":  {func(p *service.PracticeSettings) { p.PatientAbsolute = service.Duration(365 * 24 * time.Hour) }, "platform's default"},
		"SessionSecond":        {func(p *service.PracticeSettings) { p.PatientIdle = service.Duration(time.Second) }, "between 1m0s"},
		"ClinicalAccessNotIDs": {func(p *service.PracticeSettings) { p.ClinicalAccess = []string{"staff\x00"} }, "user ids"},
		"ClinicalAccessFlood": {func(p *service.PracticeSettings) {
			for range 1001 {
				p.ClinicalAccess = append(p.ClinicalAccess, haven.NewID())
			}
		}, "at most 1000"},
		"TimeZoneLocal":   {func(p *service.PracticeSettings) { p.TimeZone = "Local" }, "IANA"},
		"TimeZoneUnknown": {func(p *service.PracticeSettings) { p.TimeZone = "Mars/Olympus_Mons" }, "IANA"},
		"TimeZonePath":    {func(p *service.PracticeSettings) { p.TimeZone = "../../../etc/passwd" }, "IANA"},
		"TimeZoneLong":    {func(p *service.PracticeSettings) { p.TimeZone = strings.Repeat("A", 65) }, "IANA"},
		"WorkdayInverted": {func(p *service.PracticeSettings) { p.WorkdayStartHour, p.WorkdayEndHour = 19, 7 }, "0 <= start < end <= 24"},
	} {
		t.Run(name, func(t *testing.T) {
			p := service.DefaultSettings()
			tc.change(&p)
			err := p.Validate()
			if haven.ErrorCode(err) != haven.EINVALID || !strings.Contains(haven.ErrorMessage(err), tc.says) {
				t.Fatalf("Validate = %v, want %s saying %q", err, haven.EINVALID, tc.says)
			}
		})
	}
	ok := service.DefaultSettings()
	ok.BulkAccessPatients, ok.DenialsThreshold = service.MaxDetectionThreshold, 2
	ok.BulkAccessWindow, ok.DenialsWindow = service.Duration(service.MaxDetectionWindow), service.Duration(service.MinDetectionWindow)
	ok.WorkforceIdle, ok.PatientAbsolute, ok.TimeZone = service.Duration(15*time.Minute), service.Duration(24*time.Hour), "America/Chicago"
	if err := ok.Validate(); err != nil {
		t.Fatalf("settings at the ends of their ranges are refused: %v", err)
	}
}

// TestParsedSettingsAreNeverShared: a settings document parsed before is
// answered from memory, keyed by its whole text, so a changed document is
// read afresh, and each caller gets slices of its own: changing one
// request's copy changes no other's.
func TestParsedSettingsAreNeverShared(t *testing.T) {
	doc := `{"denials_threshold": 3, "clinical_access": ["` + haven.NewID() + `"], "workforce_networks": ["10.0.0.0/8"]}`
	first, err := service.ParseSettings(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := first.ClinicalAccess[0]
	first.ClinicalAccess[0], first.WorkforceNetworks[0] = "changed", "192.0.2.0/24"
	again, err := service.ParseSettings(doc)
	if err != nil {
		t.Fatal(err)
	}
	if again.ClinicalAccess[0] != want || again.WorkforceNetworks[0] != "10.0.0.0/8" || again.DenialsThreshold != 3 {
		t.Errorf("a caller's change reached the next parse of the same document: %+v", again)
	}
	changed, err := service.ParseSettings(strings.Replace(doc, `"denials_threshold": 3`, `"denials_threshold": 4`, 1))
	if err != nil {
		t.Fatal(err)
	}
	if changed.DenialsThreshold != 4 {
		t.Errorf("a changed document was answered with the old one's threshold: %d", changed.DenialsThreshold)
	}
	for range 2 {
		if _, err := service.ParseSettings(`{"denials_threshold": `); haven.ErrorCode(err) != haven.EINTERNAL {
			t.Errorf("an unreadable document: %v", err)
		}
	}
}

// TestSessionSettingsDecideOnlyTheirOwnPractice: a practice's settings
// carried from the session's check decide that practice's requests, and
// only theirs: settings said to be another practice's are not used, and
// the decision reads its own practice's.
func TestSessionSettingsDecideOnlyTheirOwnPractice(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.s.Seed("riverside", "n1")
		other := e.s.Seed("hillside", "n2")
		shut := `{"workforce_networks":["192.0.2.0/24"]}` // the seeded actor calls from no network
		staff := e.s.As(p.Staff)
		if _, err := e.svc.Patients(service.WithSessionSettings(staff, p.ID, shut)); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("the practice's own settings, carried from its session: %v, want EFORBIDDEN", err)
		}
		if _, err := e.svc.Patients(service.WithSessionSettings(staff, other.ID, shut)); err != nil {
			t.Fatalf("another practice's settings decided this practice's request: %v", err)
		}
	})
}

// TestSessionPatientFactsDecideOnlyTheRecordTheyWereReadFor: facts read
// with a patient's session (WithSessionPatient) decide one gate on the
// record they were read for, for that practice's patient, once; any other
// gate reads its own. The facts carried here say the record does not
// exist, so a gate that used them answers ENOTFOUND.
func TestSessionPatientFactsDecideOnlyTheRecordTheyWereReadFor(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.s.Seed("riverside", "n1")
		other := e.s.Seed("hillside", "n2")
		a, b := p.PatientA.UserID, p.PatientB.UserID
		none := &sqlstore.PatientFacts{}
		read := func(ctx context.Context, id string) error {
			_, err := e.svc.Chart(ctx, id)
			return err
		}

		ctx := service.WithSessionPatient(e.s.As(p.PatientA), p.ID, a, none)
		if err := read(ctx, a); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("the facts read with her session were not used for her record: %v", err)
		}
		if err := read(ctx, a); err != nil {
			t.Errorf("a second read in the same request used them again: %v", err)
		}
		for what, ctx := range map[string]context.Context{
			"another record":                   service.WithSessionPatient(e.s.As(p.PatientA), p.ID, b, none),
			"another practice":                 service.WithSessionPatient(e.s.As(p.PatientA), other.ID, a, none),
			"a clinician, who needs relations": service.WithSessionPatient(e.s.As(p.Clinician), p.ID, a, none),
		} {
			if err := read(ctx, a); err != nil {
				t.Errorf("facts read for %s decided this read: %v", what, err)
			}
		}
	})
}

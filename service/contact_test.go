package service_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/auth/outbox"
	"haven/service"
)

var codeLine = regexp.MustCompile(`Verification code: ([0-9A-Z]{4}-[0-9A-Z]{4})\n`)

// emailCode returns the verification code an email carries.
func emailCode(t *testing.T, m outbox.Message) string {
	t.Helper()
	got := codeLine.FindStringSubmatch(m.Text)
	if got == nil {
		t.Fatalf("an email without a verification code: %q", m.Text)
	}
	return got[1]
}

// noticeCodes has the clinician write to patient A and returns the codes
// of the notices sent, by recipient.
func noticeCodes(t *testing.T, e *env, p *practice) map[string]string {
	t.Helper()
	box := &outbox.Memory{}
	n := service.NewNotices(e.svc, service.NoticeConfig{Outbox: box, BaseURL: "https://clinic.example/"})
	tv := e.write(p.patientA, haven.AudienceCareTeam, "Subject", "Body")
	if _, err := e.svc.Reply(e.as(p.clinician), tv.ID, "Reply", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := n.SendDue(context.Background(), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, m := range box.Sent() {
		codes[m.To] = emailCode(t, m)
	}
	return codes
}

// TestContactCodeVerifiesOnlyForItsRecipient: the code in an email to
// patient A answers "genuine, a message notice, sent then" to her however
// she types it, and "not from us" to patient B, to a patient of another
// practice, for a made-up or malformed code, and for the code of an email
// to someone else. The workforce may not use the check. The code is
// nowhere in storage in the clear; each check is audited.
func TestContactCodeVerifiesOnlyForItsRecipient(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "cc1")
		other := e.seed("hillside", "cc2")
		sentAt := e.clock.Now()
		codes := noticeCodes(t, e, p)
		code, ok := codes["pta@riverside.example"]
		if !ok {
			t.Fatalf("no notice to patient A: %v", codes)
		}
		e.clock.Advance(time.Hour)
		for _, typed := range []string{code, strings.ToLower(code), " " + strings.ReplaceAll(code, "-", "") + " "} {
			chk, err := e.svc.CheckContactCode(e.as(p.patientA), typed)
			if err != nil || !chk.Genuine || chk.Kind != service.EmailMessageNotice || chk.About == "" || chk.SentAt.Sub(sentAt).Abs() > time.Minute {
				t.Fatalf("her own code %q: %+v, %v", typed, chk, err)
			}
		}
		if ev := e.lastEventOf(p.id, "contact.verify"); ev.ActorID != p.patientA.UserID || ev.Decision != haven.DecisionAllow {
			t.Fatalf("the check is not audited: %+v", ev)
		}
		notOurs := func(a haven.Actor, typed string) {
			t.Helper()
			chk, err := e.svc.CheckContactCode(e.as(a), typed)
			if err != nil || chk.Genuine || chk.Kind != "" || !chk.SentAt.IsZero() {
				t.Fatalf("%s checking %q: %+v, %v", a.UserID, typed, chk, err)
			}
		}
		notOurs(p.patientB, code)
		notOurs(other.patientA, code)
		notOurs(p.patientA, "ABCD-EFGH")
		notOurs(p.patientA, "not a code at all")
		notOurs(p.patientA, code+"0")
		if doc, ok := codes["doc@riverside.example"]; ok {
			notOurs(p.patientA, doc)
		} else {
			t.Fatalf("no notice to the clinician: %v", codes)
		}
		for _, a := range []haven.Actor{p.clinician, p.staff, p.compliance} {
			if _, err := e.svc.CheckContactCode(e.as(a), code); haven.ErrorCode(err) != haven.EFORBIDDEN {
				t.Fatalf("%s checked a code: %v", a.Role, err)
			}
		}
		e.assertNotInTheClear(t, "contact_codes", code, strings.ReplaceAll(code, "-", ""))
	})
}

// TestReportSuspiciousMessageAlerts: a patient's report raises an alert
// for her practice's compliance officer (and no other practice's), naming
// her as the reporter and saying whether the code was genuine, holding
// nothing she typed; the report is audited.
func TestReportSuspiciousMessageAlerts(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "cr1")
		other := e.seed("hillside", "cr2")
		if _, err := e.svc.ReportSuspiciousMessage(e.as(p.patientA), "ZZZZ-9999"); err != nil {
			t.Fatal(err)
		}
		alerts, err := e.svc.Alerts(e.as(p.compliance), false)
		if err != nil || len(alerts) != 1 {
			t.Fatalf("alerts %v, %v", alerts, err)
		}
		al := alerts[0]
		if al.Rule != service.RuleSuspiciousMessage || al.ActorID != p.patientA.UserID || al.PatientID != p.patientA.UserID ||
			!strings.Contains(al.Detail, "not one the practice sent") || strings.Contains(al.Detail, "ZZZZ") || al.AuditSeq == 0 {
			t.Fatalf("the alert: %+v", al)
		}
		if ev := e.lastEventOf(p.id, "contact.report"); ev.ActorID != p.patientA.UserID || ev.Seq != al.AuditSeq {
			t.Fatalf("the report's event: %+v", ev)
		}
		if theirs, _ := e.svc.Alerts(e.as(other.compliance), false); len(theirs) != 0 {
			t.Fatalf("another practice sees the report: %+v", theirs)
		}
		// A genuine code reported says so.
		code := noticeCodes(t, e, p)["pta@riverside.example"]
		chk, err := e.svc.ReportSuspiciousMessage(e.as(p.patientA), code)
		if err != nil || !chk.Genuine {
			t.Fatalf("reporting a genuine code: %+v, %v", chk, err)
		}
		alerts, _ = e.svc.Alerts(e.as(p.compliance), false)
		if len(alerts) != 2 || !strings.Contains(alerts[0].Detail, "was one the practice sent") {
			t.Fatalf("alerts %+v", alerts)
		}
		if _, err := e.svc.ReportSuspiciousMessage(e.as(p.clinician), ""); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("a clinician reported as a patient: %v", err)
		}
	})
}

// TestEveryEmailIsComposedWithACode keeps every email of Haven's going
// through composeEmail: no code outside auth/outbox and service/contact.go
// builds an outbox.Message itself, so none can leave without its code.
func TestEveryEmailIsComposedWithACode(t *testing.T) {
	var found []string
	scanned := map[string]bool{}
	filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel := filepath.ToSlash(path)
		if strings.HasPrefix(rel, "../auth/outbox/") || rel == "../service/contact.go" || strings.HasPrefix(rel, "../internal/") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned[rel] = true
		if strings.Contains(string(b), "outbox.Message{") {
			found = append(found, rel)
		}
		return nil
	})
	for _, must := range []string{"../service/message_notices.go", "../identity/passwords.go", "../cmd/haven/mail.go"} {
		if !scanned[must] {
			t.Fatalf("%s was not scanned: the test would prove nothing", must)
		}
	}
	if len(found) > 0 {
		t.Fatalf("emails composed without a verification code in %v: use composeEmail (Gate.ComposeEmail)", found)
	}
}

// TestContactChecksAreBounded: a patient may check at most
// MaxContactChecksPerHour codes an hour (a guesser learns nothing at that
// rate); an hour later she may check again. Reporting stays open.
func TestContactChecksAreBounded(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "cb1")
		ctx := e.as(p.patientA)
		for i := range service.MaxContactChecksPerHour {
			if _, err := e.svc.CheckContactCode(ctx, "ABCD-EFGH"); err != nil {
				t.Fatalf("check %d: %v", i+1, err)
			}
			e.clock.Advance(time.Second)
		}
		if _, err := e.svc.CheckContactCode(ctx, "ABCD-EFGH"); haven.ErrorCode(err) != haven.ETOOMANY {
			t.Fatalf("one check too many: %v", err)
		}
		if _, err := e.svc.CheckContactCode(e.as(p.patientB), "ABCD-EFGH"); err != nil {
			t.Fatalf("another patient is held back by her checks: %v", err)
		}
		if _, err := e.svc.ReportSuspiciousMessage(ctx, ""); err != nil {
			t.Fatalf("the report is refused with the checks: %v", err)
		}
		e.clock.Advance(time.Hour)
		if _, err := e.svc.CheckContactCode(ctx, "ABCD-EFGH"); err != nil {
			t.Fatalf("an hour later: %v", err)
		}
	})
}

// TestNormalizeContactCode reads codes as people type them and refuses
// anything else.
func TestNormalizeContactCode(t *testing.T) {
	for in, want := range map[string]string{
		"K7QM-2XPD": "K7QM2XPD", "k7qm2xpd": "K7QM2XPD", " k7qm - 2xpd ": "K7QM2XPD",
		"OIL0-0000": "01100000", // letters read as the digits they look like
		"":          "", "K7QM-2XP": "", "K7QM-2XPDD": "", "K7QU-2XPD": "", "K7QM-2XPÐ": "", "K7QM\n2XPD": "",
	} {
		got, ok := service.NormalizeContactCode(in)
		if got != want || ok != (want != "") {
			t.Errorf("%q: got %q %v, want %q", in, got, ok, want)
		}
	}
	if got := service.FormatContactCode("K7QM2XPD"); got != "K7QM-2XPD" {
		t.Errorf("format: %q", got)
	}
}

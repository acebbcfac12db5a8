package web_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserComplianceOfficerReadsTheEvidenceReport: the compliance
// officer goes from her home to the evidence report by its link, on a
// desktop and on a 390 px phone: every safeguard with its status, the
// second factor she enrolled at sign-in counted in the workforce's
// coverage, the tests named; the three downloads answer with her session
// (fetched from the page as a click would); no raw id shown.
func TestBrowserComplianceOfficerReadsTheEvidenceReport(t *testing.T) {
	st := newDemoStack(t)
	w := newWalker(t, st.base)
	secret := ""
	enrolled := regexp.MustCompile(`Workforce with a second factor\s+[1-9][0-9]* of [0-9]+`)
	onBothScreens(t, w, func() {
		w.start()
		secret = w.signIn("compliance@riverside.example", secret)
		w.follow("#home-report")
		if got := w.at(); got != "/app/compliance/report" {
			t.Fatalf("the report link led to %s", got)
		}
		if got := w.text("#report-summary"); !strings.Contains(got, "Riverside Family Clinic") || !strings.Contains(got, "met") {
			t.Errorf("the summary: %q", got)
		}
		if got := w.text("#control-164-312-d"); !enrolled.MatchString(got) {
			t.Errorf("person authentication, after she enrolled a factor: %q", got)
		}
		if got := w.text("#control-164-308-a-5"); !strings.Contains(got, "Not met") || !strings.Contains(got, "no training records") {
			t.Errorf("training: %q", got)
		}
		if got := w.text("#control-164-312-b"); !strings.Contains(got, "Entries in the practice's log") {
			t.Errorf("audit controls: %q", got)
		}
		n, err := chromedp.Run(w.ctx, chromedp.Evaluate[int](`document.querySelectorAll('section.report-control').length`))
		if err != nil || n < 20 {
			t.Errorf("%d controls shown (%v)", n, err)
		}
		for sel, want := range map[string]string{"#download-html": "<!doctype html>", "#download-md": "# HIPAA evidence report: Riverside Family Clinic", "#download-json": `"practice": "Riverside Family Clinic"`} {
			got, err := chromedp.Run(w.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(async () => { const r = await fetch(document.querySelector(%q).href); return r.status + ' ' + (r.headers.get('Content-Disposition') || '') + '\n' + await r.text(); })()`, sel), chromedp.EvalAwaitPromise))
			if err != nil || !strings.HasPrefix(got, "200 attachment") || !strings.Contains(got, want) {
				t.Errorf("%s: %.200q (%v)", sel, got, err)
			}
		}
		if ids := w.rawIDs(); len(ids) > 0 {
			t.Errorf("the report page shows raw ids: %v", ids)
		}
		// The navigation marks the report, and leads back to the audit page.
		w.follow("#nav-compliance")
		w.follow("#to-report")
		w.follow("#nav-home")
		w.signOut()
	})
}

package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"haven"
)

// TestBrowserComplianceSeesTheLastRestoreDrill: the compliance officer
// reaches the restore drill evidence from her home page; with no drill
// yet, the page says so and how to run one; after a drill, its recovery
// time against the practice's 72-hour target; after a failed drill, the
// failure and that the target is not met.
func TestBrowserComplianceSeesTheLastRestoreDrill(t *testing.T) {
	st := newDemoStack(t)
	w := newWalker(t, st.base)
	ctx := context.Background()
	secret := ""
	step := 0
	onBothScreens(t, w, func() {
		w.start()
		secret = w.signIn("compliance@riverside.example", secret)
		w.follow("#home-backups")
		switch step {
		case 0:
			if got := w.text("#drill-result"); !strings.Contains(got, "No restore drill has been run") {
				t.Errorf("before any drill: %q", got)
			}
			drill := haven.RestoreDrill{StartedAt: time.Now().Add(-time.Hour), Duration: 3*time.Hour + 20*time.Minute,
				BackupCreated: time.Now().Add(-5 * time.Hour), BackupBytes: 1 << 20, AuditLogs: 3, RecordsOpened: 10, OK: true}
			if err := st.svc.RecordRestoreDrill(ctx, drill); err != nil {
				t.Fatal(err)
			}
			w.follow("#nav-home")
			w.follow("#home-backups")
			if got := w.text("#drill-result"); !strings.Contains(got, "verified 3 audit logs and opened 10 records") {
				t.Errorf("after a drill: %q", got)
			}
			if got := w.text("#drill-time"); !strings.Contains(got, "3 hours 20 minutes") || !strings.Contains(got, "target of 3 days") ||
				!strings.Contains(got, "within the target") {
				t.Errorf("the drill's time: %q", got)
			}
		case 1:
			// A later drill that failed replaces it as the last.
			drill := haven.RestoreDrill{StartedAt: time.Now(), Duration: 90 * time.Second, OK: false,
				Failure: "backup refused: the identity does not open this backup (wrong key)"}
			if err := st.svc.RecordRestoreDrill(ctx, drill); err != nil {
				t.Fatal(err)
			}
			w.follow("#nav-home")
			w.follow("#home-backups")
			if got := w.text("#drill-result"); !strings.Contains(got, "failed") || !strings.Contains(got, "wrong key") {
				t.Errorf("after a failed drill: %q", got)
			}
			if got := w.text("#drill-verdict"); got != "target not met" {
				t.Errorf("a failed drill's verdict: %q", got)
			}
		}
		step++
		if ids := w.rawIDs(); len(ids) > 0 {
			t.Errorf("the compliance page shows raw ids: %v", ids)
		}
		w.follow("#nav-home")
		w.signOut()
	})
}

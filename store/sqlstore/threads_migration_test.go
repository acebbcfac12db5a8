package sqlstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"haven/internal/testkit"
)

// TestWaitingRoomMessagesBecomeTheirVisitsThreads migrates a database to
// the version before threads, stores waiting-room messages the way the old
// table held them, and applies the rest: each visit with messages gets a
// thread of its own id holding them in order, byte for byte (bodies stay
// sealed as they were, marked as waiting-room lines so they open under
// the associated data they were sealed with), done when the visit is
// over, read by everyone who took part; the old table is gone.
func TestWaitingRoomMessagesBecomeTheirVisitsThreads(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d, err := Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ms, err := d.migrations()
			if err != nil {
				t.Fatal(err)
			}
			threads := -1
			for i, m := range ms {
				if strings.HasSuffix(m.name, "_threads.sql") {
					threads = i
				}
			}
			if threads < 0 {
				t.Fatal("no threads migration")
			}
			if _, err := d.db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			for _, m := range ms[:threads] {
				if _, err := d.applyOne(ctx, m); err != nil {
					t.Fatalf("%s: %v", m.name, err)
				}
			}
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := d.db.ExecContext(ctx, q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			now := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
			exec(`INSERT INTO practices (id, name, created_at) VALUES ('p1', 'Riverside', $1)`, now)
			for _, u := range []struct{ id, role string }{{"doc", "clinician"}, {"pat", "patient"}} {
				exec(`INSERT INTO users (id, practice_id, role, email_index, email_sealed, name_sealed, password_hash, disabled, created_at)
					VALUES ($1, 'p1', $2, $3, $4, $4, '', FALSE, $5)`, u.id, u.role, []byte("ix-"+u.id), []byte{1}, now)
			}
			exec(`INSERT INTO patients (id, practice_id, mrn_index, mrn_sealed, demographics_sealed, contact_sealed, version, created_at, updated_at)
				VALUES ('pat', 'p1', $1, $2, $2, $2, 1, $3, $3)`, []byte("mrn"), []byte{1}, now)
			for i, v := range []struct{ id, state string }{{"v-waiting", "waiting"}, {"v-ended", "ended"}, {"v-quiet", "booked"}} {
				at := now.Add(time.Duration(i) * time.Hour)
				exec(`INSERT INTO visits (id, practice_id, patient_id, clinician_id, starts_at, ends_at, state, reason_sealed, booked_by, version, created_at)
					VALUES ($1, 'p1', 'pat', 'doc', $2, $3, $4, $5, 'pat', 1, $2)`, v.id, at, at.Add(30*time.Minute), v.state, []byte{1})
			}
			msg := func(id, visit, sender string, at int64, body string) {
				exec(`INSERT INTO visit_messages (id, practice_id, visit_id, patient_id, sender_id, body_sealed, created_us)
					VALUES ($1, 'p1', $2, 'pat', $3, $4, $5)`, id, visit, sender, []byte(body), at)
			}
			// Out of insertion order on purpose: the thread's order is the
			// messages' times.
			msg("m3", "v-waiting", "doc", 300, "third")
			msg("m1", "v-waiting", "doc", 100, "first")
			msg("m2", "v-waiting", "pat", 200, "second")
			msg("e1", "v-ended", "pat", 50, "over")
			if _, err := d.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			var old int
			switch d.dialect {
			case Postgres:
				d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'visit_messages'`).Scan(&old)
			default:
				d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'visit_messages'`).Scan(&old)
			}
			if old != 0 {
				t.Fatal("visit_messages is still there")
			}
			th, err := d.FindThread(ctx, "v-waiting")
			if err != nil {
				t.Fatal(err)
			}
			if th.VisitID != "v-waiting" || th.Audience != "visit" || th.PatientID != "pat" || th.StartedBy != "doc" || th.Messages != 3 ||
				th.LastUS != 300 || th.LastSender != "doc" || th.CreatedUS != 100 || th.DoneUS != 0 || len(th.Subject) != 0 {
				t.Fatalf("the waiting visit's thread: %+v", th)
			}
			got, err := d.ThreadMessages(ctx, "v-waiting")
			if err != nil || len(got) != 3 {
				t.Fatalf("%d messages, %v", len(got), err)
			}
			for i, want := range []struct{ id, body string }{{"m1", "first"}, {"m2", "second"}, {"m3", "third"}} {
				m := got[i]
				if m.ID != want.id || string(m.Body) != want.body || m.Seq != i+1 || m.SealedAs != "visit_message" || m.ThreadID != "v-waiting" {
					t.Errorf("message %d: %+v", i, m)
				}
			}
			if ended, err := d.FindThread(ctx, "v-ended"); err != nil || ended.DoneUS != 50 || ended.Messages != 1 {
				t.Fatalf("the ended visit's thread: %+v %v", ended, err)
			}
			if _, err := d.FindThread(ctx, "v-quiet"); err == nil {
				t.Fatal("a visit without messages got a thread")
			}
			for _, who := range []string{"pat", "doc"} {
				reads, err := d.ThreadReads(ctx, who, []string{"v-waiting", "v-ended"})
				if err != nil || reads["v-waiting"] != 3 {
					t.Fatalf("%s's read marks: %v %v", who, reads, err)
				}
			}
			if counts, err := d.VisitMessageCounts(ctx, []string{"v-waiting", "v-ended", "v-quiet"}); err != nil || counts["v-waiting"] != 3 || counts["v-ended"] != 1 || len(counts) != 2 {
				t.Fatalf("counts %v %v", counts, err)
			}
		})
	}
}

package web_test

import (
	"fmt"
	"net/http"
	"testing"

	"haven"
	"haven/internal/testkit"
)

// chartReadBudget is how many statements and transaction boundaries one
// chart read over HTTPS may send to the database, its audit append
// included, per reader and engine. Her clinician's: the session checked
// with the practice's settings (one statement), the patient's row with
// every fact policy decides on and the key-state version the keyring
// checks before it opens the fields (one), and the audit append, which a
// request alone in its batch pays whole: on PostgreSQL one statement that
// moves the head where it agrees with the log's end and writes the rows;
// on SQLite begin, the head moved where it agrees with the log's end, the
// rows written, commit. The patient's own: her row and the key state come
// with her session (identity's ResumeReading), one statement fewer.
// SQLite's hot statements are prepared once per connection, so a read
// pays no prepare. Under load a batch is shared and the append costs a
// fraction of that. A change that adds a statement to every read must
// raise these numbers in review, not slip in.
var chartReadBudget = map[string]map[string]float64{
	"the patient's own": {"sqlite": 5, "postgres": 2},
	"her clinician's":   {"sqlite": 6, "postgres": 3},
}

// TestChartReadStaysWithinItsRoundTripBudget reads a chart over HTTPS, as
// its patient and as her clinician, and counts what each read sends to
// the database on SQLite and PostgreSQL.
func TestChartReadStaysWithinItsRoundTripBudget(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			tn := ts[0]
			readers := map[string]string{
				"the patient's own": tn.pEmail[0],
				"her clinician's":   tn.emails[haven.RoleClinician],
			}
			for who, email := range readers {
				budget := chartReadBudget[who][name]
				c := st.client("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
				auth := c.signInAny(email)
				get := func() {
					t.Helper()
					r := c.apiAs(auth, "GET", "/api/v1/patients/"+tn.patient[0], "")
					readAll(t, r)
					if r.StatusCode != http.StatusOK {
						t.Fatalf("%s read: %s", who, r.Status)
					}
				}
				get() // the first request records the session's activity
				const reads = 20
				before := st.db.RoundTrips()
				for range reads {
					get()
				}
				per := float64(st.db.RoundTrips()-before) / reads
				t.Logf("%s chart read: %.1f round trips", who, per)
				if per > budget {
					t.Errorf("%s chart read: %.1f round trips, budget %.0f", who, per, budget)
				}
			}
		})
	}
}

// registrationBudget is chartReadBudget for the front desk registering a
// patient: the session with the practice's settings, which the decision
// takes from there (one statement), the audit append (one on PostgreSQL,
// four on SQLite, as above), the key state read once for the five fields
// sealed (one), the practice key read to wrap the patient's new data key
// (one), and the account, chart and that key written together (begin,
// three inserts, commit): a new patient's key is not looked for, and is
// not committed on its own.
var registrationBudget = map[string]float64{"sqlite": 12, "postgres": 9}

// TestRegistrationStaysWithinItsRoundTripBudget registers patients over
// HTTPS as the front desk and counts what each registration sends.
func TestRegistrationStaysWithinItsRoundTripBudget(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			c := st.client("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
			auth := c.signInAny(ts[0].emails[haven.RoleStaff])
			register := func(i int) {
				t.Helper()
				r := c.apiAs(auth, "POST", "/api/v1/patients", fmt.Sprintf(`{"mrn":"RT-%d","demographics":{"name":"Ana Silva","date_of_birth":"1980-02-03"},`+
					`"contact":{"email":"ana-%d@patients.example"}}`, i, i))
				readAll(t, r)
				if r.StatusCode != http.StatusCreated {
					t.Fatalf("registration %d: %s", i, r.Status)
				}
			}
			register(0) // the first request records the session's activity
			const n = 5
			before := st.db.RoundTrips()
			for i := range n {
				register(i + 1)
			}
			per := float64(st.db.RoundTrips()-before) / n
			t.Logf("registration: %.1f round trips", per)
			if per > registrationBudget[name] {
				t.Errorf("registration: %.1f round trips, budget %.0f", per, registrationBudget[name])
			}
		})
	}
}

// TestSettingsReadWithTheSessionFollowAChangeMadeElsewhere: a decision
// without a patient takes the practice's settings from the session's own
// statement, so a change written by another node (here, straight to the
// database, as the command line or another node writes it) decides this
// node's very next request, either way.
func TestSettingsReadWithTheSessionFollowAChangeMadeElsewhere(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			tn := ts[0]
			c := st.client("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
			auth := c.signInAny(tn.emails[haven.RoleStaff])
			list := func() int {
				t.Helper()
				r := c.apiAs(auth, "GET", "/api/v1/patients", "")
				readAll(t, r)
				return r.StatusCode
			}
			ctx := t.Context()
			if got := list(); got != http.StatusOK {
				t.Fatalf("the front desk's patient list: %d", got)
			}
			// Only a network the test's loopback client is not on.
			if err := st.db.PutPracticeSettings(ctx, tn.id, `{"workforce_networks":["192.0.2.0/24"]}`); err != nil {
				t.Fatal(err)
			}
			if got := list(); got != http.StatusForbidden {
				t.Fatalf("the list from outside the practice's networks, set elsewhere a moment ago: %d, want 403", got)
			}
			if err := st.db.PutPracticeSettings(ctx, tn.id, `{}`); err != nil {
				t.Fatal(err)
			}
			if got := list(); got != http.StatusOK {
				t.Fatalf("the list once the networks were lifted elsewhere: %d", got)
			}
		})
	}
}

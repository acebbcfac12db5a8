package sqlstore

import (
	"context"
	"reflect"
	"testing"

	"haven/internal/testkit"
)

// TestPatientFactsAreWhatTheSingleReadsReturn: the one statement of
// PatientFacts returns the same patient row, care team, grants, visits
// and settings as the reads it replaces, on both engines; another
// practice asking gets the patient's row (to tell it from none) and
// nothing else; an unknown id gets no row. Without the relations the
// statement reads the same row, settings and key state, and none of the
// relations the seed gave the patient.
func TestPatientFactsAreWhatTheSingleReadsReturn(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d, err := Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if _, err := d.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			seedTiny(t, d)
			// The first run prepares the statement on its connection
			// (SQLite, see hot); what every later one costs is counted.
			if _, err := d.PatientFacts(ctx, "pr1", "u1", WithRelations); err != nil {
				t.Fatal(err)
			}
			before := d.RoundTrips()
			f, err := d.PatientFacts(ctx, "pr1", "u1", WithRelations)
			if err != nil {
				t.Fatal(err)
			}
			if n := d.RoundTrips() - before; n != 1 {
				t.Errorf("PatientFacts took %d round trips, want 1", n)
			}
			p, err := d.FindPatient(ctx, "u1")
			if err != nil {
				t.Fatal(err)
			}
			team, _ := d.CareTeam(ctx, "u1")
			grants, _ := d.BreakGlassGrants(ctx, "u1")
			visits, _ := d.PatientVisits(ctx, "u1")
			settings, _ := d.PracticeSettings(ctx, "pr1")
			for what, pair := range map[string][2]any{
				"patient": {f.Patient, p}, "care team": {f.CareTeam, team}, "grants": {f.Grants, grants},
				"visits": {f.Visits, visits}, "settings": {f.Settings, settings},
			} {
				if !reflect.DeepEqual(pair[0], pair[1]) {
					t.Errorf("%s: PatientFacts read %+v, the single read %+v", what, pair[0], pair[1])
				}
			}
			// The key state comes with the facts, as KeyState reads it,
			// and follows a change of it.
			for range 2 {
				v, root, err := d.KeyState(ctx)
				if err != nil {
					t.Fatal(err)
				}
				kf, err := d.PatientFacts(ctx, "pr1", "u1", WithRelations)
				if err != nil {
					t.Fatal(err)
				}
				if !kf.KeyRead || kf.KeyVersion != v || kf.KeyRoot != root {
					t.Errorf("key state with the facts: %v %d %q, KeyState %d %q", kf.KeyRead, kf.KeyVersion, kf.KeyRoot, v, root)
				}
				if _, err := d.db.ExecContext(ctx, `UPDATE key_state SET version = version + 1, root_id = 'r2' WHERE id = 1`); err != nil {
					t.Fatal(err)
				}
			}
			if len(team) != 1 || len(grants) != 1 || len(visits) != 1 || settings == "" {
				t.Fatalf("the seed is not what this test needs: %d, %d, %d, %q", len(team), len(grants), len(visits), settings)
			}

			other, err := d.PatientFacts(ctx, "pr2", "u1", WithRelations)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(other.Patient, p) || other.CareTeam != nil || other.Grants != nil || other.Visits != nil || other.Settings != "" {
				t.Errorf("another practice asking read %+v", other)
			}
			none, err := d.PatientFacts(ctx, "pr1", "nobody", WithRelations)
			if err != nil || none.Patient != nil || none.CareTeam != nil || none.Settings != settings {
				t.Errorf("an unknown id: %+v, %v", none, err)
			}

			if _, err := d.PatientFacts(ctx, "pr1", "u1", WithoutRelations); err != nil { // prepares it, as above
				t.Fatal(err)
			}
			before = d.RoundTrips()
			own, err := d.PatientFacts(ctx, "pr1", "u1", WithoutRelations)
			if err != nil {
				t.Fatal(err)
			}
			if n := d.RoundTrips() - before; n != 1 {
				t.Errorf("PatientFacts without relations took %d round trips, want 1", n)
			}
			v, root, err := d.KeyState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(own.Patient, p) || own.Settings != settings || !own.KeyRead || own.KeyVersion != v || own.KeyRoot != root {
				t.Errorf("without relations: %+v, want the row %+v, settings %q, key state %d %q", own, p, settings, v, root)
			}
			if own.CareTeam != nil || own.Grants != nil || own.Visits != nil {
				t.Errorf("without relations, read the relations: %+v %+v %+v", own.CareTeam, own.Grants, own.Visits)
			}
			otherOwn, err := d.PatientFacts(ctx, "pr2", "u1", WithoutRelations)
			if err != nil || !reflect.DeepEqual(otherOwn.Patient, p) || otherOwn.Settings != "" {
				t.Errorf("another practice asking without relations: %+v, %v", otherOwn, err)
			}
		})
	}
}

package sqlstore

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"haven"
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
			d := openTiny(t, dsn)
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

// TestSessionAndPatientReadWhatTheTwoReadsReturn: the session statement
// that reads a patient's record with her session returns the session
// SessionRecordByTokenHash returns and the facts PatientFacts returns
// without relations for her practice (her own record, another practice's
// patient, an id that names nobody), in one round trip, on both engines;
// a workforce session reads no facts; a disabled account has no session.
// Settings and the key state follow a change written between two reads.
func TestSessionAndPatientReadWhatTheTwoReadsReturn(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d := openTiny(t, dsn)
			for _, q := range []string{
				`INSERT INTO practices (id, name, created_at) VALUES ('pr2', 'Q', CURRENT_TIMESTAMP)`,
				`INSERT INTO users (id, practice_id, role, email_index, email_sealed, password_hash, created_at)
					VALUES ('u3', 'pr2', 'patient', X'03', X'03', '', CURRENT_TIMESTAMP)`,
				`INSERT INTO patients (id, practice_id, mrn_index, mrn_sealed, demographics_sealed, contact_sealed, created_at, updated_at)
					VALUES ('u3', 'pr2', X'03', X'03', X'03', X'03', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`,
				`INSERT INTO sessions (id, token_hash, user_id, practice_id, role, created_us, last_seen_us, auth_us, mfa, factor, client_addr, device_hash, device_label)
					VALUES ('s2', X'02', 'u2', 'pr1', 'clinician', 0, 0, 0, TRUE, 'totp', '', '', '')`,
			} {
				if d.dialect == Postgres {
					q = strings.NewReplacer("X'02'", `'\x02'::bytea`, "X'03'", `'\x03'::bytea`).Replace(q)
				}
				if _, err := d.db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			patientToken, clinicianToken := []byte{1}, []byte{2}
			if _, _, err := d.SessionRecordAndPatient(ctx, patientToken, "u1"); err != nil { // prepares it (see hot)
				t.Fatal(err)
			}
			for round := range 2 {
				for _, asked := range []string{"u1", "u3", "nobody"} {
					before := d.RoundTrips()
					rec, f, err := d.SessionRecordAndPatient(ctx, patientToken, asked)
					if err != nil {
						t.Fatal(err)
					}
					if n := d.RoundTrips() - before; n != 1 {
						t.Errorf("%s: %d round trips, want 1", asked, n)
					}
					alone, err := d.SessionRecordByTokenHash(ctx, patientToken)
					if err != nil {
						t.Fatal(err)
					}
					want, err := d.PatientFacts(ctx, "pr1", asked, WithoutRelations)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(rec, alone) {
						t.Errorf("%s: session %+v, read alone %+v", asked, rec, alone)
					}
					if !reflect.DeepEqual(f, want) {
						t.Errorf("round %d, %s: facts %+v, PatientFacts %+v", round, asked, f, want)
					}
					if (f.Patient != nil) != (asked != "nobody") {
						t.Errorf("%s: patient row %+v", asked, f.Patient)
					}
				}
				// What the second round must follow.
				for _, q := range []string{
					`UPDATE key_state SET version = version + 1, root_id = 'r2' WHERE id = 1`,
					`UPDATE practice_settings SET settings = '{"x":1}' WHERE practice_id = 'pr1'`,
					`UPDATE patients SET version = version + 1 WHERE id = 'u1'`,
				} {
					if _, err := d.db.ExecContext(ctx, q); err != nil {
						t.Fatal(err)
					}
				}
			}

			rec, f, err := d.SessionRecordAndPatient(ctx, clinicianToken, "u1")
			if err != nil {
				t.Fatal(err)
			}
			alone, err := d.SessionRecordByTokenHash(ctx, clinicianToken)
			if err != nil {
				t.Fatal(err)
			}
			if f != nil || !reflect.DeepEqual(rec, alone) {
				t.Errorf("a clinician's session: %+v with facts %+v; read alone %+v", rec, f, alone)
			}

			if _, err := d.db.ExecContext(ctx, `UPDATE users SET disabled = TRUE WHERE id = 'u1'`); err != nil {
				t.Fatal(err)
			}
			if _, f, err := d.SessionRecordAndPatient(ctx, patientToken, "u1"); haven.ErrorCode(err) != haven.ENOTFOUND || f != nil {
				t.Errorf("a disabled account's session: %v, facts %+v", err, f)
			}
		})
	}
}

package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"haven"
	"haven/store/sqlstore"
)

// The blob sweep asks which of a batch of blob keys a file row names, and
// the erasure records when a patient was erased.
func TestBlobKeysInUseAndErasureDates(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		doc := newUser(t, db, haven.RoleClinician)
		u, err := db.FindUserByID(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		pat := &haven.User{ID: haven.NewID(), PracticeID: u.PracticeID, Role: haven.RolePatient, EmailIndex: []byte(haven.NewID()),
			Email: haven.Sealed{1}, Name: haven.Sealed{2}}
		if err := db.CreatePatient(ctx, pat, &haven.Patient{ID: pat.ID, PracticeID: u.PracticeID, MRNIndex: []byte(haven.NewID()),
			MRN: haven.Sealed{3}, Demographics: haven.Sealed{4}, Contact: haven.Sealed{5}}); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for i := range 3 {
			f := &haven.File{ID: haven.NewID(), PracticeID: u.PracticeID, PatientID: pat.ID, UploadedBy: pat.ID,
				Name: haven.Sealed{byte(i)}, ContentType: "text/plain", Size: 1}
			f.BlobKey = "files/" + f.ID
			if err := db.CreateFile(ctx, f); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, f.BlobKey)
		}
		in, err := db.BlobKeysInUse(ctx, append([]string{"files/orphan", "files/other"}, keys[0], keys[2]))
		if err != nil || len(in) != 2 || !in[keys[0]] || !in[keys[2]] {
			t.Fatalf("in use: %v %v", in, err)
		}
		if in, err := db.BlobKeysInUse(ctx, nil); err != nil || len(in) != 0 {
			t.Fatalf("no keys: %v %v", in, err)
		}

		if erased, err := db.ErasedPatients(ctx, u.PracticeID); err != nil || len(erased) != 0 {
			t.Fatalf("erased before any erasure: %v %v", erased, err)
		}
		at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
		if err := db.MarkPatientErased(ctx, pat.ID, at); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkPatientErased(ctx, pat.ID, at.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		erased, err := db.ErasedPatients(ctx, u.PracticeID)
		if err != nil || len(erased) != 1 || !erased[pat.ID].Equal(at) {
			t.Fatalf("erased: %v %v (want the first date kept)", erased, err)
		}
	})
}

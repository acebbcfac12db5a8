package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"haven"
	"haven/store/sqlstore"
)

// TestANewPatientsKeyIsStoredWithHerRecordOrNotAtAll: the data key a new
// patient's fields were sealed under is written in the transaction that
// writes her account and chart, so a registration refused (here, an MRN
// the practice already has) leaves no key behind, and one that succeeds
// leaves exactly that key. A key of another patient or practice is
// refused and nothing is written.
func TestANewPatientsKeyIsStoredWithHerRecordOrNotAtAll(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		u := newMember(t, db, haven.RoleClinician)
		practice := u.PracticeID
		newPatient := func(mrn string) (*haven.User, *haven.Patient, haven.WrappedKey) {
			id := haven.NewID()
			pu := &haven.User{ID: id, PracticeID: practice, Role: haven.RolePatient, EmailIndex: []byte(haven.NewID()),
				Email: haven.Sealed{1}, Name: haven.Sealed{2}}
			p := &haven.Patient{ID: id, PracticeID: practice, MRNIndex: []byte(mrn), MRN: haven.Sealed{3}, Demographics: haven.Sealed{4}, Contact: haven.Sealed{5}}
			k := haven.WrappedKey{PracticeID: practice, ID: haven.NewID(), Kind: "data", PatientID: id, Version: 1, WrappedBy: "pk",
				Wrapped: []byte{7, 7}, State: "active", CreatedAt: time.Now().UTC()}
			return pu, p, k
		}
		keyOf := func(patientID string) error {
			_, err := db.GetKey(ctx, practice, "data", patientID, 0)
			return err
		}

		pu, p, k := newPatient("MRN-1")
		if err := db.CreatePatient(ctx, pu, p, &k); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetKey(ctx, practice, "data", p.ID, 0)
		if err != nil || got.ID != k.ID || string(got.Wrapped) != string(k.Wrapped) {
			t.Fatalf("her key after registration: %+v, %v", got, err)
		}

		dupU, dupP, dupK := newPatient("MRN-1")
		if err := db.CreatePatient(ctx, dupU, dupP, &dupK); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("an MRN the practice has: %v", err)
		}
		if err := keyOf(dupP.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Errorf("a refused registration left its key: %v", err)
		}

		for what, edit := range map[string]func(*haven.WrappedKey){
			"another patient's":  func(k *haven.WrappedKey) { k.PatientID = p.ID },
			"another practice's": func(k *haven.WrappedKey) { k.PracticeID = "elsewhere" },
		} {
			wu, wp, wk := newPatient("MRN-" + what)
			edit(&wk)
			if err := db.CreatePatient(ctx, wu, wp, &wk); haven.ErrorCode(err) != haven.EINVALID {
				t.Errorf("%s key with a new chart: %v", what, err)
			}
			if _, err := db.FindPatient(ctx, wp.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
				t.Errorf("%s key: the chart was written: %v", what, err)
			}
		}
	})
}

package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"haven"
	"haven/store/sqlstore"
)

// TestVisitMessageCountsCountsEachVisitInOneAnswer: the queue's counts
// are per visit, a visit without messages is absent, an id not asked for
// is not counted, and an empty list answers empty.
func TestVisitMessageCountsCountsEachVisitInOneAnswer(t *testing.T) {
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
		start := time.Now().UTC().Truncate(time.Second)
		var ids []string
		for i := range 4 {
			at := start.Add(time.Duration(i) * time.Hour)
			v := &haven.Visit{ID: haven.NewID(), PracticeID: u.PracticeID, PatientID: pat.ID, ClinicianID: doc, Start: at, End: at.Add(30 * time.Minute),
				State: haven.VisitWaiting, Reason: haven.Sealed{6}, BookedBy: pat.ID}
			if err := db.CreateVisit(ctx, v); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, v.ID)
		}
		// Visit 0 holds three messages, visit 1 none, visit 2 one, and
		// visit 3 two, but is not asked about.
		for i, n := range []int{3, 0, 1, 2} {
			for range n {
				m := &haven.VisitMessage{ID: haven.NewID(), PracticeID: u.PracticeID, VisitID: ids[i], PatientID: pat.ID, SenderID: doc, Body: haven.Sealed{7}}
				if err := db.CreateVisitMessage(ctx, m, 200); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, err := db.VisitMessageCounts(ctx, ids[:3])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[ids[0]] != 3 || got[ids[2]] != 1 {
			t.Fatalf("counts %v", got)
		}
		if _, ok := got[ids[1]]; ok {
			t.Fatal("a visit without messages is counted")
		}
		if got, err := db.VisitMessageCounts(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("no visits: %v %v", got, err)
		}
		if got, err := db.VisitMessageCounts(ctx, []string{ids[3]}); err != nil || len(got) != 1 || got[ids[3]] != 2 {
			t.Fatalf("one visit: %v %v", got, err)
		}
	})
}

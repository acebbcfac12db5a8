package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"haven"
	"haven/store/sqlstore"
)

// visitFixture stores a practice, a clinician, two patients and a booked
// visit for each at 09:00 and 09:30 on a day far ahead.
type visitFixture struct {
	a, b *haven.Visit
}

func newVisitFixture(t *testing.T, db *sqlstore.DB) visitFixture {
	t.Helper()
	ctx := context.Background()
	p := &haven.Practice{ID: haven.NewID(), Name: "Riverside"}
	if err := db.CreatePractice(ctx, p); err != nil {
		t.Fatal(err)
	}
	doc := &haven.User{ID: haven.NewID(), PracticeID: p.ID, Role: haven.RoleClinician, EmailIndex: []byte("doc"), Email: haven.Sealed{1}, Name: haven.Sealed{2}}
	if err := db.CreateUser(ctx, doc); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2031, 3, 4, 9, 0, 0, 0, time.UTC)
	var f visitFixture
	for i, dst := range []**haven.Visit{&f.a, &f.b} {
		u := &haven.User{ID: haven.NewID(), PracticeID: p.ID, Role: haven.RolePatient, EmailIndex: []byte{byte('p'), byte(i)}, Email: haven.Sealed{3}, Name: haven.Sealed{4}}
		if err := db.CreatePatient(ctx, u, &haven.Patient{ID: u.ID, PracticeID: p.ID, MRNIndex: []byte{byte('m'), byte(i)}, MRN: haven.Sealed{5}, Demographics: haven.Sealed{6}, Contact: haven.Sealed{7}}, nil); err != nil {
			t.Fatal(err)
		}
		start := day.Add(time.Duration(i) * 30 * time.Minute)
		v := &haven.Visit{ID: haven.NewID(), PracticeID: p.ID, PatientID: u.ID, ClinicianID: doc.ID, Start: start, End: start.Add(30 * time.Minute),
			State: haven.VisitBooked, Reason: haven.Sealed{8}, BookedBy: u.ID}
		if err := db.CreateVisit(ctx, v); err != nil {
			t.Fatal(err)
		}
		*dst = v
	}
	return f
}

// TestRescheduleUpdateIsGuardedByVersionStateAndTheSlotIndex: the move is
// one UPDATE that refuses, changing nothing, a stale copy of the visit
// (someone moved it since it was read), a visit no longer booked, and a
// time another live visit of the clinician holds; and it re-arms the
// visit's reminder.
func TestRescheduleUpdateIsGuardedByVersionStateAndTheSlotIndex(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		f := newVisitFixture(t, db)
		stale := *f.a
		at := time.Date(2031, 3, 1, 9, 0, 0, 0, time.UTC)
		if ok, err := db.ClaimReminder(ctx, f.a.ID, f.a.Version, f.a.Start, at); err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}

		later := f.a.Start.Add(2 * time.Hour)
		if err := db.RescheduleVisit(ctx, f.a, later, later.Add(30*time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, _ := db.FindVisit(ctx, f.a.ID)
		if !got.Start.Equal(later) || got.Version != 2 || f.a.Version != 2 {
			t.Fatalf("after the move: %+v", got)
		}
		if _, reminded, _ := db.VisitReminded(ctx, f.a.ID); reminded {
			t.Fatal("the move did not re-arm the reminder")
		}

		// The copy read before the move is stale: its move is refused.
		if err := db.RescheduleVisit(ctx, &stale, later.Add(time.Hour), later.Add(90*time.Minute)); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("a stale version moved the visit: %v", err)
		}
		// The slot visit b holds is refused by the unique index, even
		// though nothing but the database checks it here.
		if err := db.RescheduleVisit(ctx, f.a, f.b.Start, f.b.End); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("moved onto a held slot: %v", err)
		}
		if got, _ := db.FindVisit(ctx, f.a.ID); !got.Start.Equal(later) || got.Version != 2 {
			t.Fatalf("a refused move changed the visit: %+v", got)
		}
		// Once the visit is no longer booked, it does not move.
		if err := db.MoveVisit(ctx, &haven.Visit{ID: f.b.ID, State: haven.VisitCancelled, Start: f.b.Start, End: f.b.End, Version: f.b.Version}, haven.VisitBooked); err != nil {
			t.Fatal(err)
		}
		b, _ := db.FindVisit(ctx, f.b.ID)
		if err := db.RescheduleVisit(ctx, b, later.Add(time.Hour), later.Add(90*time.Minute)); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("a cancelled visit moved: %v", err)
		}
		// A cancelled visit holds no slot: a can now take b's old time.
		if err := db.RescheduleVisit(ctx, f.a, f.b.Start, f.b.End); err != nil {
			t.Fatalf("the cancelled visit's slot: %v", err)
		}
	})
}

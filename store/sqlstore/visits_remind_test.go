package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"haven/store/sqlstore"
)

// TestReminderClaimIsOnceAndFollowsTheVisit: of several claims on one
// visit's reminder only the first holds; a claim on a visit read before it
// moved or stopped being booked fails; a release undoes only its own
// claim; the unreminded list pages by start and id and leaves out claimed,
// started and far-off visits.
func TestReminderClaimIsOnceAndFollowsTheVisit(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		f := newVisitFixture(t, db)
		now := f.a.Start.Add(-12 * time.Hour)

		list := func(from, until time.Time) []string {
			t.Helper()
			var ids []string
			var after time.Time
			afterID := ""
			for {
				page, err := db.UnremindedVisits(ctx, from, until, after, afterID, 1)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range page {
					ids = append(ids, v.ID)
				}
				if len(page) < 1 {
					return ids
				}
				after, afterID = page[len(page)-1].Start, page[len(page)-1].ID
			}
		}
		if ids := list(now, now.Add(24*time.Hour)); len(ids) != 2 || ids[0] != f.a.ID || ids[1] != f.b.ID {
			t.Fatalf("unreminded, paged one by one: %v", ids)
		}
		if ids := list(now, f.a.Start); len(ids) != 1 || ids[0] != f.a.ID {
			t.Fatalf("until a's start: %v", ids)
		}
		if ids := list(f.a.Start, now.Add(24*time.Hour)); len(ids) != 1 || ids[0] != f.b.ID {
			t.Fatalf("from a's start (a has started): %v", ids)
		}

		if ok, err := db.ClaimReminder(ctx, f.a.ID, f.a.Version, f.a.Start, now); err != nil || !ok {
			t.Fatalf("first claim: %v %v", ok, err)
		}
		if ok, err := db.ClaimReminder(ctx, f.a.ID, f.a.Version, f.a.Start, now.Add(time.Minute)); err != nil || ok {
			t.Fatalf("second claim: %v %v", ok, err)
		}
		if ids := list(now, now.Add(24*time.Hour)); len(ids) != 1 || ids[0] != f.b.ID {
			t.Fatalf("a claimed visit is still listed: %v", ids)
		}
		// Someone else's release (another time) leaves the claim; the
		// claimant's own release undoes it.
		if err := db.ReleaseReminder(ctx, f.a.ID, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if at, ok, _ := db.VisitReminded(ctx, f.a.ID); !ok || !at.Equal(now) {
			t.Fatalf("another's release undid the claim: %v %v", at, ok)
		}
		if err := db.ReleaseReminder(ctx, f.a.ID, now); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := db.VisitReminded(ctx, f.a.ID); ok {
			t.Fatal("the release did not undo the claim")
		}

		// A copy read before the visit moved cannot claim it.
		stale := *f.b
		later := f.b.Start.Add(3 * time.Hour)
		if err := db.RescheduleVisit(ctx, f.b, later, later.Add(30*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if ok, err := db.ClaimReminder(ctx, stale.ID, stale.Version, stale.Start, now); err != nil || ok {
			t.Fatalf("claim on a stale copy: %v %v", ok, err)
		}
		if ok, err := db.ClaimReminder(ctx, f.b.ID, f.b.Version, f.b.Start, now); err != nil || !ok {
			t.Fatalf("claim on the moved visit: %v %v", ok, err)
		}
	})
}

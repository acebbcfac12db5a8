package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"haven/internal/testkit"
	"haven/store/sqlstore"
)

// TestRequestCountsAreSharedAndExact: two handles on one database (two
// nodes) count into the same window, concurrent requests are all counted,
// windows and keys are apart, and a purge drops only past windows.
func TestRequestCountsAreSharedAndExact(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a, b := mustOpen(t, dsn), mustOpen(t, dsn)
			w := t0.Truncate(time.Minute)
			const n = 20
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func(db *sqlstore.DB) {
					defer wg.Done()
					if _, err := db.CountRequest(ctx, "addr:192.0.2.1", w); err != nil {
						t.Error(err)
					}
				}([]*sqlstore.DB{a, b}[i%2])
			}
			wg.Wait()
			if got, err := b.CountRequest(ctx, "addr:192.0.2.1", w); err != nil || got != n+1 {
				t.Fatalf("count after %d shared requests = %d, %v; want %d", n, got, err, n+1)
			}
			if got, _ := a.CountRequest(ctx, "addr:192.0.2.2", w); got != 1 {
				t.Errorf("another key starts at %d", got)
			}
			if got, _ := a.CountRequest(ctx, "addr:192.0.2.1", w.Add(time.Minute)); got != 1 {
				t.Errorf("the next window starts at %d", got)
			}
			if got, _ := a.CountRequest(ctx, "user:\x00bin", w); got != 1 {
				t.Errorf("a binary key counts %d", got)
			}
			purged, err := a.PurgeRequestCounts(ctx, w.Add(time.Minute))
			if err != nil || purged != 3 {
				t.Fatalf("purge = %d, %v; want the 3 rows of the past window", purged, err)
			}
			if got, _ := a.CountRequest(ctx, "addr:192.0.2.1", w.Add(time.Minute)); got != 2 {
				t.Errorf("the current window lost its count: %d", got)
			}
		})
	}
}

// TestRequestCountBatchesAddUpAcrossNodes: two nodes flush overlapping
// batches of keys (in different orders) at the same time many times over;
// every add is counted, each total comes back at its own key's place, and
// an add of 0 reads the shared count without changing it.
func TestRequestCountBatchesAddUpAcrossNodes(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a, b := mustOpen(t, dsn), mustOpen(t, dsn)
			w := t0.Truncate(time.Minute)
			keys := []string{"addr:192.0.2.1", "addr:192.0.2.2", "user:u1", "user:u2"}
			rev := []string{keys[3], keys[2], keys[1], keys[0]}
			const rounds = 15
			var wg sync.WaitGroup
			for i := range 2 * rounds {
				wg.Add(1)
				go func() {
					defer wg.Done()
					db, ks := a, keys
					if i%2 == 1 {
						db, ks = b, rev
					}
					// key i gets i+1 a flush, in either order
					adds := make([]int, len(ks))
					for j, k := range ks {
						for n, kk := range keys {
							if kk == k {
								adds[j] = n + 1
							}
						}
					}
					if _, err := db.AddRequestCounts(ctx, w, ks, adds); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			got, err := b.AddRequestCounts(ctx, w, []string{keys[2], keys[0], "addr:198.51.100.1"}, []int{0, 0, 5})
			if err != nil {
				t.Fatal(err)
			}
			if want := []int{3 * 2 * rounds, 1 * 2 * rounds, 5}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
				t.Fatalf("totals = %v, want %v", got, want)
			}
			if n, _ := a.CountRequest(ctx, keys[0], w); n != 2*rounds+1 {
				t.Errorf("a read of 0 changed the count: %d", n)
			}
		})
	}
}

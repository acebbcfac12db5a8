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

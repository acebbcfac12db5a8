package audit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"haven/audit"
	"haven/audit/audittest"
	"haven/audit/memlog"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// A node whose audit log cannot be written must say so to the load
// balancer (every PHI request would fail closed), and say it is ready again
// once it can write.
func TestReadyFollowsWhetherTheLogCanBeWritten(t *testing.T) {
	ctx := context.Background()
	st := memlog.New()
	c := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	l := audit.NewLog(st, audit.Options{Now: c.Now})
	defer l.Close()
	if err := l.Ready(ctx); err != nil {
		t.Fatalf("a fresh log: %v", err)
	}
	// The table is gone or locked: the probe says so, appending nothing.
	st.SetDown(errors.New("no such table: audit_events"))
	if err := l.Ready(ctx); err == nil {
		t.Fatal("ready while the store refuses writes")
	}
	st.SetDown(nil)
	if err := l.Ready(ctx); err != nil {
		t.Fatalf("not ready once the store takes writes again: %v", err)
	}
	if n, _ := st.Size(ctx, "p1"); n != 0 {
		t.Fatalf("readiness appended %d events", n)
	}

	// An append failed for a reason the probe cannot see (a full disk):
	// not ready for a while, or until an append succeeds.
	st.SetDown(errors.New("disk full"))
	if _, err := l.Append(ctx, audittest.SampleEvent("p1", 0)); err == nil {
		t.Fatal("append to a failing store")
	}
	st.SetDown(nil)
	if err := l.Ready(ctx); err == nil {
		t.Fatal("ready right after an append failed")
	}
	c.Add(audit.FailureHold + time.Second)
	if err := l.Ready(ctx); err != nil {
		t.Fatalf("still not ready long after the failure: %v", err)
	}
	st.SetDown(errors.New("disk full"))
	l.Append(ctx, audittest.SampleEvent("p1", 0))
	st.SetDown(nil)
	if _, err := l.Append(ctx, audittest.SampleEvent("p1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Ready(ctx); err != nil {
		t.Fatalf("not ready after a successful append: %v", err)
	}
}

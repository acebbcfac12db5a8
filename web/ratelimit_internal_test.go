package web

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// memCounter is a shared count in memory, standing in for the database in
// a test of one node's bookkeeping.
type memCounter struct {
	mu     sync.Mutex
	hits   map[string]int
	writes int
}

func (m *memCounter) AddRequestCounts(_ context.Context, w time.Time, keys []string, adds []int) ([]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	out := make([]int, len(keys))
	for i, k := range keys {
		m.hits[fmt.Sprint(k, w.UnixMicro())] += adds[i]
		out[i] = m.hits[fmt.Sprint(k, w.UnixMicro())]
	}
	return out, nil
}

func (m *memCounter) PurgeRequestCounts(context.Context, time.Time) (int, error) { return 0, nil }

// TestRateLimiterForgetsIdleKeysFarFromTheirLimit: a flood from thousands
// of addresses, one request each, leaves nothing in the node's memory two
// flushes later, and costs one statement a flush, not one a request; a key
// near its limit is kept (and read back) so the node goes on refusing it.
func TestRateLimiterForgetsIdleKeysFarFromTheirLimit(t *testing.T) {
	m := &memCounter{hits: map[string]int{}}
	now := time.Date(2026, 5, 4, 10, 0, 1, 0, time.UTC)
	l, err := newRateLimiter(&RateLimits{Counter: m, PerAddress: 10, FlushEvery: time.Hour, Now: func() time.Time { return now }},
		prometheus.NewRegistry(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	w := now.Truncate(time.Minute)
	for i := range 5000 {
		l.count(fmt.Sprintf("addr:10.0.%d.%d", i/256, i%256), w, 10)
	}
	for range 9 {
		l.count("addr:192.0.2.1", w, 10)
	}
	ctx := context.Background()
	for range 2 {
		if err := l.flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l.mu.Lock()
	n := len(l.counts)
	l.mu.Unlock()
	if n != 1 {
		t.Errorf("%d keys held after two flushes; want only the one near its limit", n)
	}
	if m.writes != 2 {
		t.Errorf("%d statements for 5009 requests and two flushes; want 2", m.writes)
	}
	if got := l.count("addr:192.0.2.1", w, 10); got != 10 {
		t.Errorf("the key near its limit counts %d, want 10", got)
	}
	if got := l.count("addr:192.0.2.1", w, 10); got <= 10 {
		t.Errorf("the key over its limit counts %d", got)
	}
}

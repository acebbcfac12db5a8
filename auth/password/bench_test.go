package password

import (
	"context"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// BenchmarkHashDirect is the baseline: argon2id at DefaultParams with no pool.
func BenchmarkHashDirect(b *testing.B) {
	salt := newSalt(DefaultParams.SaltLen)
	for b.Loop() {
		argon2.IDKey([]byte("correct horse battery staple"), salt, DefaultParams.Time, DefaultParams.Memory, DefaultParams.Threads, DefaultParams.KeyLen)
	}
}

// BenchmarkHash is one hash at a time through the Hasher: its overhead over
// the baseline is the pool's bookkeeping, salt and encoding.
func BenchmarkHash(b *testing.B) {
	h := NewHasher(HasherConfig{})
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// heapPeak samples the live heap while a flood runs, to show what the pool
// saves: each running hash holds DefaultParams.Memory.
type heapPeak struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
}

func startHeapPeak() *heapPeak {
	p := &heapPeak{stop: make(chan struct{}), done: make(chan struct{})}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(p.done)
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > p.peak.Load() {
				p.peak.Store(v)
			}
			select {
			case <-p.stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return p
}

func (p *heapPeak) report(b *testing.B) {
	close(p.stop)
	<-p.done
	b.ReportMetric(float64(p.peak.Load())/(1<<20), "peak-heap-MiB")
}

// flood starts n goroutines at once, each doing one hash with do.
func flood(b *testing.B, n int, do func() error) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	var failed atomic.Int64
	for range n {
		wg.Go(func() {
			<-start
			if do() != nil {
				failed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if failed.Load() != 0 {
		b.Fatalf("%d of %d hashes failed", failed.Load(), n)
	}
}

// BenchmarkFlood: one op is a burst of N simultaneous sign-ins. Direct is
// the baseline (every hash allocates at once); Pool runs them through a
// Hasher with a queue big enough to take the whole burst. Compare ns/op
// (time to drain the burst) and peak-heap-MiB (what the burst costs).
func BenchmarkFlood(b *testing.B) {
	for _, n := range []int{16, 64} {
		b.Run("Direct/N="+strconv.Itoa(n), func(b *testing.B) {
			salt := newSalt(DefaultParams.SaltLen)
			peak := startHeapPeak()
			for b.Loop() {
				flood(b, n, func() error {
					argon2.IDKey([]byte("flood"), salt, DefaultParams.Time, DefaultParams.Memory, DefaultParams.Threads, DefaultParams.KeyLen)
					return nil
				})
			}
			peak.report(b)
		})
		b.Run("Pool/N="+strconv.Itoa(n), func(b *testing.B) {
			h := NewHasher(HasherConfig{QueueLimit: n})
			ctx := context.Background()
			peak := startHeapPeak()
			for b.Loop() {
				flood(b, n, func() error { _, err := h.Hash(ctx, "flood"); return err })
			}
			peak.report(b)
		})
	}
}

// BenchmarkBreachedMapLookup is the baseline for the list lookup: the same
// entries in a Go map (fast, but about ten times the memory).
func BenchmarkBreachedMapLookup(b *testing.B) {
	l := loadBreached()
	m := make(map[string]struct{}, l.len())
	for i := range l.len() {
		m[string(l.entry(i))] = struct{}{}
	}
	probes := lookupProbes()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		_, _ = m[probes[i%len(probes)]]
		i++
	}
}

// BenchmarkBreachedLookup is Breached on a mix of listed and unlisted
// passwords (after the one-time load), including normalisation.
func BenchmarkBreachedLookup(b *testing.B) {
	loadBreached()
	probes := lookupProbes()
	i := 0
	for b.Loop() {
		Breached(probes[i%len(probes)])
		i++
	}
}

func lookupProbes() []string {
	return []string{"password1", "iloveyou", "zQ8#kW2v-not-listed", "sunshine", "correct horse battery staple", "baseball", "Tr0ub4dor&3xyz", "superman"}
}

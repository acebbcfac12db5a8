package audittest

import (
	"context"
	"crypto/sha256"
	"testing"

	"haven/audit"
)

// BenchmarkAppend measures Append under many concurrent callers, with group
// commit ("group_commit") and, as the same-run "baseline", with one event
// per commit (MaxBatch 1), on stores made by newStore. The ratio of the two ns/op
// figures is what group commit buys on that store; events/commit shows the
// batch sizes reached. Both seal every commit with a signing key, as a
// server does.
func BenchmarkAppend(b *testing.B, newStore func(b *testing.B) audit.Store) {
	signer := newSigner(b, "haven.bench")
	for _, c := range []struct {
		name     string
		maxBatch int
	}{{"group_commit", 0}, {"baseline", 1}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			l := audit.NewLog(newStore(b), audit.Options{MaxBatch: c.maxBatch, Signer: signer})
			defer l.Close()
			e := SampleEvent("bench", 0)
			b.SetParallelism(16) // 16 requests in flight per core, as on a busy server
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(ctx, e); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if s := l.Stats(); s.Commits > 0 {
				b.ReportMetric(float64(s.Events)/float64(s.Commits), "events/commit")
			}
		})
	}
}

// BenchmarkVerify measures Verify over a log of n events on a store made by
// newStore, and, as the same-run baseline, plain SHA-256 over the same
// events' canonical bytes. Both report ns/event; their ratio is the
// verifier's cost over the least any verifier must spend.
func BenchmarkVerify(b *testing.B, newStore func(b *testing.B) audit.Store, n int) {
	ctx := context.Background()
	st := newStore(b)
	signer := newSigner(b, "haven.bench")
	l := audit.NewLog(st, audit.Options{Signer: signer})
	const chunk = 1000
	batch := make([]audit.Event, 0, chunk)
	for i := 0; i < n; i++ {
		batch = append(batch, SampleEvent("bench", i))
		if len(batch) == chunk || i == n-1 {
			if _, err := l.Append(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := l.Checkpoint(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	l.Close()
	canon := make([][]byte, 0, n)
	for from := uint64(0); from < uint64(n); from += 4096 {
		es, err := st.Entries(ctx, "bench", from, from+4096)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range es {
			canon = append(canon, e.Event.Canonical())
		}
	}
	perEvent := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
	}

	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			rep, err := audit.Verify(ctx, st, "bench", signer.VerifierKey(), nil)
			if err != nil || !rep.OK() || rep.Size != uint64(n) {
				b.Fatalf("verify: %v %+v", err, rep)
			}
		}
		perEvent(b)
	})
	// The worst case for seals: every event its own batch, so every entry
	// carries a signature to check (an idle clinic's log).
	sealed := newStore(b)
	m := max(n/20, 1)
	ls := audit.NewLog(sealed, audit.Options{Signer: signer})
	for i := 0; i < m; i++ {
		if _, err := ls.Append(ctx, SampleEvent("bench", i)); err != nil {
			b.Fatal(err)
		}
	}
	ls.Close()
	b.Run("verify_one_seal_per_event", func(b *testing.B) {
		for b.Loop() {
			rep, err := audit.Verify(ctx, sealed, "bench", signer.VerifierKey(), nil)
			if err != nil || !rep.OK() || rep.Seals != m {
				b.Fatalf("verify: %v %+v", err, rep)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(m), "ns/event")
	})
	b.Run("baseline", func(b *testing.B) {
		var sink byte
		for b.Loop() {
			for _, c := range canon {
				h := sha256.Sum256(c)
				sink ^= h[0]
			}
		}
		_ = sink
		perEvent(b)
	})
}

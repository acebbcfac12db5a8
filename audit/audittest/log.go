package audittest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/audit"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

func testLog(t *testing.T, newStore func(t *testing.T) audit.Store) {
	ctx := context.Background()

	t.Run("ConcurrentAppendersEachGetTheirOwnContiguousSeqs", func(t *testing.T) {
		st := newStore(t)
		l := audit.NewLog(st, audit.Options{})
		defer l.Close()
		const appenders, each = 50, 8
		got := make([][]uint64, appenders)
		var wg sync.WaitGroup
		for a := range appenders {
			wg.Go(func() {
				for i := 0; i < each; i += 2 {
					// Two events per call; the request id names the caller.
					e1, e2 := SampleEvent("p1", a*100+i), SampleEvent("p1", a*100+i+1)
					seqs, err := l.Append(ctx, e1, e2)
					if err != nil {
						t.Errorf("appender %d: %v", a, err)
						return
					}
					if len(seqs) != 2 || seqs[1] != seqs[0]+1 {
						t.Errorf("appender %d: one call's events got seqs %v, want two adjacent", a, seqs)
					}
					got[a] = append(got[a], seqs...)
				}
			})
		}
		wg.Wait()
		var all []uint64
		for _, s := range got {
			all = append(all, s...)
		}
		slices.Sort(all)
		for i, s := range all {
			if s != uint64(i) {
				t.Fatalf("seqs are not 0..%d without gaps or repeats: position %d holds %d", appenders*each-1, i, s)
			}
		}
		es, err := st.Entries(ctx, "p1", 0, appenders*each)
		if err != nil {
			t.Fatal(err)
		}
		for a, seqs := range got {
			for k, s := range seqs {
				want := fmt.Sprintf("req-%d", a*100+k)
				if es[s].RequestID != want {
					t.Fatalf("appender %d was told seq %d, which holds %s, not its own event %s", a, s, es[s].RequestID, want)
				}
			}
		}
	})

	t.Run("WaitingAppendersShareOneCommit", func(t *testing.T) {
		for _, c := range []struct {
			name     string
			maxBatch int
			commits  int
		}{{"GroupCommit", 0, 2}, {"BatchSizeOne", 1, 50}} {
			t.Run(c.name, func(t *testing.T) {
				hs := &hookStore{Store: newStore(t)}
				g := newGate()
				hs.setBefore(g.wait)
				l := audit.NewLog(hs, audit.Options{MaxBatch: c.maxBatch})
				defer l.Close()
				var wg sync.WaitGroup
				wg.Go(func() { l.Append(ctx, SampleEvent("p1", 0)) })
				<-g.entered // the first commit is in flight, holding the writer
				for i := 1; i < 50; i++ {
					wg.Go(func() {
						if _, err := l.Append(ctx, SampleEvent("p1", i)); err != nil {
							t.Error(err)
						}
					})
				}
				waitFor(t, "49 queued events", func() bool { return l.Stats().Queued == 49 })
				hs.setBefore(nil)
				g.release()
				wg.Wait()
				if n := hs.commitCount(); n != c.commits {
					t.Fatalf("%d commits for 50 appends, want %d", n, c.commits)
				}
				if s := l.Stats(); s.Events != 50 || s.Commits != uint64(c.commits) {
					t.Fatalf("stats %+v", s)
				}
			})
		}
	})

	t.Run("FailingStoreFailsEveryWaiter", func(t *testing.T) {
		hs := &hookStore{Store: newStore(t)}
		g := newGate()
		down := errors.New("disk full")
		hs.setBefore(func() error { g.wait(); return down })
		l := audit.NewLog(hs, audit.Options{})
		defer l.Close()
		var wg sync.WaitGroup
		errs := make([]error, 50)
		seqs := make([][]uint64, 50)
		wg.Go(func() { seqs[0], errs[0] = l.Append(ctx, SampleEvent("p1", 0)) })
		<-g.entered
		for i := 1; i < 50; i++ {
			wg.Go(func() { seqs[i], errs[i] = l.Append(ctx, SampleEvent("p1", i)) })
		}
		waitFor(t, "49 queued events", func() bool { return l.Stats().Queued == 49 })
		g.release()
		wg.Wait()
		for i, err := range errs {
			if haven.ErrorCode(err) != haven.EUNAVAILABLE || seqs[i] != nil {
				t.Fatalf("appender %d got seqs %v, err %v; want no seqs and %s", i, seqs[i], err, haven.EUNAVAILABLE)
			}
			if !errors.Is(err, down) {
				t.Fatalf("appender %d: the cause is lost: %v", i, err)
			}
		}
		if n, _ := hs.Size(ctx, "p1"); n != 0 {
			t.Fatalf("store holds %d entries after failed commits", n)
		}
		// When the store recovers, the log continues without a gap.
		hs.setBefore(nil)
		got, err := l.Append(ctx, SampleEvent("p1", 99))
		if err != nil || got[0] != 0 {
			t.Fatalf("after recovery: %v, %v; want seq 0", got, err)
		}
	})

	t.Run("CommitWhoseAcknowledgementWasLostIsNotOverwritten", func(t *testing.T) {
		hs := &hookStore{Store: newStore(t)}
		hs.setAfter(func() error { return errors.New("connection reset") })
		l := audit.NewLog(hs, audit.Options{})
		defer l.Close()
		if _, err := l.Append(ctx, SampleEvent("p1", 0)); err == nil {
			t.Fatal("append reported success although the store answered with an error")
		}
		hs.setAfter(nil)
		got, err := l.Append(ctx, SampleEvent("p1", 1))
		if err != nil || got[0] != 1 {
			t.Fatalf("next append: %v, %v; want seq 1 after the landed one", got, err)
		}
	})

	t.Run("CancelledAppendIsWithdrawn", func(t *testing.T) {
		hs := &hookStore{Store: newStore(t)}
		g := newGate()
		hs.setBefore(g.wait)
		l := audit.NewLog(hs, audit.Options{})
		defer l.Close()
		var wg sync.WaitGroup
		wg.Go(func() { l.Append(ctx, SampleEvent("p1", 0)) })
		<-g.entered
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() {
			_, err := l.Append(cctx, SampleEvent("p1", 1))
			done <- err
		}()
		waitFor(t, "the second append to queue", func() bool { return l.Stats().Queued == 1 })
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled append: %v", err)
		}
		hs.setBefore(nil)
		g.release()
		wg.Wait()
		got, err := l.Append(ctx, SampleEvent("p1", 2))
		if err != nil || got[0] != 1 {
			t.Fatalf("after withdrawal: %v, %v; want seq 1", got, err)
		}
		es, _ := hs.Entries(ctx, "p1", 0, 10)
		for _, e := range es {
			if e.RequestID == "req-1" {
				t.Fatal("a withdrawn event was stored")
			}
		}
	})

	t.Run("FullQueueWaitsForRoomOrGivesUp", func(t *testing.T) {
		hs := &hookStore{Store: newStore(t)}
		g := newGate()
		hs.setBefore(g.wait)
		l := audit.NewLog(hs, audit.Options{MaxQueue: 2})
		defer l.Close()
		var wg sync.WaitGroup
		wg.Go(func() { l.Append(ctx, SampleEvent("p1", 0)) })
		<-g.entered
		for i := 1; i <= 2; i++ {
			wg.Go(func() { l.Append(ctx, SampleEvent("p1", i)) })
		}
		waitFor(t, "a full queue", func() bool { return l.Stats().Queued == 2 })
		tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, err := l.Append(tctx, SampleEvent("p1", 3)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("append to a full queue: %v, want the deadline", err)
		}
		waiting := make(chan []uint64)
		go func() {
			seqs, _ := l.Append(ctx, SampleEvent("p1", 4))
			waiting <- seqs
		}()
		hs.setBefore(nil)
		g.release()
		if seqs := <-waiting; len(seqs) != 1 {
			t.Fatalf("an append waiting for room was not committed once room was made")
		}
		wg.Wait()
		if _, err := l.Append(ctx, SampleEvent("p1", 5), SampleEvent("p1", 6), SampleEvent("p1", 7)); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("an append larger than the queue: %v, want %s", err, haven.EINVALID)
		}
	})

	t.Run("CloseFlushesQueuedEvents", func(t *testing.T) {
		hs := &hookStore{Store: newStore(t)}
		g := newGate()
		hs.setBefore(g.wait)
		l := audit.NewLog(hs, audit.Options{MaxBatch: 3})
		var wg sync.WaitGroup
		errs := make(chan error, 11)
		for i := range 11 {
			wg.Go(func() {
				_, err := l.Append(ctx, SampleEvent("p1", i))
				errs <- err
			})
			if i == 0 {
				<-g.entered
			}
		}
		waitFor(t, "ten queued events", func() bool { return l.Stats().Queued == 10 })
		closed := make(chan struct{})
		go func() { l.Close(); close(closed) }()
		hs.setBefore(nil)
		g.release()
		<-closed
		if s := l.Stats(); s.Events != 11 {
			t.Fatalf("Close returned with %d of 11 events committed", s.Events)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("append during Close: %v", err)
			}
		}
		if _, err := l.Append(ctx, SampleEvent("p1", 11)); haven.ErrorCode(err) != haven.EUNAVAILABLE {
			t.Fatalf("append after Close: %v, want %s", err, haven.EUNAVAILABLE)
		}
	})

	t.Run("InvalidEventIsRefusedBeforeQueueing", func(t *testing.T) {
		l := audit.NewLog(newStore(t), audit.Options{})
		defer l.Close()
		bad := SampleEvent("p1", 0)
		bad.Reason = "patient said chest pain"
		if _, err := l.Append(ctx, SampleEvent("p1", 1), bad); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("append with a prose reason: %v", err)
		}
		other := SampleEvent("p2", 0)
		if _, err := l.Append(ctx, SampleEvent("p1", 1), other); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("one append across two logs: %v", err)
		}
		if n, _ := l.Size(ctx, "p1"); n != 0 {
			t.Fatalf("a refused append stored %d events", n)
		}
	})

	t.Run("TimeIsUTCMicrosecondsAndDefaultsToNow", func(t *testing.T) {
		st := newStore(t)
		now := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
		l := audit.NewLog(st, audit.Options{Now: func() time.Time { return now }})
		defer l.Close()
		e := SampleEvent("p1", 0)
		e.Time = time.Time{}
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		es, _ := st.Entries(ctx, "p1", 0, 1)
		if want := now.UTC().Truncate(time.Microsecond); !es[0].Time.Equal(want) {
			t.Fatalf("time %v, want %v", es[0].Time, want)
		}
	})

	t.Run("NewLogRecoversFromTheStore", func(t *testing.T) {
		st := newStore(t)
		signer := newSigner(t, "haven.test")
		a := audit.NewLog(st, audit.Options{Signer: signer})
		appendN(t, a, "p1", 0, 300)
		cpA, err := a.Checkpoint(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		a.Close()

		b := audit.NewLog(st, audit.Options{Signer: signer})
		defer b.Close()
		headA, err := audit.OpenCheckpoint(cpA.Note, "p1", signer.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		e := SampleEvent("p1", 271)
		e.Seq = 271
		p, err := b.InclusionProof(ctx, "p1", 271, 300)
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.VerifyInclusion(e.LeafHash(), 271, 300, p, headA.Root); err != nil {
			t.Fatalf("a restarted log's proof against the old checkpoint: %v", err)
		}
		appendN(t, b, "p1", 300, 5)
		cpB, err := b.Checkpoint(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		headB, _ := audit.OpenCheckpoint(cpB.Note, "p1", signer.VerifierKey())
		cp, err := b.ConsistencyProof(ctx, "p1", 300, 305)
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.VerifyConsistency(300, 305, cp, headA.Root, headB.Root); err != nil {
			t.Fatalf("checkpoint after restart is not consistent with the one before: %v", err)
		}
	})

	t.Run("TwoNodesSharingAStoreStayContiguous", func(t *testing.T) {
		st := newStore(t)
		signer := newSigner(t, "haven.test")
		nodes := []*audit.Log{audit.NewLog(st, audit.Options{Signer: signer}), audit.NewLog(st, audit.Options{Signer: signer})}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var all []uint64
		for w := range 20 {
			wg.Go(func() {
				for i := range 5 {
					seqs, err := nodes[w%2].Append(ctx, SampleEvent("p1", w*10+i))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					all = append(all, seqs...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(all)
		for i, s := range all {
			if s != uint64(i) {
				t.Fatalf("two nodes produced seqs with a gap or repeat at %d: %d", i, s)
			}
		}
		for _, n := range nodes {
			n.Close()
		}
		// Both nodes sign the same tree head, byte for byte.
		cp0, err0 := nodes[0].Checkpoint(ctx, "p1")
		cp1, err1 := nodes[1].Checkpoint(ctx, "p1")
		if err0 != nil || err1 != nil {
			t.Fatal(err0, err1)
		}
		if cp0.Size != 100 || !bytes.Equal(cp0.Note, cp1.Note) {
			t.Fatalf("nodes disagree on the checkpoint at size %d/%d", cp0.Size, cp1.Size)
		}
		rep, err := audit.Verify(ctx, st, "p1", signer.VerifierKey(), nil)
		if err != nil || !rep.OK() {
			t.Fatalf("verify after two nodes: %v %+v", err, rep)
		}
	})

	t.Run("CheckpointVerifiesWithAnIndependentVerifier", func(t *testing.T) {
		st := newStore(t)
		priv, pub, err := audit.GenerateKey("clinic.example/audit")
		if err != nil {
			t.Fatal(err)
		}
		signer, err := audit.NewSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		if signer.VerifierKey() != pub {
			t.Fatalf("verifier key derived from the private key differs from the generated one")
		}
		l := audit.NewLog(st, audit.Options{Signer: signer})
		defer l.Close()
		events := appendN(t, l, "p1", 0, 37)
		cp, err := l.Checkpoint(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		// Only the note package and the RFC's definitions from here on.
		// The checkpoint is signed under its origin line as key name
		// (c2sp.org/tlog-checkpoint), with the key audit.pub holds.
		raw, err := base64.StdEncoding.DecodeString(strings.SplitN(pub, "+", 3)[2])
		if err != nil || len(raw) != 33 || raw[0] != 1 {
			t.Fatalf("verifier key %q", pub)
		}
		logKey, err := note.NewEd25519VerifierKey("clinic.example/audit/p1", raw[1:])
		if err != nil {
			t.Fatal(err)
		}
		v, err := note.NewVerifier(logKey)
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(cp.Note, note.VerifierList(v))
		if err != nil {
			t.Fatalf("note.Open: %v", err)
		}
		lines := strings.Split(n.Text, "\n")
		if len(lines) != 4 || lines[0] != "clinic.example/audit/p1" || lines[1] != "37" {
			t.Fatalf("checkpoint body %q", n.Text)
		}
		leaves := make([][]byte, len(events))
		for i, e := range events {
			leaves[i] = referenceLeaf(e)
		}
		if want := base64.StdEncoding.EncodeToString(referenceRoot(leaves)); lines[2] != want {
			t.Fatalf("signed root %s, RFC 6962 root of the events %s", lines[2], want)
		}
		// Signing again with nothing new returns the stored checkpoint.
		again, err := l.Checkpoint(ctx, "p1")
		if err != nil || !bytes.Equal(again.Note, cp.Note) {
			t.Fatalf("second checkpoint at the same size: %v", err)
		}
		if latest, err := l.LatestCheckpoint(ctx, "p1"); err != nil || latest.Size != 37 {
			t.Fatalf("LatestCheckpoint: %v %v", latest.Size, err)
		}
	})

	t.Run("ProofsVerifyAndAWrongLeafFails", func(t *testing.T) {
		st := newStore(t)
		l := audit.NewLog(st, audit.Options{})
		defer l.Close()
		const n = 530 // past two 256-leaf blocks
		events := appendN(t, l, "p1", 0, n)
		leaves := make([][]byte, n)
		for i, e := range events {
			leaves[i] = referenceLeaf(e)
		}
		h := rfc6962.DefaultHasher
		sizes := []uint64{1, 2, 3, 7, 8, 255, 256, 257, 300, 511, 512, 513, n}
		for _, size := range sizes {
			root := referenceRoot(leaves[:size])
			for _, seq := range []uint64{0, size / 3, size / 2, size - 1} {
				p, err := l.InclusionProof(ctx, "p1", seq, size)
				if err != nil {
					t.Fatal(err)
				}
				if err := proof.VerifyInclusion(h, seq, size, leaves[seq], p, root); err != nil {
					t.Fatalf("inclusion of %d in %d: %v", seq, size, err)
				}
				wrong := leaves[(seq+1)%uint64(n)]
				if size > 1 && audit.VerifyInclusion(wrong, seq, size, p, root) == nil {
					t.Fatalf("inclusion proof of %d in %d accepted another event's leaf", seq, size)
				}
				if len(p) > 0 {
					p[len(p)-1] = bytes.Clone(p[len(p)-1])
					p[len(p)-1][0] ^= 1
					if audit.VerifyInclusion(leaves[seq], seq, size, p, root) == nil {
						t.Fatalf("a corrupted inclusion proof of %d in %d verified", seq, size)
					}
				}
			}
			for _, size2 := range sizes {
				if size2 < size {
					continue
				}
				p, err := l.ConsistencyProof(ctx, "p1", size, size2)
				if err != nil {
					t.Fatal(err)
				}
				root2 := referenceRoot(leaves[:size2])
				if err := proof.VerifyConsistency(h, size, size2, p, root, root2); err != nil {
					t.Fatalf("consistency %d -> %d: %v", size, size2, err)
				}
				if size < size2 && audit.VerifyConsistency(size, size2, p, referenceRoot(leaves[1:size+1]), root2) == nil {
					t.Fatalf("consistency %d -> %d accepted a different old root", size, size2)
				}
			}
		}
		if _, err := l.InclusionProof(ctx, "p1", 5, n+1); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("proof for a tree larger than the log: %v", err)
		}
		if _, err := l.InclusionProof(ctx, "p1", 9, 9); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("proof for an entry outside the tree: %v", err)
		}
	})

	t.Run("UntamperedLogVerifies", func(t *testing.T) {
		st := newStore(t)
		signer := newSigner(t, "haven.test")
		w := audit.DirWitness{Dir: t.TempDir()}
		l := audit.NewLog(st, audit.Options{Signer: signer, Witnesses: []audit.Witness{w}})
		defer l.Close()
		for _, n := range []int{0, 1, 5, 260} {
			size, _ := l.Size(ctx, "p1")
			appendN(t, l, "p1", int(size), n)
			if _, err := l.Checkpoint(ctx, "p1"); err != nil {
				t.Fatal(err)
			}
		}
		appendN(t, l, "p2", 0, 3) // another log alongside
		witnessed, err := w.Checkpoints("p1")
		if err != nil || len(witnessed) != 4 {
			t.Fatalf("witness holds %d checkpoints, %v", len(witnessed), err)
		}
		rep, err := audit.Verify(ctx, st, "p1", signer.VerifierKey(), witnessed)
		if err != nil {
			t.Fatal(err)
		}
		// Four stored, four witnessed, and the witness's newest
		// acknowledgement as recorded.
		if !rep.OK() || rep.Size != 266 || rep.Vouched != 266 || rep.Checkpoints != 9 || rep.Authenticated != 266 || rep.Seals != 266 {
			t.Fatalf("report %+v", rep)
		}
		if _, ok := rep.First(); ok {
			t.Fatal("an untampered log has a first problem")
		}
	})
}

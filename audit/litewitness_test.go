package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"haven/audit"
	"haven/audit/audittest"
	"haven/audit/memlog"

	"golang.org/x/mod/sumdb/note"
)

// TestIndependentWitnessCosignsTheLogAndRefusesRollbacks publishes a growing
// log to litewitness, an implementation of C2SP tlog-witness Haven did not
// write, running as its own process: it must accept every checkpoint (so
// the checkpoints, origins, key ids and consistency proofs are as the specs
// say) and cosign it, and then refuse, with Haven noticing, a rolled-back
// and a rewritten copy of the same log at start and in verify.
func TestIndependentWitnessCosignsTheLogAndRefusesRollbacks(t *testing.T) {
	ctx := context.Background()
	priv, pub, _ := audit.GenerateKey("haven.test")
	s, _ := audit.NewSigner(priv)
	p1key, _ := audit.LogVerifierKey(pub, "p1")
	lw := audittest.StartLitewitness(t, map[string]string{"haven.test/p1": p1key})
	w, err := audit.NewTlogWitness(lw.URL, lw.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	st := memlog.New()
	l := audit.NewLog(st, audit.Options{Signer: s, Witnesses: []audit.Witness{w}})
	defer l.Close()
	for _, upto := range []int{1, 5, 6, 300, 301} {
		n, _ := l.Size(ctx, "p1")
		for i := int(n); i < upto; i++ {
			if _, err := l.Append(ctx, audittest.SampleEvent("p1", i)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := l.Checkpoint(ctx, "p1"); err != nil {
			t.Fatalf("the witness refused the checkpoint at %d: %v", upto, err)
		}
	}
	acks, _ := st.Witnessed(ctx, "p1")
	if len(acks) != 1 || acks[0].Size != 301 {
		t.Fatalf("acknowledgements %+v", acks)
	}
	// The cosignature verifies with nothing but the key litewitness
	// announced and the note package.
	v, err := audit.ParseWitnessKey(lw.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := note.Open(acks[0].Note, note.VerifierList(v)); err != nil || !strings.HasPrefix(n.Text, "haven.test/p1\n301\n") {
		t.Fatalf("cosigned checkpoint: %v", err)
	}
	// A restarted node on the same store agrees with the witness.
	again := audit.NewLog(st, audit.Options{Signer: s, Witnesses: []audit.Witness{w}})
	defer again.Close()
	if _, err := again.Check(ctx, "p1"); err != nil {
		t.Fatalf("start on the genuine log: %v", err)
	}
	rep, err := audit.VerifyWith(ctx, st, "p1", audit.VerifyOptions{Trust: mustTrust(t, pub), Witnesses: []audit.Witness{w}})
	if err != nil || !rep.OK() || len(rep.Witnesses) != 1 || rep.Witnesses[0].Held != 301 {
		t.Fatalf("verify of the genuine log: %v %+v", err, rep)
	}

	// An insider restores the database to a backup of 200 entries (no
	// stored checkpoint, no record of the witness): only the witness knows.
	rolled := memlog.New()
	es, _ := st.Entries(ctx, "p1", 0, 200)
	for _, e := range es {
		rolled.InsertEntry(ctx, "p1", e)
	}
	var we *audit.WitnessError
	restored := audit.NewLog(rolled, audit.Options{Signer: s, Witnesses: []audit.Witness{w}})
	defer restored.Close()
	if _, err := restored.Check(ctx, "p1"); !errors.As(err, &we) || we.Reason != audit.WitnessAhead || we.Size != 301 {
		t.Fatalf("start on a rolled-back log: %v", err)
	}
	rep, err = audit.VerifyWith(ctx, rolled, "p1", audit.VerifyOptions{Trust: mustTrust(t, pub), Witnesses: []audit.Witness{w}})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := rep.First(); !ok || p.Kind != audit.RolledBack || p.Seq != 200 {
		t.Fatalf("verify of a rolled-back log: %v", rep.Problems)
	}

	// ... or rewrites it from entry 250 on, with the real key, to 320.
	forked := memlog.New()
	es, _ = st.Entries(ctx, "p1", 0, 250)
	for _, e := range es {
		forked.InsertEntry(ctx, "p1", e)
	}
	rewriter := audit.NewLog(forked, audit.Options{Signer: s})
	for i := 250; i < 320; i++ {
		rewriter.Append(ctx, audittest.SampleEvent("p1", 9000+i))
	}
	rewriter.Close()
	rewritten := audit.NewLog(forked, audit.Options{Signer: s, Witnesses: []audit.Witness{w}})
	defer rewritten.Close()
	if _, err := rewritten.Check(ctx, "p1"); !errors.As(err, &we) || we.Reason != audit.WitnessFork {
		t.Fatalf("start on a rewritten log: %v", err)
	}
	rep, err = audit.VerifyWith(ctx, forked, "p1", audit.VerifyOptions{Trust: mustTrust(t, pub), Witnesses: []audit.Witness{w}})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := rep.First(); !ok || p.Kind != audit.RolledBack {
		t.Fatalf("verify of a rewritten log: %v", rep.Problems)
	}
	// The witness still holds the genuine log, and takes its growth.
	for i := 301; i < 310; i++ {
		l.Append(ctx, audittest.SampleEvent("p1", i))
	}
	if _, err := l.Checkpoint(ctx, "p1"); err != nil {
		t.Fatalf("the genuine log after the attempts: %v", err)
	}
}

func mustTrust(t *testing.T, verifierKey string) *audit.Trust {
	t.Helper()
	tr, err := audit.NewTrust(verifierKey)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

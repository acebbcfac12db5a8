package audit_test

import (
	"bytes"
	"context"
	"testing"

	"haven"
	"haven/audit"
	"haven/audit/audittest"
	"haven/audit/memlog"
)

func newTestSigner(t *testing.T) *audit.Signer {
	t.Helper()
	priv, _, err := audit.GenerateKey("haven.test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A key rotation hands the log over from one key to the next: a verifier
// holding either key follows it, the new key signs what follows, and the
// retired key vouches for nothing appended after the hand-over.
func TestKeyRotationKeepsTheLogVerifiable(t *testing.T) {
	ctx := context.Background()
	st := memlog.New()
	oldKey, newKey := newTestSigner(t), newTestSigner(t)
	l := audit.NewLog(st, audit.Options{Signer: oldKey})
	for i := range 20 {
		l.Append(ctx, audittest.SampleEvent("p1", i))
	}
	if _, err := l.Check(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	l.Close()
	h, err := audit.SignHandover(oldKey, newKey, map[string]uint64{"p1": 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutHandover(ctx, oldKey.VerifierKey(), h); err != nil {
		t.Fatal(err)
	}
	hs, _ := st.Handovers(ctx)
	trust := mustTrust(t, oldKey.VerifierKey())
	if err := trust.AddHandovers(hs); err != nil {
		t.Fatal(err)
	}
	if err := trust.Current(newKey.VerifierKey()); err != nil {
		t.Fatalf("the new key is not current after the hand-over: %v", err)
	}
	if err := trust.Current(oldKey.VerifierKey()); haven.ErrorCode(err) != haven.EFORBIDDEN {
		t.Fatalf("the old key is still current: %v", err)
	}

	next := audit.NewLog(st, audit.Options{Signer: newKey, Trust: trust})
	if _, err := next.Check(ctx, "p1"); err != nil {
		t.Fatalf("start with the new key: %v", err)
	}
	for i := 20; i < 30; i++ {
		if _, err := next.Append(ctx, audittest.SampleEvent("p1", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := next.Checkpoint(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	next.Close()
	for name, anchor := range map[string]string{"OldKey": oldKey.VerifierKey(), "NewKey": newKey.VerifierKey()} {
		rep, err := audit.VerifyWith(ctx, st, "p1", audit.VerifyOptions{Trust: mustTrust(t, anchor)})
		if err != nil || !rep.OK() || rep.Authenticated != 30 || rep.Vouched != 30 {
			t.Fatalf("verify holding the %s: %v %+v", name, err, rep)
		}
	}

	// Whoever kept the retired key appends with it: nothing it signs after
	// the hand-over counts, and a node will not start with it.
	stale := audit.NewLog(st, audit.Options{Signer: oldKey, Trust: mustTrust(t, newKey.VerifierKey()+"\n"+oldKey.VerifierKey())})
	defer stale.Close()
	stale.Append(ctx, audittest.SampleEvent("p1", 30))
	rep, _ := audit.VerifyWith(ctx, st, "p1", audit.VerifyOptions{Trust: mustTrust(t, oldKey.VerifierKey())})
	if p, ok := rep.First(); !ok || p.Kind != audit.Unauthenticated || p.Seq != 30 {
		t.Fatalf("an entry sealed by the retired key: %v", rep.Problems)
	}
	if _, err := audit.NewLog(st, audit.Options{Signer: oldKey, Trust: trust}).Check(ctx, "p1"); haven.ErrorCode(err) != haven.EFORBIDDEN {
		t.Fatalf("start with the retired key: %v", err)
	}
}

func TestHandoverNeedsBothKeys(t *testing.T) {
	ctx := context.Background()
	oldKey, newKey, other := newTestSigner(t), newTestSigner(t), newTestSigner(t)
	h, _ := audit.SignHandover(oldKey, newKey, map[string]uint64{"p1": 3})
	if _, err := audit.ParseHandover(h); err != nil {
		t.Fatal(err)
	}
	// The same text with only the new key's signature: someone holding a
	// key of their own claims the log.
	text, _, _ := bytes.Cut(h, []byte("\n\n"))
	one, err := audit.SignHandover(other, newKey, map[string]uint64{"p1": 3})
	if err != nil {
		t.Fatal(err)
	}
	forged := append(append(bytes.Clone(text), "\n\n"...), one[bytes.Index(one, []byte("\n\n"))+2:]...)
	if _, err := audit.ParseHandover(forged); err == nil {
		t.Fatal("a hand-over not signed by the retiring key was accepted")
	}
	trust := mustTrust(t, oldKey.VerifierKey())
	if err := trust.AddHandovers([][]byte{forged}); err != nil {
		t.Fatal(err)
	}
	if err := trust.Current(newKey.VerifierKey()); err == nil {
		t.Fatal("a forged hand-over extended the trust")
	}
	// One key handed over to two keys is a fork of the deployment.
	h2, _ := audit.SignHandover(oldKey, other, map[string]uint64{"p1": 3})
	if err := mustTrust(t, oldKey.VerifierKey()).AddHandovers([][]byte{h, h2}); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("two hand-overs from one key: %v", err)
	}
	st := memlog.New()
	st.PutHandover(ctx, oldKey.VerifierKey(), h)
	if err := st.PutHandover(ctx, oldKey.VerifierKey(), h2); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("storing a second hand-over from one key: %v", err)
	}
}

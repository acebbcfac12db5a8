package audit_test

import (
	"context"
	"fmt"

	"haven/audit"
	"haven/audit/audittest"
	"haven/audit/memlog"
)

// A service appends an event before it releases data, the server signs a
// checkpoint, a patient's page proves one event is in the log, and an
// auditor verifies the whole log.
func Example() {
	ctx := context.Background()
	priv, pub, _ := audit.GenerateKey("clinic.example/audit")
	signer, _ := audit.NewSigner(priv)
	st := memlog.New() // the deployment passes its database adapter
	l := audit.NewLog(st, audit.Options{Signer: signer})
	defer l.Close()

	var last audit.Event
	for i := range 10 {
		last = audittest.SampleEvent("p1", i)
		seqs, err := l.Append(ctx, last) // blocks until committed
		if err != nil {
			return // fail closed: do not release the chart
		}
		last.Seq = seqs[0]
	}

	cp, _ := l.Checkpoint(ctx, "p1")
	head, _ := audit.OpenCheckpoint(cp.Note, "p1", pub)
	proof, _ := l.InclusionProof(ctx, "p1", last.Seq, head.Size)
	fmt.Println("included:", audit.VerifyInclusion(last.LeafHash(), last.Seq, head.Size, proof, head.Root) == nil)

	rep, _ := audit.Verify(ctx, st, "p1", pub, nil)
	fmt.Println("verified:", rep.OK(), "entries:", rep.Size)
	// Output:
	// included: true
	// verified: true entries: 10
}

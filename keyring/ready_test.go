package keyring_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"haven"
	"haven/keyring"
	"haven/keyring/memstore"
)

// downRoot is a root whose KMS stopped answering.
type downRoot struct{ keyring.Root }

var errKMSDown = errors.New("kms: connection refused")

func (downRoot) Wrap(context.Context, []byte, []byte) ([]byte, error)   { return nil, errKMSDown }
func (downRoot) Unwrap(context.Context, []byte, []byte) ([]byte, error) { return nil, errKMSDown }

// TestReadyFailsOnANodeWithoutTheCurrentRoot: another node rotated the
// root and this node was not given the new key file, so every key it
// would create fails; /readyz must say so (and name no key material),
// while the node that has the root stays ready.
func TestReadyFailsOnANodeWithoutTheCurrentRoot(t *testing.T) {
	ctx := context.Background()
	a, store, rootA := newKeyring(t)
	mustSeal(t, a, keyring.AD{PracticeID: "p1", PatientID: "pat1", Kind: "note", RecordID: "r1", Field: "body"}, "x")
	b := openKeyring(t, store, rootA)
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("a node with the current root: %v", err)
	}
	rootB := newRoot(t, "root-b.key")
	if err := a.RotateRoot(ctx, rootB, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(ctx); err != nil {
		t.Fatalf("the node that rotated: %v", err)
	}
	err := b.Ready(ctx)
	if haven.ErrorCode(err) != haven.EINTERNAL || !strings.Contains(err.Error(), rootB.ID()) {
		t.Fatalf("a node without the new root is ready: %v", err)
	}
}

// TestReadyFailsWhileTheRootCannotWrap: a KMS that is down fails the
// probe, and the error keeps its cause for the log.
func TestReadyFailsWhileTheRootCannotWrap(t *testing.T) {
	store := memstore.New()
	root := newRoot(t, "root.key")
	k := openKeyring(t, store, root)
	if err := k.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	down := openKeyring(t, store, downRoot{root})
	err := down.Ready(context.Background())
	if haven.ErrorCode(err) != haven.EUNAVAILABLE || !errors.Is(err, errKMSDown) {
		t.Fatalf("a root that cannot wrap: %v", err)
	}
}

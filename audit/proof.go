package audit

import (
	"context"

	"haven"

	"github.com/transparency-dev/merkle/proof"
)

// InclusionProof returns the RFC 6962 audit path proving that entry seq is
// in logID's tree of size treeSize. With the event, a signed checkpoint of
// that size and VerifyInclusion, a patient or auditor can check that an
// event they were shown is in the log everyone else sees.
func (l *Log) InclusionProof(ctx context.Context, logID string, seq, treeSize uint64) ([][]byte, error) {
	if !isLogID(logID) {
		return nil, haven.Errorf(haven.EINVALID, "audit: bad log id")
	}
	if seq >= treeSize {
		return nil, haven.Errorf(haven.EINVALID, "audit: entry %d is not in a tree of size %d", seq, treeSize)
	}
	ls, err := l.atLeast(ctx, logID, treeSize)
	if err != nil {
		return nil, err
	}
	nodes, err := proof.Inclusion(seq, treeSize)
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "audit: bad inclusion proof request")
	}
	return ls.rehash(ctx, l.st, nodes, treeSize)
}

// ConsistencyProof returns the RFC 6962 proof that logID's tree of size
// size2 extends its tree of size size1: nothing in the first size1 entries
// changed. A witness or auditor holding an older checkpoint checks a newer
// one with it (VerifyConsistency).
func (l *Log) ConsistencyProof(ctx context.Context, logID string, size1, size2 uint64) ([][]byte, error) {
	if !isLogID(logID) {
		return nil, haven.Errorf(haven.EINVALID, "audit: bad log id")
	}
	if size1 > size2 {
		return nil, haven.Errorf(haven.EINVALID, "audit: consistency from size %d to smaller size %d", size1, size2)
	}
	ls, err := l.atLeast(ctx, logID, size2)
	if err != nil {
		return nil, err
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "audit: bad consistency proof request")
	}
	return ls.rehash(ctx, l.st, nodes, size2)
}

// atLeast returns logID's state once its tree holds at least size entries.
func (l *Log) atLeast(ctx context.Context, logID string, size uint64) (*logState, error) {
	ls := l.state(logID)
	if err := l.sync(ctx, ls, size); err != nil {
		return nil, err
	}
	ls.treeMu.RLock()
	have := ls.tree.size()
	ls.treeMu.RUnlock()
	if size > have {
		return nil, haven.Errorf(haven.EINVALID, "audit: log %s holds %d entries, not %d", logID, have, size)
	}
	return ls, nil
}

func (ls *logState) rehash(ctx context.Context, st Store, nodes proof.Nodes, treeSize uint64) ([][]byte, error) {
	hs, err := ls.nodeHashes(ctx, st, nodes.IDs, treeSize)
	if err != nil {
		return nil, err
	}
	p, err := nodes.Rehash(hs, hasher.HashChildren)
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "audit: cannot build proof")
	}
	return p, nil
}

// VerifyInclusion checks that leafHash is entry seq of the tree of size
// treeSize with the given root. An error means the proof does not hold.
func VerifyInclusion(leafHash []byte, seq, treeSize uint64, p [][]byte, root []byte) error {
	if err := proof.VerifyInclusion(hasher, seq, treeSize, leafHash, p, root); err != nil {
		return haven.Wrap(haven.EINVALID, err, "audit inclusion proof does not verify")
	}
	return nil
}

// VerifyConsistency checks that the tree of size size2 with root2 extends
// the tree of size size1 with root1. An error means the log was rewritten
// between the two: a rollback or a fork.
func VerifyConsistency(size1, size2 uint64, p [][]byte, root1, root2 []byte) error {
	if err := proof.VerifyConsistency(hasher, size1, size2, p, root1, root2); err != nil {
		return haven.Wrap(haven.EINVALID, err, "audit consistency proof does not verify")
	}
	return nil
}

// consistency returns the consistency proof from size from to size to of
// the tree in memory (to at most its size), without taking the writer's
// lock: witnesses ask for it while a checkpoint is being published.
func (ls *logState) consistency(ctx context.Context, st Store, from, to uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "audit: bad consistency proof request")
	}
	return ls.rehash(ctx, st, nodes, to)
}

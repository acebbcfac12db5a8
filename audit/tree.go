package audit

import (
	"context"
	"slices"

	"haven"

	"github.com/transparency-dev/merkle/compact"
)

// tileLevel is the lowest tree level kept in memory. Below it, node hashes
// are recomputed from at most 2^tileLevel stored leaf hashes; at and above
// it every complete node is cached. With 8, a million-entry log costs about
// 250 KB of memory and a proof reads at most a few kilobytes of leaf hashes.
const tileLevel = 8

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// tree is a log's Merkle tree as the Log keeps it in memory: a compact range
// for the current root and for appending, and the complete nodes at levels
// >= tileLevel for proofs. It never holds events.
type tree struct {
	rng   *compact.Range
	upper [][][]byte // upper[k][i] is the hash of node (tileLevel+k, i)
}

func newTree() *tree { return &tree{rng: rangeFactory.NewEmptyRange(0)} }

func (t *tree) size() uint64 { return t.rng.End() }

func (t *tree) append(leaf []byte) {
	if err := t.rng.Append(leaf, t.visit); err != nil {
		panic("audit: compact range append: " + err.Error()) // only on a corrupted range
	}
}

func (t *tree) visit(id compact.NodeID, hash []byte) {
	if id.Level < tileLevel {
		return
	}
	k := int(id.Level - tileLevel)
	for len(t.upper) <= k {
		t.upper = append(t.upper, nil)
	}
	if uint64(len(t.upper[k])) == id.Index { // nodes arrive once, left to right
		t.upper[k] = append(t.upper[k], hash)
	}
}

// treeMark is a tree's state at one size, to return to if leaves appended
// after it must be given up (see catchUp).
type treeMark struct {
	end    uint64
	hashes [][]byte
	upper  []int
}

func (t *tree) mark() treeMark {
	m := treeMark{end: t.rng.End(), hashes: slices.Clone(t.rng.Hashes())}
	for _, level := range t.upper {
		m.upper = append(m.upper, len(level))
	}
	return m
}

func (t *tree) reset(m treeMark) {
	rng, err := rangeFactory.NewRange(0, m.end, slices.Clone(m.hashes))
	if err != nil {
		panic("audit: compact range reset: " + err.Error())
	}
	t.rng = rng
	t.upper = t.upper[:len(m.upper)]
	for k, n := range m.upper {
		t.upper[k] = t.upper[k][:n]
	}
}

// rootAfter returns the root the tree would have with leaves appended,
// leaving the tree as it is.
func (t *tree) rootAfter(leaves [][]byte) []byte {
	rng, err := rangeFactory.NewRange(0, t.rng.End(), slices.Clone(t.rng.Hashes()))
	if err != nil {
		panic("audit: compact range copy: " + err.Error())
	}
	for _, h := range leaves {
		if err := rng.Append(h, nil); err != nil {
			panic("audit: compact range append: " + err.Error())
		}
	}
	r, _ := rng.GetRootHash(nil)
	if r == nil {
		return hasher.EmptyRoot()
	}
	return r
}

func (t *tree) root() []byte {
	r, err := t.rng.GetRootHash(nil)
	if err != nil {
		panic("audit: compact range root: " + err.Error())
	}
	if r == nil {
		return hasher.EmptyRoot()
	}
	return r
}

// cached returns the hash of node id if it is kept in memory.
func (t *tree) cached(id compact.NodeID) ([]byte, bool) {
	if id.Level < tileLevel {
		return nil, false
	}
	k := int(id.Level - tileLevel)
	if k >= len(t.upper) || id.Index >= uint64(len(t.upper[k])) {
		return nil, false
	}
	return t.upper[k][id.Index], true
}

// perfectRoot returns the root of the perfect subtree over leaves, whose
// length is a power of two.
func perfectRoot(leaves [][]byte) []byte {
	level := make([][]byte, len(leaves))
	copy(level, leaves)
	for len(level) > 1 {
		for i := 0; i < len(level)/2; i++ {
			level[i] = hasher.HashChildren(level[2*i], level[2*i+1])
		}
		level = level[:len(level)/2]
	}
	return level[0]
}

// nodeHashes returns the hashes of complete nodes ids of a tree of size
// treeSize, taking the upper ones from memory and recomputing the lower ones
// from the stored leaf hashes, reading each 2^tileLevel block at most once.
// The caller holds ls.treeMu for reading only around the cached lookups.
func (ls *logState) nodeHashes(ctx context.Context, st Store, ids []compact.NodeID, treeSize uint64) ([][]byte, error) {
	out := make([][]byte, len(ids))
	ls.treeMu.RLock()
	for i, id := range ids {
		if h, ok := ls.tree.cached(id); ok {
			out[i] = h
		}
	}
	ls.treeMu.RUnlock()

	blocks := map[uint64][][]byte{}
	for i, id := range ids {
		if out[i] != nil {
			continue
		}
		begin, end := id.Coverage()
		if end > treeSize {
			return nil, haven.Errorf(haven.EINTERNAL, "audit log %s: proof node beyond tree size %d", ls.id, treeSize)
		}
		b := begin >> tileLevel
		leaves, ok := blocks[b]
		if !ok {
			from := b << tileLevel
			to := min(from+1<<tileLevel, treeSize)
			var err error
			leaves, err = st.LeafHashes(ctx, ls.id, from, to)
			if err != nil {
				return nil, haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
			}
			if uint64(len(leaves)) != to-from {
				return nil, haven.Errorf(haven.EINTERNAL, "audit log %s: %d leaf hashes stored in [%d, %d)", ls.id, len(leaves), from, to)
			}
			blocks[b] = leaves
		}
		off := begin - b<<tileLevel
		h := perfectRoot(leaves[off : off+(end-begin)])
		if len(h) != HashSize {
			return nil, haven.Errorf(haven.EINTERNAL, "audit log %s: stored leaf hash of wrong size", ls.id)
		}
		out[i] = h
	}
	return out, nil
}

// rootAt returns the root of the log's tree at size, which is at most the
// tree's size, from the nodes in memory and the stored leaf hashes.
func (ls *logState) rootAt(ctx context.Context, st Store, size uint64) ([]byte, error) {
	if size == 0 {
		return hasher.EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	hs, err := ls.nodeHashes(ctx, st, ids, size)
	if err != nil {
		return nil, err
	}
	r := hs[len(hs)-1]
	for i := len(hs) - 2; i >= 0; i-- {
		r = hasher.HashChildren(hs[i], r)
	}
	return r, nil
}

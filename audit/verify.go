package audit

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"

	"haven"

	"golang.org/x/mod/sumdb/note"
)

// ProblemKind says what the verifier found wrong.
type ProblemKind string

const (
	// Edited: a row's fields no longer hash to its stored leaf hash, or the
	// row names another log.
	Edited ProblemKind = "edited"
	// Deleted: sequence numbers are missing, or rows after a removed one
	// were renumbered to close the gap.
	Deleted ProblemKind = "deleted"
	// Inserted: a row the log never wrote sits between genuine ones.
	Inserted ProblemKind = "inserted"
	// Reordered: genuine rows were moved to other positions.
	Reordered ProblemKind = "reordered"
	// RolledBack: the log is shorter than, or differs from, what a valid
	// signed checkpoint (stored or published to a witness) says it was:
	// truncated, rewritten with recomputed hashes, or restored from an old
	// backup and appended to again.
	RolledBack ProblemKind = "rolled_back"
	// BadSignature: a checkpoint that does not verify with the log's keys,
	// is for another log, or whose stored row disagrees with its note.
	BadSignature ProblemKind = "bad_signature"
)

// Problem is one finding. Seq is the first bad entry. When the evidence is
// a row, it names that entry exactly and End is Seq+1. When the evidence is
// a signed root, it can only say that some entry in [Seq, End) differs from
// what was signed: Seq is then the first entry no good checkpoint vouches
// for, and more frequent checkpoints narrow the range.
type Problem struct {
	Kind   ProblemKind
	Seq    uint64
	End    uint64
	Detail string // numbers and sizes only, never event contents
}

// Exact reports whether the problem names its entry exactly.
func (p Problem) Exact() bool { return p.End == p.Seq+1 }

func (p Problem) String() string {
	if p.Exact() {
		return fmt.Sprintf("%s at entry %d: %s", p.Kind, p.Seq, p.Detail)
	}
	return fmt.Sprintf("%s in entries [%d, %d): %s", p.Kind, p.Seq, p.End, p.Detail)
}

// Report is the verifier's result for one log.
type Report struct {
	LogID       string
	Size        uint64 // entries read
	Root        []byte // RFC 6962 root recomputed over them
	Checkpoints int    // signed checkpoints examined, stored and witnessed
	Vouched     uint64 // largest size whose root a valid checkpoint signed
	Problems    []Problem
}

// OK reports whether the log verified with no problem.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// First returns the problem that names the first bad entry. A checkpoint
// mismatch whose range contains an exactly named entry is taken to be that
// entry's consequence, so it does not hide the exact answer.
func (r *Report) First() (Problem, bool) {
	var best *Problem
	better := func(p *Problem) bool {
		return best == nil || p.Seq < best.Seq || p.Seq == best.Seq && p.Exact() && !best.Exact()
	}
	for i := range r.Problems {
		p := &r.Problems[i]
		if p.End <= p.Seq {
			continue
		}
		if !p.Exact() && slices.ContainsFunc(r.Problems, func(q Problem) bool {
			return q.Exact() && q.Seq >= p.Seq && q.Seq < p.End
		}) {
			continue
		}
		if better(p) {
			best = p
		}
	}
	if best == nil && len(r.Problems) > 0 {
		best = &r.Problems[0]
	}
	if best == nil {
		return Problem{}, false
	}
	return *best, true
}

// verifyPage is how many rows the verifier reads at a time: it streams, so a
// log of any size is verified in constant memory (plus the checkpoints).
const verifyPage = 2048

// Verify checks logID in st from scratch, trusting nothing but the verifier
// keys (one or more, one per line, so checkpoints from before a key
// rotation still verify) and the checkpoints published to witnesses:
//
//   - every row's leaf is recomputed from its fields and must equal the
//     stored leaf hash, and sequence numbers must run 0..n-1 without a gap;
//   - the RFC 6962 tree is rebuilt from the recomputed leaves, and every
//     stored and witnessed checkpoint must carry a valid signature and the
//     root recomputed at its size. Every matching checkpoint is then a
//     prefix of one tree, so the checkpoints are consistent with each other;
//     one that does not match (or that is larger than the log) shows a
//     rollback or a rewrite after it was signed, and two valid checkpoints
//     of one size with different roots show a fork.
//
// Tampering is reported in the Report; the error is for a verification that
// could not run (store unreachable, no usable key).
func Verify(ctx context.Context, st Store, logID, verifierKeys string, witnessed [][]byte) (*Report, error) {
	if !isLogID(logID) {
		return nil, haven.Errorf(haven.EINVALID, "audit: bad log id")
	}
	vs, err := parseVerifierKeys(verifierKeys)
	if err != nil {
		return nil, err
	}
	v := &verifier{logID: logID, report: &Report{LogID: logID}, lh: newLeafHasher()}

	stored, err := st.Checkpoints(ctx, logID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
	}
	for _, cp := range stored {
		v.addCheckpoint(vs, cp.Note, "stored", cp.Size, true)
	}
	for _, b := range witnessed {
		v.addCheckpoint(vs, b, "witnessed", 0, false)
	}
	if err := v.scan(ctx, st); err != nil {
		return nil, err
	}
	v.classify()
	v.checkCheckpoints()
	sort.SliceStable(v.report.Problems, func(i, j int) bool { return v.report.Problems[i].Seq < v.report.Problems[j].Seq })
	return v.report, nil
}

type verifier struct {
	logID  string
	report *Report

	good []signedHead // checkpoints whose signature and origin verify
	bad  []badHead    // checkpoints that do not

	roots map[uint64][]byte // recomputed root at each good checkpoint's size

	runs     []run
	runsFull bool
	curShift int64 // shift of the latest shifted run, tried first on the next row
	searches int
	lh       *leafHasher
}

type signedHead struct {
	TreeHead
	source string
}

type badHead struct {
	size   uint64
	source string
	why    string
}

func (v *verifier) addCheckpoint(vs []note.Verifier, b []byte, source string, rowSize uint64, hasRow bool) {
	h, err := openCheckpoint(b, v.logID, vs)
	if err != nil {
		size := rowSize
		if s, err2 := noteSize(b); err2 == nil {
			size = s
		}
		v.bad = append(v.bad, badHead{size: size, source: source, why: haven.ErrorMessage(err)})
		return
	}
	if hasRow && rowSize != h.Size {
		v.bad = append(v.bad, badHead{size: h.Size, source: source, why: fmt.Sprintf("stored row says size %d but the signed note says %d", rowSize, h.Size)})
		return
	}
	v.good = append(v.good, signedHead{h, source})
}

// Anomaly runs: consecutive positions with the same finding.
type runKind int

const (
	runGap         runKind = iota // sequence numbers missing
	runUnexplained                // leaf does not match, origin unknown
	runShift                      // content intact but from position seq+shift
)

type run struct {
	kind       runKind
	start, end uint64
	shift      int64
	why        string
	used       bool
}

const (
	maxRuns     = 10000
	maxSearches = 10000 // rows for which a moved origin is searched
	searchWin   = 256   // how far a moved row is looked for
	maxEmpty    = 16    // empty pages in a row before the rest is called missing
)

func (v *verifier) addRun(kind runKind, start, end uint64, shift int64, why string) {
	if n := len(v.runs); n > 0 {
		last := &v.runs[n-1]
		if last.kind == kind && last.shift == shift && last.end == start && last.why == why {
			last.end = end
			return
		}
	}
	if len(v.runs) >= maxRuns {
		v.runsFull = true
		return
	}
	v.runs = append(v.runs, run{kind: kind, start: start, end: end, shift: shift, why: why})
}

// scan streams the rows, checks each and rebuilds the tree.
func (v *verifier) scan(ctx context.Context, st Store) error {
	size, err := st.Size(ctx, v.logID)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
	}
	want := make([]uint64, 0, len(v.good))
	for _, h := range v.good {
		want = append(want, h.Size)
	}
	slices.Sort(want)
	want = slices.Compact(want)
	v.roots = map[uint64][]byte{0: hasher.EmptyRoot()}
	for len(want) > 0 && want[0] == 0 {
		want = want[1:]
	}

	rng := rangeFactory.NewEmptyRange(0)
	var exp uint64 // next expected sequence number
	empty := 0
	for from := uint64(0); ; from += verifyPage {
		es, err := st.Entries(ctx, v.logID, from, from+verifyPage)
		if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
		}
		if len(es) == 0 {
			if from >= size {
				break
			}
			if empty++; empty >= maxEmpty {
				v.addRun(runGap, exp, size, 0, "")
				exp = size
				break
			}
			continue
		}
		empty = 0
		for i := range es {
			e := &es[i]
			if e.Seq < exp || e.Seq < from || e.Seq >= from+verifyPage {
				v.report.Problems = append(v.report.Problems, Problem{Kind: Inserted, Seq: e.Seq, End: e.Seq + 1,
					Detail: "the store returned this sequence number twice or out of order"})
				continue
			}
			if e.Seq > exp {
				v.addRun(runGap, exp, e.Seq, 0, "")
			}
			exp = e.Seq + 1
			leaf := bytes.Clone(v.lh.leaf(&e.Event)) // kept by the range; findOrigin reuses the buffer
			switch {
			case e.LogID != v.logID:
				v.addRun(runUnexplained, e.Seq, e.Seq+1, 0, "row belongs to another log")
			case !bytes.Equal(leaf, e.LeafHash):
				if d, ok := v.findOrigin(e); ok {
					v.curShift = d
					v.addRun(runShift, e.Seq, e.Seq+1, d, "")
				} else {
					v.addRun(runUnexplained, e.Seq, e.Seq+1, 0, "")
				}
			}
			if err := rng.Append(leaf, nil); err != nil {
				return haven.Wrap(haven.EINTERNAL, err, "audit: compact range")
			}
			if len(want) > 0 && rng.End() == want[0] {
				r, _ := rng.GetRootHash(nil)
				v.roots[want[0]] = r
				want = want[1:]
			}
		}
	}
	if exp < size {
		v.addRun(runGap, exp, size, 0, "")
	}
	v.report.Size = rng.End()
	if r, _ := rng.GetRootHash(nil); r != nil {
		v.report.Root = r
	} else {
		v.report.Root = hasher.EmptyRoot()
	}
	return nil
}

// findOrigin looks for the position a row was written at, for a row whose
// fields hash correctly only with another sequence number: the row itself
// is genuine and was moved. The shift of the previous moved row is tried
// first, so a whole renumbered tail costs one hash per row.
func (v *verifier) findOrigin(e *Entry) (int64, bool) {
	if len(e.LeafHash) != HashSize {
		return 0, false
	}
	ev := e.Event
	try := func(d int64) bool {
		if d == 0 || d < 0 && uint64(-d) > e.Seq {
			return false
		}
		ev.Seq = uint64(int64(e.Seq) + d)
		return bytes.Equal(v.lh.leaf(&ev), e.LeafHash)
	}
	if try(v.curShift) {
		return v.curShift, true
	}
	if v.searches >= maxSearches {
		return 0, false
	}
	v.searches++
	for d := int64(1); d <= searchWin; d++ {
		if try(d) {
			return d, true
		}
		if try(-d) {
			return -d, true
		}
	}
	return 0, false
}

// classify turns anomaly runs into problems. The shift is cumulative: rows
// after two renumbered deletions are shifted by two, so each run is read
// against the shift before it.
func (v *verifier) classify() {
	add := func(k ProblemKind, seq uint64, detail string, args ...any) {
		v.report.Problems = append(v.report.Problems, Problem{Kind: k, Seq: seq, End: seq + 1, Detail: fmt.Sprintf(detail, args...)})
	}
	var prev int64 // cumulative shift before the current run
	for i := range v.runs {
		r := &v.runs[i]
		if r.used {
			continue
		}
		n := r.end - r.start
		switch r.kind {
		case runGap:
			add(Deleted, r.start, "%d entries missing: sequence numbers %d to %d", n, r.start, r.end-1)
		case runUnexplained:
			if i+1 < len(v.runs) {
				next := &v.runs[i+1]
				if next.kind == runShift && next.start == r.end && next.shift-prev == -int64(n) {
					next.used = true
					prev = next.shift
					add(Inserted, r.start, "%d entries inserted; the entries after them were renumbered", n)
					continue
				}
			}
			why := r.why
			if why == "" {
				why = "fields do not match the stored leaf hash"
			}
			add(Edited, r.start, "%d entries: %s", n, why)
		case runShift:
			delta := r.shift - prev
			switch {
			case delta == 0: // the tail of an earlier renumbering, interrupted by an edit
			case delta > 0:
				// Entries originally at [r.start+prev, r.start+r.shift) left
				// this place: deleted, or moved later (reordered).
				lo, hi := int64(r.start)+prev, int64(r.start)+r.shift
				j := slices.IndexFunc(v.runs[i+1:], func(o run) bool {
					orig := int64(o.start) + o.shift
					return o.kind == runShift && !o.used && o.shift < prev && orig >= lo && orig < hi
				})
				if j >= 0 {
					o := &v.runs[i+1+j]
					o.used = true
					add(Reordered, r.start, "entry %d was moved to position %d", int64(o.start)+o.shift, o.start)
					continue // the cumulative shift is unchanged by a move
				}
				add(Deleted, r.start, "%d entries removed and the entries after them renumbered", delta)
				prev = r.shift
			default:
				add(Inserted, uint64(int64(r.start)+delta), "%d entries inserted; the entries after them were renumbered", -delta)
				prev = r.shift
			}
		}
	}
	if v.runsFull {
		v.report.Problems = append(v.report.Problems, Problem{Kind: Edited, Seq: v.runs[len(v.runs)-1].end, Detail: "too many problems; later ones not classified"})
	}
}

// checkCheckpoints compares every signed root with the recomputed tree.
func (v *verifier) checkCheckpoints() {
	n := v.report.Size
	v.report.Checkpoints = len(v.good) + len(v.bad)
	var matching []uint64
	for _, h := range v.good {
		if h.Size <= n && bytes.Equal(v.roots[h.Size], h.Root) {
			matching = append(matching, h.Size)
		}
	}
	slices.Sort(matching)
	if len(matching) > 0 {
		v.report.Vouched = matching[len(matching)-1]
	}
	// vouchedBelow is the largest matching size below s: the entries before
	// it are vouched for by a good signature.
	vouchedBelow := func(s uint64) uint64 {
		i, _ := slices.BinarySearch(matching, s)
		if i == 0 {
			return 0
		}
		return matching[i-1]
	}
	for _, h := range v.good {
		switch {
		case h.Size > n:
			v.report.Problems = append(v.report.Problems, Problem{Kind: RolledBack, Seq: n, End: n + 1,
				Detail: fmt.Sprintf("the log holds %d entries but a %s checkpoint was signed at size %d", n, h.source, h.Size)})
		case !bytes.Equal(v.roots[h.Size], h.Root):
			lo := vouchedBelow(h.Size)
			v.report.Problems = append(v.report.Problems, Problem{Kind: RolledBack, Seq: lo, End: h.Size,
				Detail: fmt.Sprintf("the first %d entries differ from a %s checkpoint signed at that size", h.Size, h.source)})
		}
	}
	for _, b := range v.bad {
		lo := vouchedBelow(b.size)
		end := b.size
		if end <= lo || v.report.Vouched >= b.size {
			lo, end = b.size, b.size // the entries it claims to cover are vouched for by good checkpoints
		}
		v.report.Problems = append(v.report.Problems, Problem{Kind: BadSignature, Seq: lo, End: end,
			Detail: fmt.Sprintf("a %s checkpoint claiming size %d does not verify: %s", b.source, b.size, b.why)})
	}
}

package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"haven"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
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
	// is for another log, or whose stored row disagrees with its note; or
	// a seal on an entry that does not verify although later signatures
	// vouch for the entries it covers.
	BadSignature ProblemKind = "bad_signature"
	// Unauthenticated: entries no trusted signature vouches for: rows
	// appended by someone without the audit key (a forged event with a
	// correct leaf hash), or rewritten with recomputed hashes so that the
	// seal signed when they were appended no longer matches.
	Unauthenticated ProblemKind = "unauthenticated"
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
	LogID         string
	Size          uint64 // entries read
	Root          []byte // RFC 6962 root recomputed over them
	Checkpoints   int    // signed checkpoints examined, stored and witnessed
	Vouched       uint64 // largest size whose root a valid checkpoint signed
	Seals         int    // batch seals examined
	Authenticated uint64 // largest size whose root a valid seal or checkpoint signed
	Problems      []Problem
	Witnesses     []WitnessCheck
}

// WitnessCheck is what the verifier learned from one witness.
type WitnessCheck struct {
	Name string
	// Held is the size the witness holds for the log (when it said).
	Held uint64
	// Acknowledged is the largest size the database records the witness
	// acknowledging.
	Acknowledged uint64
	// Err says why the witness could not vouch for the log (unreachable,
	// went missing or backwards); its evidence against the log itself is
	// in Problems. Nil when it agrees.
	Err error
	// Warning is something the operator must hear that is not a failure
	// (a witness that does not know the log and never did).
	Warning string
}

// OK reports whether the log verified with no problem and every witness
// could vouch for it.
func (r *Report) OK() bool {
	if len(r.Problems) > 0 {
		return false
	}
	for _, w := range r.Witnesses {
		if w.Err != nil {
			return false
		}
	}
	return true
}

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
// keys (one or more, one per line) and the checkpoints published to
// witnesses; see VerifyWith.
func Verify(ctx context.Context, st Store, logID, verifierKeys string, witnessed [][]byte) (*Report, error) {
	t, err := NewTrust(verifierKeys)
	if err != nil {
		return nil, err
	}
	return VerifyWith(ctx, st, logID, VerifyOptions{Trust: t, Witnessed: witnessed})
}

// VerifyOptions are what the verifier trusts and asks.
type VerifyOptions struct {
	// Trust holds the audit keys an auditor trusts, extended along the
	// stored key hand-overs (VerifyWith adds them). Public keys only.
	Trust *Trust
	// Witnessed are checkpoints held outside the database, checked like
	// stored ones.
	Witnessed [][]byte
	// Witnesses are asked what they hold. A DirWitness is read; any other
	// is shown the newest checkpoint a trusted signature vouches for (a
	// stored one or a batch seal), with a consistency proof computed from
	// the rows, and refuses it if the log is shorter than or inconsistent
	// with what it saw. Either must hold at least what the database
	// records it acknowledging.
	Witnesses []Witness
}

// VerifyWith checks logID in st from scratch:
//
//   - every row's leaf is recomputed from its fields and must equal the
//     stored leaf hash, and sequence numbers must run 0..n-1 without a gap;
//   - the RFC 6962 tree is rebuilt from the recomputed leaves, and every
//     batch seal, every stored, acknowledged and witnessed checkpoint must
//     carry a valid signature and the root recomputed at its size. Every
//     matching signature vouches for the entries before it; entries no
//     signature vouches for are unauthenticated (appended or rewritten
//     without the key). One checkpoint that does not match (or that is
//     larger than the log) shows a rollback or a rewrite after it was
//     signed, and two valid checkpoints of one size with different roots
//     show a fork;
//   - each witness must hold no more than the log, a tree the log extends,
//     and no less than it acknowledged before.
//
// Tampering is reported in the Report; the error is for a verification that
// could not run (store unreachable, no usable key).
func VerifyWith(ctx context.Context, st Store, logID string, opts VerifyOptions) (*Report, error) {
	if !isLogID(logID) {
		return nil, haven.Errorf(haven.EINVALID, "audit: bad log id")
	}
	if opts.Trust == nil {
		return nil, haven.Errorf(haven.EINVALID, "no audit verifier key given")
	}
	handovers, err := st.Handovers(ctx)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
	}
	if err := opts.Trust.AddHandovers(handovers); err != nil {
		return nil, err
	}
	v := &verifier{logID: logID, trust: opts.Trust, report: &Report{LogID: logID}, lh: newLeafHasher()}

	stored, err := st.Checkpoints(ctx, logID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
	}
	for _, cp := range stored {
		v.addCheckpoint(cp.Note, "stored", cp.Size, true)
	}
	acks, err := st.Witnessed(ctx, logID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
	}
	for _, a := range acks {
		v.addCheckpoint(a.Note, "acknowledged by "+a.Witness, a.Size, true)
	}
	for _, b := range opts.Witnessed {
		v.addCheckpoint(b, "witnessed", 0, false)
	}
	var probes []Witness
	for _, w := range opts.Witnesses {
		if dw, ok := w.(DirWitness); ok {
			notes, err := dw.Checkpoints(logID)
			wc := WitnessCheck{Name: dw.Name(), Acknowledged: acked(acks, dw.Name())}
			if err != nil {
				wc.Err = &WitnessError{Witness: dw.Name(), LogID: logID, Reason: WitnessUnavailable, Err: err}
			}
			for _, b := range notes {
				v.addCheckpoint(b, "witnessed", 0, false)
				if n, err := noteSize(b); err == nil {
					wc.Held = max(wc.Held, n)
				}
			}
			if wc.Err == nil && wc.Held < wc.Acknowledged {
				wc.Err = &WitnessError{Witness: dw.Name(), LogID: logID, Reason: WitnessBackwards, Size: wc.Held, Have: wc.Acknowledged}
			}
			v.report.Witnesses = append(v.report.Witnesses, wc)
			continue
		}
		probes = append(probes, w)
	}
	if err := v.scan(ctx, st); err != nil {
		return nil, err
	}
	v.classify()
	v.checkCheckpoints()
	v.checkSeals()
	for _, w := range probes {
		v.probe(ctx, st, w, acked(acks, w.Name()))
	}
	sort.SliceStable(v.report.Problems, func(i, j int) bool { return v.report.Problems[i].Seq < v.report.Problems[j].Seq })
	return v.report, nil
}

func acked(acks []Witnessed, name string) uint64 {
	for _, a := range acks {
		if a.Witness == name {
			return a.Size
		}
	}
	return 0
}

type verifier struct {
	logID  string
	trust  *Trust
	report *Report

	good []signedHead // checkpoints whose signature and origin verify
	bad  []badHead    // checkpoints that do not

	roots map[uint64][]byte // recomputed root at each good checkpoint's size

	pending   []pendingSeal
	sealed    []uint64 // sizes whose recomputed root a seal signed, ascending
	lastSeal  []byte   // the newest good seal's checkpoint note
	badSeals  []uint64 // rows whose seal does not verify over the root there
	matching  []uint64 // sizes of good checkpoints matching the recomputed root
	rowIssues []Problem

	runs     []run
	runsFull bool
	curShift int64 // shift of the latest shifted run, tried first on the next row
	searches int
	lh       *leafHasher
}

type signedHead struct {
	TreeHead
	source string
	note   []byte
}

type badHead struct {
	size   uint64
	source string
	why    string
}

func (v *verifier) addCheckpoint(b []byte, source string, rowSize uint64, hasRow bool) {
	h, err := v.trust.open(b, v.logID)
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
	v.good = append(v.good, signedHead{h, source, b})
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
			if len(e.Seal) > 0 {
				v.noteSeal(rng, e)
			}
			if len(want) > 0 && rng.End() == want[0] {
				r, _ := rng.GetRootHash(nil)
				v.roots[want[0]] = r
				want = want[1:]
			}
		}
		v.flushSeals()
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

// noteSeal records the seal on row e, with the root recomputed over the
// rows up to and including it (nil when rows are missing before it: its
// tree cannot be rebuilt), to be checked when the page ends.
func (v *verifier) noteSeal(rng *compact.Range, e *Entry) {
	v.report.Seals++
	ps := pendingSeal{seq: e.Seq, seal: e.Seal}
	if rng.End() == e.Seq+1 {
		ps.root, _ = rng.GetRootHash(nil)
	}
	v.pending = append(v.pending, ps)
}

type pendingSeal struct {
	seq  uint64
	root []byte
	seal []byte
}

// flushSeals checks the seals of a page. A good seal vouches for every
// entry before it, so only the page's last one is checked when it is good
// (one signature per page, not per batch, on an idle log where every
// event is its own batch); otherwise they are checked from the end back to
// the last good one, and each failing one after it is recorded. A damaged
// seal followed by a good one is not looked at: the entries it covers are
// vouched for anyway.
func (v *verifier) flushSeals() {
	p := v.pending
	v.pending = v.pending[:0]
	i := len(p) - 1
	for ; i >= 0; i-- {
		if signed, ok := v.sealOK(p[i]); ok {
			v.sealed = append(v.sealed, p[i].seq+1)
			v.lastSeal = signed
			break
		}
	}
	for _, ps := range p[i+1:] {
		if len(v.badSeals) < maxRuns {
			v.badSeals = append(v.badSeals, ps.seq)
		}
	}
}

func (v *verifier) sealOK(ps pendingSeal) ([]byte, bool) {
	if ps.root == nil {
		return nil, false
	}
	for _, name := range v.trust.names() {
		signed := sealedNote(TreeHead{Origin: origin(name, v.logID), Size: ps.seq + 1, Root: ps.root}, ps.seal)
		if _, err := v.trust.open(signed, v.logID); err == nil {
			return signed, true
		}
	}
	return nil, false
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
	v.classifyCopies(add)
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
				if next.kind == runShift && !next.used && next.start == r.end && next.shift-prev == -int64(n) {
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

// classifyCopies names rows that hold a copy of another entry which is
// still intact at its own place: a duplicate, not a move. Each copy is
// blamed where it sits (the first entry that differs), never at the
// original it was copied from, and does not shift the reading of the runs
// around it.
func (v *verifier) classifyCopies(add func(ProblemKind, uint64, string, ...any)) {
	intact := func(seq int64) bool {
		if seq < 0 || uint64(seq) >= v.report.Size {
			return false
		}
		for _, r := range v.runs {
			if uint64(seq) >= r.start && uint64(seq) < r.end {
				return false
			}
		}
		return true
	}
	for i := range v.runs {
		r := &v.runs[i]
		if r.kind != runShift {
			continue
		}
		all := true
		for p := r.start; p < r.end && all; p++ {
			all = intact(int64(p) + r.shift)
		}
		if !all {
			continue
		}
		r.used = true
		for p := r.start; p < r.end; p++ {
			src := int64(p) + r.shift
			if r.end == v.report.Size && i == len(v.runs)-1 {
				add(Inserted, p, "a copy of entry %d was appended here", src)
			} else {
				add(Edited, p, "overwritten with a copy of entry %d", src)
			}
		}
	}
}

// checkCheckpoints compares every signed root with the recomputed tree.
func (v *verifier) checkCheckpoints() {
	n := v.report.Size
	v.report.Checkpoints = len(v.good) + len(v.bad)
	for _, h := range v.good {
		if h.Size <= n && bytes.Equal(v.roots[h.Size], h.Root) {
			v.matching = append(v.matching, h.Size)
		}
	}
	slices.Sort(v.matching)
	if len(v.matching) > 0 {
		v.report.Vouched = v.matching[len(v.matching)-1]
	}
	v.report.Authenticated = v.report.Vouched
	if len(v.sealed) > 0 {
		v.report.Authenticated = max(v.report.Authenticated, v.sealed[len(v.sealed)-1])
	}
	v.rowIssues = slices.Clone(v.report.Problems)
	for _, h := range v.good {
		switch {
		case h.Size > n:
			v.report.Problems = append(v.report.Problems, Problem{Kind: RolledBack, Seq: n, End: n + 1,
				Detail: fmt.Sprintf("the log holds %d entries but a %s checkpoint was signed at size %d", n, h.source, h.Size)})
		case !bytes.Equal(v.roots[h.Size], h.Root):
			lo := v.vouchedBelow(h.Size)
			v.report.Problems = append(v.report.Problems, Problem{Kind: RolledBack, Seq: lo, End: h.Size,
				Detail: fmt.Sprintf("the first %d entries differ from a %s checkpoint signed at that size", h.Size, h.source)})
		}
	}
	for _, b := range v.bad {
		lo := v.vouchedBelow(b.size)
		end := b.size
		if end <= lo || v.report.Authenticated >= b.size {
			lo, end = b.size, b.size // the entries it claims to cover are vouched for by good signatures
		}
		v.report.Problems = append(v.report.Problems, Problem{Kind: BadSignature, Seq: lo, End: end,
			Detail: fmt.Sprintf("a %s checkpoint claiming size %d does not verify: %s", b.source, b.size, b.why)})
	}
}

// vouchedBelow is the largest size below s whose recomputed root a good
// checkpoint signed: the entries before it are vouched for, so a mismatch
// with a checkpoint or witness at s lies in [vouchedBelow(s), s). Seals do
// not narrow it: a server restarted on a rolled-back log would have sealed
// the entries it appended to it, so only what was published counts here.
func (v *verifier) vouchedBelow(s uint64) uint64 {
	if i, _ := slices.BinarySearch(v.matching, s); i > 0 {
		return v.matching[i-1]
	}
	return 0
}

// checkSeals reports the entries no signature vouches for. Every seal and
// checkpoint that matches vouches for the entries before it, so the entries
// from the largest such size on are unauthenticated: the first of them is
// named, up to the first seal that fails (the batch it sealed), or to the
// end when they carry no seal at all (appended without the key). When a
// change to the rows themselves already explains why the seals stop
// matching, that change is the finding and this is not repeated.
func (v *verifier) checkSeals() {
	a, n := v.report.Authenticated, v.report.Size
	for _, f := range v.badSeals {
		if f+1 <= a {
			v.report.Problems = append(v.report.Problems, Problem{Kind: BadSignature, Seq: f, End: f + 1,
				Detail: "the seal stored with this entry does not verify, though later signatures vouch for it"})
		}
	}
	if a >= n {
		return
	}
	end, detail := n, fmt.Sprintf("%d entries at the end of the log carry no signature by a trusted audit key: appended without the key", n-a)
	if i := slices.IndexFunc(v.badSeals, func(f uint64) bool { return f >= a }); i >= 0 {
		f := v.badSeals[i]
		end = f + 1
		detail = fmt.Sprintf("entries %d to %d do not match the seal signed when entry %d was appended: rewritten or forged", a, f, f)
		if end == a+1 {
			detail = "the entry does not match the seal signed when it was appended: rewritten with a recomputed hash, or forged"
		}
	}
	for _, p := range v.rowIssues {
		if p.Seq >= a && p.Seq < end || p.Seq == end && end < n {
			return
		}
	}
	v.report.Problems = append(v.report.Problems, Problem{Kind: Unauthenticated, Seq: a, End: end, Detail: detail})
}

// probe shows w the newest checkpoint a trusted signature vouches for and
// reads its answer: the size it holds, and whether the log extends it.
func (v *verifier) probe(ctx context.Context, st Store, w Witness, acknowledged uint64) {
	wc := WitnessCheck{Name: w.Name(), Acknowledged: acknowledged}
	defer func() { v.report.Witnesses = append(v.report.Witnesses, wc) }()
	a, n := v.report.Authenticated, v.report.Size
	var signed []byte
	if len(v.sealed) > 0 && v.sealed[len(v.sealed)-1] == a {
		signed = v.lastSeal
	}
	for _, h := range v.good {
		if h.Size == a && bytes.Equal(v.roots[a], h.Root) {
			signed = h.note
		}
	}
	if signed == nil && n == 0 && acknowledged == 0 {
		return // nothing to witness yet
	}
	if signed == nil {
		wc.Err = &WitnessError{Witness: wc.Name, LogID: v.logID, Reason: WitnessUnavailable, Err: fmt.Errorf("no signed checkpoint of the log to show it")}
		return
	}
	prove := func(ctx context.Context, from uint64) ([][]byte, error) { return v.consistencyProof(ctx, st, from, a) }
	ack, err := w.Publish(ctx, v.logID, signed, acknowledged, prove)
	var we *WitnessError
	switch {
	case err == nil:
		wc.Held = ack.Held
		if ack.Held < acknowledged {
			wc.Err = &WitnessError{Witness: wc.Name, LogID: v.logID, Reason: WitnessBackwards, Size: ack.Held, Have: acknowledged}
		}
	case errors.As(err, &we) && we.Reason == WitnessAhead:
		wc.Held = we.Size
		if we.Size > n {
			v.report.Problems = append(v.report.Problems, Problem{Kind: RolledBack, Seq: n, End: n + 1,
				Detail: fmt.Sprintf("the log holds %d entries but witness %s holds size %d", n, wc.Name, we.Size)})
		} else {
			v.report.Problems = append(v.report.Problems, Problem{Kind: RolledBack, Seq: a, End: we.Size,
				Detail: fmt.Sprintf("witness %s holds size %d but no trusted signature vouches for the entries from %d", wc.Name, we.Size, a)})
		}
	case errors.As(err, &we) && we.Reason == WitnessFork:
		wc.Held = we.Size
		lo := v.vouchedBelow(we.Size)
		if we.Size == 0 {
			lo = 0
		}
		v.report.Problems = append(v.report.Problems, Problem{Kind: RolledBack, Seq: lo, End: max(we.Size, lo+1),
			Detail: fmt.Sprintf("the first %d entries differ from the tree witness %s holds at that size", we.Size, wc.Name)})
	case errors.As(err, &we) && we.Reason == WitnessUnknownLog && acknowledged == 0:
		wc.Warning = we.Error() + ": it witnesses nothing for this log"
	case errors.As(err, &we) && we.Reason == WitnessUnknownLog:
		c := *we
		c.Acknowledged = acknowledged
		wc.Err = &c
	case errors.As(err, &we) && we.Reason == WitnessBackwards:
		wc.Held, wc.Err = we.Size, err
	default:
		wc.Err = err
	}
}

// consistencyProof computes the consistency proof from size from to size to
// of the tree recomputed from the rows, reading them again.
func (v *verifier) consistencyProof(ctx context.Context, st Store, from, to uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "audit: bad consistency proof request")
	}
	want := make(map[compact.NodeID]int, len(nodes.IDs))
	for i, id := range nodes.IDs {
		want[id] = i
	}
	hs := make([][]byte, len(nodes.IDs))
	visit := func(id compact.NodeID, h []byte) {
		if i, ok := want[id]; ok {
			hs[i] = bytes.Clone(h)
		}
	}
	rng := rangeFactory.NewEmptyRange(0)
	lh := newLeafHasher()
	for page := uint64(0); rng.End() < to; page += verifyPage {
		es, err := st.Entries(ctx, v.logID, page, page+verifyPage)
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
		}
		if len(es) == 0 && page >= v.report.Size {
			break
		}
		for i := range es {
			if rng.End() == to {
				break
			}
			leaf := bytes.Clone(lh.leaf(&es[i].Event))
			visit(compact.NewNodeID(0, rng.End()), leaf)
			if err := rng.Append(leaf, visit); err != nil {
				return nil, haven.Wrap(haven.EINTERNAL, err, "audit: compact range")
			}
		}
	}
	for _, h := range hs {
		if h == nil {
			return nil, haven.Errorf(haven.EINTERNAL, "audit log %s: cannot rebuild the tree of size %d", v.logID, to)
		}
	}
	return nodes.Rehash(hs, hasher.HashChildren)
}

// Verify verifies logID from scratch as VerifyWith does, with the keys
// this Log trusts and the witnesses it publishes to: the evidence a
// report made while the server runs gives of the log's integrity. It
// changes nothing and signs nothing. Without a trusted key (a Log built
// with neither Signer nor Trust) there is nothing to verify against, and
// it says so.
func (l *Log) Verify(ctx context.Context, logID string) (*Report, error) {
	if l.opts.Trust == nil {
		return nil, haven.Errorf(haven.EINVALID, "no audit verifier key configured")
	}
	trust, err := NewTrust(l.opts.Trust.VerifierKeys())
	if err != nil {
		return nil, err
	}
	return VerifyWith(ctx, l.st, logID, VerifyOptions{Trust: trust, Witnesses: l.opts.Witnesses})
}

// Witnesses returns the names of the witnesses this Log publishes to.
func (l *Log) Witnesses() []string {
	out := make([]string, 0, len(l.opts.Witnesses))
	for _, w := range l.opts.Witnesses {
		out = append(out, w.Name())
	}
	return out
}

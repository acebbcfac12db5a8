// Package audit owns Haven's tamper-evident audit log: the canonical
// encoding of an audit event, the RFC 6962 Merkle tree over every practice's
// events, group commit, Ed25519-signed checkpoints in the signed-note format
// and their publication to witnesses, inclusion and consistency proofs, and
// the verifier that names the first edited, deleted, inserted, reordered or
// rolled-back entry.
//
// It answers THREATS.md's "insider covering tracks": anyone who can write to
// the database can change audit rows, but not without the change showing,
// because the rows no longer hash to the roots the server signed and a
// witness holds copies of those signatures.
//
// An insider can also append: a row with a correct leaf hash at the end of
// the log is as well formed as a genuine one. So every committed batch is
// sealed: its last row carries the signature of the checkpoint of the tree
// that batch completed, under the audit key, which is never in the
// database. A node adopts rows other nodes appended only when the tree they
// complete is sealed or checkpointed by a trusted key, and the verifier
// names the first entry no signature vouches for.
//
// The package never holds PHI (events are identifiers and codes only; see
// Event), never writes SQL (it defines Store, and database adapters
// implement it), and never acknowledges an event before the store has
// committed it: a caller that gets an error must not release the data the
// event describes.
package audit

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"haven"
)

// Options configure a Log. The zero value is usable for appending; Signer
// is needed for checkpoints.
type Options struct {
	// Signer signs checkpoints and seals every committed batch. Without
	// one, Checkpoint fails and batches are not sealed (tests only).
	Signer *Signer

	// Trust holds the keys whose seals and checkpoints vouch for rows this
	// node did not write: a node adopts entries other nodes appended only
	// when a trusted key sealed the tree they complete. Default: the
	// Signer's key alone. Without a Signer and a Trust nothing is checked.
	Trust *Trust

	// Witnesses receive every new checkpoint. A witness outside the
	// database is what later proves a rollback.
	Witnesses []Witness

	// MaxBatch caps the events written in one commit (default 1024). A
	// request is never split, so one larger request commits alone. 1 turns
	// group commit off: the baseline the benchmarks compare against.
	MaxBatch int

	// MaxQueue caps the events waiting per log (default 16384). When the
	// queue is full, Append waits for room or for its context.
	MaxQueue int

	// CommitTimeout bounds one store commit (default 30s). A commit is not
	// tied to any one caller's context, since it carries many callers'
	// events.
	CommitTimeout time.Duration

	// Now returns the current time (default time.Now); tests inject clocks.
	Now func() time.Time
}

// Log appends events to the audit logs of one deployment (one log per
// practice and one for the platform), keeps what it needs to compute roots
// and proofs in memory, and signs checkpoints. Several Logs (one per node)
// may share a database: the store refuses an append at a stale position, and
// the Log then catches up from the store and tries again.
type Log struct {
	st   Store
	opts Options

	mu     sync.RWMutex // guards closed and logs; held for reading while enqueuing
	closed bool
	logs   map[string]*logState
	wg     sync.WaitGroup // running drains

	commits, events, failures atomic.Uint64
	lastOK, lastFail          atomic.Int64 // unix nanoseconds of the last commit that succeeded, failed
}

// logState is one log's queue and tree.
type logState struct {
	id string

	mu       sync.Mutex // guards the queue
	queue    []*request
	queued   int           // events in queue
	space    chan struct{} // closed when room is freed in the queue
	draining bool          // a drain goroutine is running

	writeMu sync.Mutex // serializes commits, catch-up and checkpoints
	loaded  bool
	lastCP  *Checkpoint       // newest checkpoint stored by anyone, once loaded
	acked   map[string]uint64 // witness name -> the largest size it acknowledged
	broken  error             // why the last catch-up refused the store's rows; nil once one succeeds

	treeMu sync.RWMutex // guards tree
	tree   *tree
}

// request is one Append call waiting for its commit.
type request struct {
	events []Event
	taken  bool // a drain has taken it; it can no longer be withdrawn
	seqs   []uint64
	err    error
	done   chan struct{}
}

// NewLog returns a Log over st. Nothing is read until a log is first used,
// so a deployment with many practices starts at once.
func NewLog(st Store, opts Options) *Log {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = 16384
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Trust == nil && opts.Signer != nil {
		opts.Trust, _ = NewTrust(opts.Signer.VerifierKey())
	}
	return &Log{st: st, opts: opts, logs: map[string]*logState{}}
}

// Stats are counters for metrics.
type Stats struct {
	Commits  uint64 // successful store commits
	Events   uint64 // events committed
	Failures uint64 // failed commits; each failed every waiter in it
	Queued   int    // events waiting now, over all logs
}

// Stats returns the Log's counters.
func (l *Log) Stats() Stats {
	s := Stats{Commits: l.commits.Load(), Events: l.events.Load(), Failures: l.failures.Load()}
	l.mu.RLock()
	for _, ls := range l.logs {
		ls.mu.Lock()
		s.Queued += ls.queued
		ls.mu.Unlock()
	}
	l.mu.RUnlock()
	return s
}

func (l *Log) state(logID string) *logState {
	l.mu.RLock()
	ls := l.logs[logID]
	l.mu.RUnlock()
	if ls != nil {
		return ls
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls = l.logs[logID]; ls == nil {
		ls = &logState{id: logID, space: make(chan struct{}), tree: newTree()}
		l.logs[logID] = ls
	}
	return ls
}

// Append adds events to their log and returns their sequence numbers once
// the store has durably committed them. All events of one call belong to one
// log and commit together, in order. Concurrent calls are gathered into one
// commit (group commit), so auditing every read costs one database commit
// per batch, not per request.
//
// Append fails closed: if the store fails, every caller whose events were in
// that commit gets an error, and must not release the PHI the events
// describe. If ctx ends while the events are still queued they are withdrawn;
// if it ends during their commit they may still be stored, which over-audits
// but never under-audits.
func (l *Log) Append(ctx context.Context, events ...Event) ([]uint64, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if len(events) > l.opts.MaxQueue {
		return nil, haven.Errorf(haven.EINVALID, "audit: %d events in one append exceed the queue of %d", len(events), l.opts.MaxQueue)
	}
	now := l.opts.Now()
	req := &request{events: make([]Event, len(events)), done: make(chan struct{})}
	for i, e := range events {
		e.normalize(now)
		e.Seq = 0
		if err := e.Validate(); err != nil {
			return nil, err
		}
		if e.LogID != events[0].LogID {
			return nil, haven.Errorf(haven.EINVALID, "audit: events of one append must belong to one log")
		}
		req.events[i] = e
	}
	ls := l.state(events[0].LogID)
	if err := l.enqueue(ctx, ls, req); err != nil {
		return nil, err
	}
	select {
	case <-req.done:
		return req.seqs, req.err
	case <-ctx.Done():
	}
	select {
	case <-req.done: // committed just as ctx ended: the answer is known
		return req.seqs, req.err
	default:
	}
	ls.mu.Lock()
	if !req.taken {
		i := slices.Index(ls.queue, req)
		ls.queue = slices.Delete(ls.queue, i, i+1)
		ls.queued -= len(req.events)
		ls.freeSpace()
	}
	ls.mu.Unlock()
	return nil, haven.Wrap(haven.EUNAVAILABLE, ctx.Err(), "audit append cancelled")
}

// enqueue adds req to ls's queue, waiting for room, and makes sure a drain
// is running.
func (l *Log) enqueue(ctx context.Context, ls *logState, req *request) error {
	n := len(req.events)
	for {
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return haven.Errorf(haven.EUNAVAILABLE, "audit log closed")
		}
		ls.mu.Lock()
		if ls.queued+n <= l.opts.MaxQueue {
			ls.queue = append(ls.queue, req)
			ls.queued += n
			if !ls.draining {
				ls.draining = true
				l.wg.Add(1)
				go l.drain(ls)
			}
			ls.mu.Unlock()
			l.mu.RUnlock()
			return nil
		}
		space := ls.space
		ls.mu.Unlock()
		l.mu.RUnlock()
		select {
		case <-space:
		case <-ctx.Done():
			return haven.Wrap(haven.EUNAVAILABLE, ctx.Err(), "audit queue full")
		}
	}
}

// freeSpace wakes the Appends waiting for room. ls.mu is held.
func (ls *logState) freeSpace() {
	close(ls.space)
	ls.space = make(chan struct{})
}

// drain commits ls's queue batch by batch until it is empty. While one batch
// commits, the next gathers: that is the whole of group commit, with no
// timer and no added latency when the system is idle.
func (l *Log) drain(ls *logState) {
	defer l.wg.Done()
	for {
		ls.mu.Lock()
		if len(ls.queue) == 0 {
			ls.draining = false
			ls.mu.Unlock()
			return
		}
		var batch []*request
		n := 0
		for len(ls.queue) > 0 && (n == 0 || n+len(ls.queue[0].events) <= l.opts.MaxBatch) {
			r := ls.queue[0]
			r.taken = true
			batch = append(batch, r)
			n += len(r.events)
			ls.queue[0] = nil
			ls.queue = ls.queue[1:]
		}
		ls.queued -= n
		ls.freeSpace()
		ls.mu.Unlock()

		first, err := l.commit(ls, batch, n)
		for _, r := range batch {
			if err != nil {
				r.err = err
			} else {
				r.seqs = make([]uint64, len(r.events))
				for i := range r.seqs {
					r.seqs[i] = first
					first++
				}
			}
			close(r.done)
		}
	}
}

// maxConflicts bounds how often one batch retries after other nodes
// appended first.
const maxConflicts = 32

// commit writes the batch's n events at the end of the log and adds their
// leaves to the tree. It returns the first sequence number.
func (l *Log) commit(ls *logState, batch []*request, n int) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	defer cancel()
	ls.writeMu.Lock()
	defer ls.writeMu.Unlock()

	events := make([]Event, 0, n)
	for _, r := range batch {
		events = append(events, r.events...)
	}
	leaves := make([][]byte, n)
	if !ls.loaded {
		if err := l.catchUp(ctx, ls); err != nil {
			l.failed(err)
			return 0, err
		}
	}
	for attempt := 0; ; attempt++ {
		first := ls.tree.size()
		b, err := l.batchAt(ls, events, leaves, first, nil)
		if err != nil {
			l.failed(err)
			return 0, err
		}
		// When another node appended first, the store offers what it
		// appended while still holding the log's end; adopting it there
		// (once a trusted seal vouches for it) keeps this node from
		// starving behind a busier one.
		var since [][]byte
		b.Rebase = func(s [][]byte, sinceSeal []byte) (Batch, error) {
			if err := l.vouchSince(ls, s, sinceSeal); err != nil {
				return Batch{}, err
			}
			since = s
			return l.batchAt(ls, events, leaves, first+uint64(len(s)), s)
		}
		err = l.st.AppendLeaves(ctx, ls.id, first, b)
		if err == nil {
			ls.treeMu.Lock()
			for _, h := range since {
				ls.tree.append(h)
			}
			for _, h := range leaves {
				ls.tree.append(h)
			}
			ls.treeMu.Unlock()
			l.commits.Add(1)
			l.events.Add(uint64(n))
			l.lastOK.Store(l.opts.Now().UnixNano())
			return first + uint64(len(since)), nil
		}
		if he := (*haven.Error)(nil); errors.As(err, &he) && he.Code == haven.EINTERNAL {
			// The store found the log damaged (its record of where the
			// log ends disagrees with the rows): not a failure to retry or
			// to call unavailable, but evidence, like a refused catch-up.
			ls.broken = err
			l.failed(err)
			return 0, err
		}
		if haven.ErrorCode(err) != haven.ECONFLICT || attempt == maxConflicts {
			err = haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
			l.failed(err)
			return 0, err
		}
		// Another node appended first (or a commit reported as failed had in
		// fact landed): read what is there now and append after it. No
		// size query precedes a commit; the store's refusal is the check.
		if err := l.catchUp(ctx, ls); err != nil {
			l.failed(err)
			return 0, err
		}
	}
}

// failed counts a failed commit. A store failure also marks the log not
// ready for FailureHold; a refusal of the store's rows (EINTERNAL) marks it
// broken instead, until a catch-up succeeds (see Ready).
func (l *Log) failed(err error) {
	l.failures.Add(1)
	if haven.ErrorCode(err) != haven.EINTERNAL {
		l.lastFail.Store(l.opts.Now().UnixNano())
	}
}

// batchAt numbers events from first, computes their leaves into leaves and
// seals the tree that since (leaves other nodes stored after this node's
// tree) and then they complete. ls.writeMu is held.
func (l *Log) batchAt(ls *logState, events []Event, leaves [][]byte, first uint64, since [][]byte) (Batch, error) {
	for i := range events {
		events[i].Seq = first + uint64(i)
		leaves[i] = events[i].LeafHash()
	}
	all := leaves
	if len(since) > 0 {
		all = append(slices.Clone(since), leaves...)
	}
	seal, err := l.seal(ls, all)
	if err != nil {
		return Batch{}, err
	}
	return Batch{Events: events, LeafHashes: leaves, Seal: seal}, nil
}

// vouchSince checks what a store offers to rebase an append onto: the leaf
// hashes other nodes appended after this node's tree, and the seal stored
// on the last of them, which must be a trusted key's signature of the tree
// they complete, as catchUp demands of any row it adopts. Anything less is
// declined with ECONFLICT, so the append falls back to catchUp, which also
// looks for stored checkpoints and names what is wrong.
func (l *Log) vouchSince(ls *logState, since [][]byte, seal []byte) error {
	for _, h := range since {
		if len(h) != HashSize {
			return haven.Errorf(haven.ECONFLICT, "audit log %s: a stored leaf hash has the wrong size", ls.id)
		}
	}
	t := l.opts.Trust
	if t == nil {
		return nil
	}
	size := ls.tree.size() + uint64(len(since))
	root := ls.tree.rootAfter(since)
	for _, name := range t.names() {
		h, err := t.open(sealedNote(TreeHead{Origin: origin(name, ls.id), Size: size, Root: root}, seal), ls.id)
		if err == nil && h.Size == size && bytes.Equal(h.Root, root) {
			return nil
		}
	}
	return haven.Errorf(haven.ECONFLICT, "audit log %s: no trusted seal on the rows appended meanwhile", ls.id)
}

// seal signs the checkpoint of the tree that appending leaves completes and
// returns its signature block, to be stored with the batch's last row. A
// batch is authenticated by the tree head it completes, so the seal also
// vouches for every entry before it.
//
// Why a signature by the checkpoint key, and not a MAC or a second key: a
// MAC can only be checked by someone holding its secret, so `haven audit
// verify` (which must need nothing secret) could not check it; a second
// key derived from the seed would need its own public half distributed,
// pinned and rotated beside audit.pub. A seal is a checkpoint like any
// other: the key holder states "this log had this root at this size",
// which is what checkpoints already mean, so there is no second meaning for
// a signature to be mistaken for, and one public key checks both. It never
// leaves the key's file: the database only ever holds signatures. A seal
// whose commit fails is never stored nor shown; the tree it signed never
// existed anywhere else. ls.writeMu is held.
func (l *Log) seal(ls *logState, leaves [][]byte) ([]byte, error) {
	s := l.opts.Signer
	if s == nil {
		return nil, nil
	}
	h := TreeHead{Origin: origin(s.name, ls.id), Size: ls.tree.size() + uint64(len(leaves)), Root: ls.tree.rootAfter(leaves)}
	signed, err := s.sign(h, ls.id)
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "cannot seal audit batch")
	}
	return signed[len(h.Text())+1:], nil
}

// sealedNote rebuilds the checkpoint a seal signed.
func sealedNote(h TreeHead, seal []byte) []byte {
	return append([]byte(h.Text()+"\n"), seal...)
}

// loadPage is how many leaf hashes are read per store call when loading or
// catching up.
const loadPage = 4096

// catchUp brings ls's tree up to the store's size, loading it on first use.
// ls.writeMu is held. A store smaller than what this node has already seen
// means entries vanished: that is refused, never papered over. So are rows
// no trusted key vouches for: they are adopted only when the tree they
// complete carries a trusted seal (or a stored checkpoint), so an insider's
// forged row is never counted, extended, checkpointed or proven.
func (l *Log) catchUp(ctx context.Context, ls *logState) error {
	if !ls.loaded {
		cps, err := l.st.Checkpoints(ctx, ls.id)
		if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
		}
		ws, err := l.st.Witnessed(ctx, ls.id)
		if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
		}
		ls.acked = map[string]uint64{}
		for _, w := range ws {
			ls.acked[w.Witness] = w.Size
		}
		if len(cps) > 0 {
			cp := cps[len(cps)-1]
			ls.lastCP = &cp
		}
		ls.loaded = true
	}
	size, err := l.st.Size(ctx, ls.id)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
	}
	have := ls.tree.size()
	if size < have {
		ls.broken = haven.Errorf(haven.EINTERNAL, "audit log %s: store has %d entries but this node has seen %d: entries were removed", ls.id, size, have)
		return ls.broken
	}
	if size == have {
		ls.broken = nil
		return nil
	}
	mark := ls.tree.mark()
	fail := func(err error) error {
		ls.treeMu.Lock()
		ls.tree.reset(mark)
		ls.treeMu.Unlock()
		if haven.ErrorCode(err) == haven.EINTERNAL {
			ls.broken = err
		}
		return err
	}
	for from := have; from < size; {
		to := min(from+loadPage, size)
		hs, err := l.st.LeafHashes(ctx, ls.id, from, to)
		if err != nil {
			return fail(haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable"))
		}
		if uint64(len(hs)) != to-from {
			return fail(haven.Errorf(haven.EINTERNAL, "audit log %s: %d leaf hashes stored in [%d, %d): entries are missing", ls.id, len(hs), from, to))
		}
		for _, h := range hs {
			if len(h) != HashSize {
				return fail(haven.Errorf(haven.EINTERNAL, "audit log %s: stored leaf hash of wrong size", ls.id))
			}
		}
		ls.treeMu.Lock()
		for _, h := range hs {
			ls.tree.append(h)
		}
		ls.treeMu.Unlock()
		from = to
	}
	if err := l.vouched(ctx, ls, size); err != nil {
		return fail(err)
	}
	ls.broken = nil
	return nil
}

// vouched checks that the tree of size (the tree in memory) is signed by a
// trusted key: the seal stored with its last row, or a stored checkpoint of
// that size. Since the tree's root commits to every leaf before it, one
// signature vouches for all of them. ls.writeMu is held.
func (l *Log) vouched(ctx context.Context, ls *logState, size uint64) error {
	t := l.opts.Trust
	if t == nil || size == 0 {
		return nil
	}
	root := ls.tree.root()
	ok := func(signed []byte) bool {
		h, err := t.open(signed, ls.id)
		return err == nil && h.Size == size && bytes.Equal(h.Root, root)
	}
	seal, err := l.st.Seal(ctx, ls.id, size-1)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
	}
	if seal != nil {
		for _, name := range t.names() {
			if ok(sealedNote(TreeHead{Origin: origin(name, ls.id), Size: size, Root: root}, seal)) {
				return nil
			}
		}
	}
	if cp := ls.lastCP; cp != nil && cp.Size == size && ok(cp.Note) {
		return nil
	}
	cps, err := l.st.Checkpoints(ctx, ls.id)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
	}
	for _, cp := range cps {
		if cp.Size == size && ok(cp.Note) {
			return nil
		}
	}
	return haven.Errorf(haven.EINTERNAL, "audit log %s: the store's %d entries end in a tree no trusted audit key signed: rows were appended without the key; refusing to adopt them", ls.id, size)
}

// sync makes sure ls's tree is loaded and holds at least want entries,
// catching up from the store when it does not.
func (l *Log) sync(ctx context.Context, ls *logState, want uint64) error {
	ls.writeMu.Lock()
	defer ls.writeMu.Unlock()
	if ls.loaded && ls.tree.size() >= want {
		return nil
	}
	return l.catchUp(ctx, ls)
}

// Size returns the log's current size, as the store has it.
func (l *Log) Size(ctx context.Context, logID string) (uint64, error) {
	if !isLogID(logID) {
		return 0, haven.Errorf(haven.EINVALID, "audit: bad log id")
	}
	ls := l.state(logID)
	ls.writeMu.Lock()
	defer ls.writeMu.Unlock()
	if err := l.catchUp(ctx, ls); err != nil {
		return 0, err
	}
	return ls.tree.size(), nil
}

// Close stops accepting events, waits until every queued event has been
// committed (or has failed) and returns. Checkpoint and proofs keep working,
// so a final checkpoint can be signed after Close.
func (l *Log) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

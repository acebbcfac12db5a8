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
// The package never holds PHI (events are identifiers and codes only; see
// Event), never writes SQL (it defines Store, and database adapters
// implement it), and never acknowledges an event before the store has
// committed it: a caller that gets an error must not release the data the
// event describes.
package audit

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"haven"
)

// Options configure a Log. The zero value is usable for appending; Signer
// is needed for checkpoints.
type Options struct {
	// Signer signs checkpoints. Without one, Checkpoint fails.
	Signer *Signer

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
	lastCP  *Checkpoint // newest checkpoint stored by anyone, once loaded

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
			l.failures.Add(1)
			return 0, err
		}
	}
	for attempt := 0; ; attempt++ {
		first := ls.tree.size()
		for i := range events {
			events[i].Seq = first + uint64(i)
			leaves[i] = events[i].LeafHash()
		}
		err := l.st.AppendLeaves(ctx, ls.id, first, events, leaves)
		if err == nil {
			ls.treeMu.Lock()
			for _, h := range leaves {
				ls.tree.append(h)
			}
			ls.treeMu.Unlock()
			l.commits.Add(1)
			l.events.Add(uint64(n))
			return first, nil
		}
		if haven.ErrorCode(err) != haven.ECONFLICT || attempt == maxConflicts {
			l.failures.Add(1)
			return 0, haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
		}
		// Another node appended first (or a commit reported as failed had in
		// fact landed): read what is there now and append after it. No
		// size query precedes a commit; the store's refusal is the check.
		if err := l.catchUp(ctx, ls); err != nil {
			l.failures.Add(1)
			return 0, err
		}
	}
}

// loadPage is how many leaf hashes are read per store call when loading or
// catching up.
const loadPage = 4096

// catchUp brings ls's tree up to the store's size, loading it on first use.
// ls.writeMu is held. A store smaller than what this node has already seen
// means entries vanished: that is refused, never papered over.
func (l *Log) catchUp(ctx context.Context, ls *logState) error {
	if !ls.loaded {
		cps, err := l.st.Checkpoints(ctx, ls.id)
		if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
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
		return haven.Errorf(haven.EINTERNAL, "audit log %s: store has %d entries but this node has seen %d: entries were removed", ls.id, size, have)
	}
	for from := have; from < size; {
		to := min(from+loadPage, size)
		hs, err := l.st.LeafHashes(ctx, ls.id, from, to)
		if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
		}
		if uint64(len(hs)) != to-from {
			return haven.Errorf(haven.EINTERNAL, "audit log %s: %d leaf hashes stored in [%d, %d): entries are missing", ls.id, len(hs), from, to)
		}
		ls.treeMu.Lock()
		for _, h := range hs {
			if len(h) != HashSize {
				ls.treeMu.Unlock()
				return haven.Errorf(haven.EINTERNAL, "audit log %s: stored leaf hash of wrong size", ls.id)
			}
			ls.tree.append(h)
		}
		ls.treeMu.Unlock()
		from = to
	}
	return nil
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

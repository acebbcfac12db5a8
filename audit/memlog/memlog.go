// Package memlog is an in-memory audit.Store for tests and benchmarks. It
// behaves as a database would: appends are atomic and refused at a stale
// position, values are copied in and out, and an optional delay stands in
// for the cost of a durable commit. It also exposes what an insider with
// write access to the database could do to the rows (audittest.Insider), so
// the tamper tests can attack it.
//
// It must never be used to hold a real deployment's audit log: nothing
// survives the process.
package memlog

import (
	"bytes"
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"haven"
	"haven/audit"
)

// Store is an in-memory audit.Store. The zero value is not usable; call New.
type Store struct {
	mu          sync.Mutex
	logs        map[string]*log
	handovers   map[string][]byte // by the key handed over
	commitDelay time.Duration
	down        error // set by SetDown: every append and probe fails with it
}

type log struct {
	rows map[uint64]audit.Entry
	size uint64 // highest sequence number + 1
	cps  map[uint64]audit.Checkpoint
	acks map[string]audit.Checkpoint // newest per witness
}

// New returns an empty store.
func New() *Store { return &Store{logs: map[string]*log{}} }

// SetCommitDelay makes every AppendLeaves take at least d while holding the
// store's lock, as a database's durable commit (an fsync) would, so group
// commit can be measured against one commit per event.
func (s *Store) SetCommitDelay(d time.Duration) {
	s.mu.Lock()
	s.commitDelay = d
	s.mu.Unlock()
}

// SetDown makes every append and write probe fail with err (nil: works
// again), as a database whose audit table is gone or locked would.
func (s *Store) SetDown(err error) {
	s.mu.Lock()
	s.down = err
	s.mu.Unlock()
}

// ProbeAppend implements audit.WriteProber.
func (s *Store) ProbeAppend(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

func (s *Store) log(logID string, create bool) *log {
	l := s.logs[logID]
	if l == nil && create {
		l = &log{rows: map[uint64]audit.Entry{}, cps: map[uint64]audit.Checkpoint{}, acks: map[string]audit.Checkpoint{}}
		s.logs[logID] = l
	}
	return l
}

func copyEntry(e audit.Entry) audit.Entry {
	e.LeafHash = bytes.Clone(e.LeafHash)
	e.Seal = bytes.Clone(e.Seal)
	return e
}

// AppendLeaves implements audit.Store, rebasing a stale append while it
// holds the store's lock as a database holds a log's head.
func (s *Store) AppendLeaves(ctx context.Context, logID string, first uint64, b audit.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down != nil {
		return down
	}
	if err := b.CheckAt(first); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.commitDelay > 0 {
		time.Sleep(s.commitDelay)
	}
	l := s.log(logID, true)
	if first != l.size {
		if first > l.size || b.Rebase == nil {
			return haven.Errorf(haven.ECONFLICT, "memlog: append at %d but log %s has size %d", first, logID, l.size)
		}
		since := make([][]byte, 0, l.size-first)
		for seq := first; seq < l.size; seq++ {
			since = append(since, bytes.Clone(l.rows[seq].LeafHash))
		}
		var err error
		if b, err = b.Rebase(since, bytes.Clone(l.rows[l.size-1].Seal)); err != nil {
			return err
		}
		if err := b.CheckAt(l.size); err != nil {
			return err
		}
		first = l.size
	}
	for i, e := range b.Events {
		var sl []byte
		if i == len(b.Events)-1 {
			sl = b.Seal
		}
		l.rows[e.Seq] = copyEntry(audit.Entry{Event: e, LeafHash: b.LeafHashes[i], Seal: sl})
	}
	l.size = first + uint64(len(b.Events))
	return nil
}

// Size implements audit.Store.
func (s *Store) Size(ctx context.Context, logID string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.log(logID, false); l != nil {
		return l.size, nil
	}
	return 0, nil
}

// Entries implements audit.Store.
func (s *Store) Entries(ctx context.Context, logID string, from, to uint64) ([]audit.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log(logID, false)
	if l == nil {
		return nil, nil
	}
	end := min(to, l.size)
	out := make([]audit.Entry, 0, end-min(from, end))
	for seq := from; seq < end; seq++ {
		if e, ok := l.rows[seq]; ok {
			out = append(out, copyEntry(e))
		}
	}
	return out, nil
}

// LeafHashes implements audit.Store.
func (s *Store) LeafHashes(ctx context.Context, logID string, from, to uint64) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log(logID, false)
	if l == nil {
		return nil, nil
	}
	end := min(to, l.size)
	out := make([][]byte, 0, end-min(from, end))
	for seq := from; seq < end; seq++ {
		if e, ok := l.rows[seq]; ok {
			out = append(out, bytes.Clone(e.LeafHash))
		}
	}
	return out, nil
}

// PutCheckpoint implements audit.Store.
func (s *Store) PutCheckpoint(ctx context.Context, logID string, cp audit.Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log(logID, true)
	if old, ok := l.cps[cp.Size]; ok {
		if bytes.Equal(old.Note, cp.Note) {
			return nil
		}
		return haven.Errorf(haven.ECONFLICT, "memlog: log %s already has a different checkpoint at size %d", logID, cp.Size)
	}
	l.cps[cp.Size] = audit.Checkpoint{Size: cp.Size, Note: bytes.Clone(cp.Note)}
	return nil
}

// Checkpoints implements audit.Store.
func (s *Store) Checkpoints(ctx context.Context, logID string) ([]audit.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log(logID, false)
	if l == nil {
		return nil, nil
	}
	out := make([]audit.Checkpoint, 0, len(l.cps))
	for _, cp := range l.cps {
		out = append(out, audit.Checkpoint{Size: cp.Size, Note: bytes.Clone(cp.Note)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Size < out[j].Size })
	return out, nil
}

// Seal implements audit.Store.
func (s *Store) Seal(ctx context.Context, logID string, seq uint64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.log(logID, false); l != nil {
		if e, ok := l.rows[seq]; ok && len(e.Seal) > 0 {
			return bytes.Clone(e.Seal), nil
		}
	}
	return nil, nil
}

// PutWitnessed implements audit.Store.
func (s *Store) PutWitnessed(ctx context.Context, logID, witness string, cp audit.Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log(logID, true)
	if old, ok := l.acks[witness]; !ok || cp.Size >= old.Size {
		l.acks[witness] = audit.Checkpoint{Size: cp.Size, Note: bytes.Clone(cp.Note)}
	}
	return nil
}

// Witnessed implements audit.Store.
func (s *Store) Witnessed(ctx context.Context, logID string) ([]audit.Witnessed, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log(logID, false)
	if l == nil {
		return nil, nil
	}
	var out []audit.Witnessed
	for w, cp := range l.acks {
		out = append(out, audit.Witnessed{Witness: w, Checkpoint: audit.Checkpoint{Size: cp.Size, Note: bytes.Clone(cp.Note)}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Witness < out[j].Witness })
	return out, nil
}

// PutHandover implements audit.Store.
func (s *Store) PutHandover(ctx context.Context, fromKey string, note []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handovers == nil {
		s.handovers = map[string][]byte{}
	}
	if old, ok := s.handovers[fromKey]; ok {
		if bytes.Equal(old, note) {
			return nil
		}
		return haven.Errorf(haven.ECONFLICT, "memlog: key already handed over")
	}
	s.handovers[fromKey] = bytes.Clone(note)
	return nil
}

// Handovers implements audit.Store.
func (s *Store) Handovers(ctx context.Context) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, n := range s.handovers {
		out = append(out, bytes.Clone(n))
	}
	return out, nil
}

// Logs implements audit.Store.
func (s *Store) Logs(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, l := range s.logs {
		if len(l.rows) > 0 || len(l.cps) > 0 || len(l.acks) > 0 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

// The methods below are what an insider with write access to the database
// can do (audittest.Insider). Haven never calls them.

// UpdateEntry overwrites the row at seq with e, which may carry another
// sequence number (the row moves), as an SQL UPDATE of every column would.
// The target position must be free.
func (s *Store) UpdateEntry(ctx context.Context, logID string, seq uint64, e audit.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log(logID, false)
	if l == nil {
		return haven.Errorf(haven.ENOTFOUND, "memlog: no row")
	}
	if _, ok := l.rows[seq]; !ok {
		return haven.Errorf(haven.ENOTFOUND, "memlog: no row at %d", seq)
	}
	if _, taken := l.rows[e.Seq]; taken && e.Seq != seq {
		return haven.Errorf(haven.ECONFLICT, "memlog: row %d exists", e.Seq)
	}
	delete(l.rows, seq)
	l.rows[e.Seq] = copyEntry(e)
	l.resize()
	return nil
}

// DeleteEntry removes the row at seq.
func (s *Store) DeleteEntry(ctx context.Context, logID string, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log(logID, false)
	if l == nil {
		return haven.Errorf(haven.ENOTFOUND, "memlog: no row")
	}
	if _, ok := l.rows[seq]; !ok {
		return haven.Errorf(haven.ENOTFOUND, "memlog: no row at %d", seq)
	}
	delete(l.rows, seq)
	l.resize()
	return nil
}

// InsertEntry adds a row at e.Seq, which must be free.
func (s *Store) InsertEntry(ctx context.Context, logID string, e audit.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log(logID, true)
	if _, taken := l.rows[e.Seq]; taken {
		return haven.Errorf(haven.ECONFLICT, "memlog: row %d exists", e.Seq)
	}
	l.rows[e.Seq] = copyEntry(e)
	l.resize()
	return nil
}

// RewindHead does nothing: memlog keeps no record of where a log ends
// apart from its rows.
func (s *Store) RewindHead(ctx context.Context, logID string) error { return nil }

// DeleteWitnessed removes every record of what witnesses acknowledged.
func (s *Store) DeleteWitnessed(ctx context.Context, logID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.log(logID, false); l != nil {
		l.acks = map[string]audit.Checkpoint{}
	}
	return nil
}

// DeleteCheckpoint removes the stored checkpoint at size.
func (s *Store) DeleteCheckpoint(ctx context.Context, logID string, size uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.log(logID, false); l != nil {
		delete(l.cps, size)
	}
	return nil
}

func (l *log) resize() {
	l.size = 0
	for seq := range l.rows {
		l.size = max(l.size, seq+1)
	}
}

package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"time"

	"haven"
)

// How a running node learns of key changes made elsewhere (another node,
// the command line) at once rather than after a cache TTL:
//
// The store keeps a key-state version that every UpdateKey and SetRoot
// raises in the same transaction as its change, and the ID of the root new
// keys must be wrapped by. Before a data key is used, the keyring reads
// that state (one single-row read, shared by the uses that arrive while it
// is in flight). A cached data key stamped with an older version is checked
// against its row once more before use: a key shredded anywhere fails on
// the very next use here, and a shred is in force on every node as soon as
// the transaction that made it commits, before the command that asked for
// it reports success. A changed root ID makes this node wrap new keys under
// the new root, loading it (Config.FindRoot) if it has not got it yet.

// sharedStateReadTimeout bounds a key-state read that serves several
// callers, so it runs on a context of its own.
const sharedStateReadTimeout = 10 * time.Second

// findRootRetry is how long a root that could not be found is not looked
// for again: looking may read a key file through argon2id, and a node
// missing a root must not do that for every request.
const findRootRetry = 2 * time.Second

// stateReader reads the store's key state, coalescing concurrent callers:
// a caller is answered by a read that started after it called, so it never
// sees a state older than its own arrival, and a busy node makes at most
// one read at a time plus one queued.
type stateReader struct {
	store Store

	mu      sync.Mutex
	running bool
	next    *stateRead // the read the callers arriving now will get
}

type stateRead struct {
	done    chan struct{}
	version int64
	root    string
	err     error
}

func (g *stateReader) read(ctx context.Context) (int64, string, error) {
	g.mu.Lock()
	if !g.running {
		// Nothing in flight: read on the caller's own goroutine.
		g.running = true
		g.mu.Unlock()
		v, root, err := g.store.KeyState(ctx)
		g.finish()
		return v, root, err
	}
	r := g.next
	if r == nil {
		r = &stateRead{done: make(chan struct{})}
		g.next = r
	}
	g.mu.Unlock()
	select {
	case <-r.done:
		return r.version, r.root, r.err
	case <-ctx.Done():
		return 0, "", ctx.Err()
	}
}

// finish ends the read in flight and starts the queued one, if any.
func (g *stateReader) finish() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running = false
	if r := g.next; r != nil {
		g.next, g.running = nil, true
		go g.shared(r)
	}
}

func (g *stateReader) shared(r *stateRead) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedStateReadTimeout)
	r.version, r.root, r.err = g.store.KeyState(ctx)
	cancel()
	close(r.done)
	g.finish()
}

// checkedKey marks a context that carries a key-state read (Checked).
type checkedKey struct{ k *Keyring }

// Checked reads the key state once and returns a context under which this
// keyring's key uses rely on that read instead of making their own: for
// one request that opens many fields (a patient list, a chart), one
// single-row read instead of one per field. Changes committed after the
// read are seen by the next request, which makes its own. Keep the
// context to the request: one kept longer would keep using a key
// destroyed after it was made.
func (k *Keyring) Checked(ctx context.Context) (context.Context, error) {
	if _, ok := ctx.Value(checkedKey{k}).(int64); ok {
		return ctx, nil
	}
	v, err := k.sync(ctx)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, checkedKey{k}, v), nil
}

// CheckedAs is Checked with a key-state read the caller made itself, from
// store, in a statement that read other things it needed too (the facts
// of a decision, which sqlstore reads with the key state): version and
// rootID as KeyState returned them. The read must have started after the
// request arrived, as Checked's does. If store is not this keyring's own,
// ctx is returned as it is, and the next use reads the state itself.
func (k *Keyring) CheckedAs(ctx context.Context, store Store, version int64, rootID string) context.Context {
	if _, ok := ctx.Value(checkedKey{k}).(int64); ok || store == nil || store != k.state.store {
		return ctx
	}
	if rootID != "" {
		k.follow(ctx, version, rootID)
	}
	return context.WithValue(ctx, checkedKey{k}, version)
}

// syncFor is sync, unless ctx carries this keyring's read (Checked).
func (k *Keyring) syncFor(ctx context.Context) (int64, error) {
	if v, ok := ctx.Value(checkedKey{k}).(int64); ok {
		return v, nil
	}
	return k.sync(ctx)
}

// sync reads the key state, follows a change of root, and returns the
// version: every cached data key last checked before it is checked again
// before use.
func (k *Keyring) sync(ctx context.Context) (int64, error) {
	v, rootID, err := k.state.read(ctx)
	if err != nil {
		return 0, storeErr(err, "cannot read the key state")
	}
	if rootID != "" {
		k.follow(ctx, v, rootID)
	}
	return v, nil
}

// follow makes rootID the root new keys are wrapped by, as of key-state
// version v; an older state read late never undoes a newer one. A root this
// node has not got is looked for through Config.FindRoot; until it is
// found, creating practice and index keys fails (reads go on).
func (k *Keyring) follow(ctx context.Context, v int64, rootID string) {
	k.mu.RLock()
	same := k.root.ID() == rootID && k.missingRoot == ""
	stale := v < k.rootAt
	k.mu.RUnlock()
	if same || stale {
		return
	}
	r, found := k.findRoot(ctx, rootID)
	k.mu.Lock()
	defer k.mu.Unlock()
	if v < k.rootAt {
		return
	}
	k.rootAt = v
	if !found {
		k.missingRoot = rootID
		return
	}
	k.root, k.missingRoot = r, ""
}

// findRoot returns the root with the given ID: one this keyring has, or
// else one Config.FindRoot finds (looked for at most every findRootRetry).
func (k *Keyring) findRoot(ctx context.Context, id string) (Root, bool) {
	k.mu.RLock()
	r, ok := k.roots[id]
	k.mu.RUnlock()
	if ok || k.find == nil {
		return r, ok
	}
	k.findMu.Lock()
	defer k.findMu.Unlock()
	k.mu.RLock()
	r, ok = k.roots[id]
	k.mu.RUnlock()
	if ok {
		return r, true
	}
	if last, failed := k.findFailed[id]; failed && k.now().Sub(last) < findRootRetry {
		return nil, false
	}
	r, err := k.find(ctx, id)
	if err != nil || r == nil || r.ID() != id {
		if c, ok := r.(io.Closer); ok {
			c.Close()
		}
		k.findFailed[id] = k.now()
		return nil, false
	}
	delete(k.findFailed, id)
	k.mu.Lock()
	k.roots[id] = r
	k.found = append(k.found, r)
	k.mu.Unlock()
	return r, true
}

// currentRoot returns the root new practice and index keys are wrapped by.
func (k *Keyring) currentRoot() (Root, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.missingRoot != "" {
		return nil, errMissingRoot(fmt.Errorf("new keys must be wrapped by root %s, which this node has not got (it has %s): give it the new root key file", k.missingRoot, k.root.ID()))
	}
	return k.root, nil
}

// errMissingRoot is the error for a root this node has not got. Root IDs
// stay in the cause, for the log: a client sees only an internal error.
func errMissingRoot(cause error) error {
	return haven.Wrap(haven.EINTERNAL, cause, "a key of the encryption hierarchy is not available on this node")
}

// checkLive checks a cached data key against its row once more, because
// the key state changed since it was last known live: a key destroyed
// meanwhile (on any node) is dropped and reported destroyed.
func (k *Keyring) checkLive(ctx context.Context, e *cacheEntry, v int64) error {
	wk, err := k.store.GetKey(ctx, e.practiceID, KindData, e.patientID, e.version)
	if haven.ErrorCode(err) == haven.ENOTFOUND || err == nil && (wk.State == StateDestroyed || wk.ID != e.id) {
		k.cache.remove(e)
		return haven.Wrap(haven.ENOTFOUND, ErrKeyDestroyed, "data key destroyed")
	}
	if err != nil {
		return storeErr(err, "cannot read data key")
	}
	k.cache.checked(e, v)
	return nil
}

// readyProbeAD binds Ready's throwaway wrap to its purpose, so the probe's
// ciphertext can never stand in for a real key's.
var readyProbeAD = []byte("haven/keyring ready probe")

// Ready reports whether this node can use the key hierarchy now: the key
// state reads, the root the store names as current is one this node has
// (a root rotated elsewhere whose file was not copied here would fail
// every new key), and that root wraps and unwraps (a KMS that is down or
// refuses this node fails every first read of a practice). /readyz asks
// it, so a load balancer takes a node out whose requests would fail on
// keys, instead of sending every third patient an error. It caches and
// writes nothing; errors name roots by ID only.
func (k *Keyring) Ready(ctx context.Context) error {
	if _, err := k.sync(ctx); err != nil {
		return err
	}
	root, err := k.currentRoot()
	if err != nil {
		return err
	}
	probe := make([]byte, keySize)
	if _, err := rand.Read(probe); err != nil {
		return haven.Wrap(haven.EINTERNAL, err, "cannot draw random bytes")
	}
	wrapped, err := root.Wrap(ctx, probe, readyProbeAD)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, fmt.Errorf("root %s cannot wrap: %w", root.ID(), err), "the root key is not usable")
	}
	back, err := root.Unwrap(ctx, wrapped, readyProbeAD)
	if err != nil || !bytes.Equal(back, probe) {
		return haven.Wrap(haven.EUNAVAILABLE, fmt.Errorf("root %s cannot unwrap its own wrap: %v", root.ID(), err), "the root key is not usable")
	}
	clear(probe)
	clear(back)
	return nil
}

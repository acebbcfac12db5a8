package keyring

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"

	"haven"
)

// PlatformPracticeID is the practice id under which the platform's own
// records (a platform operator's sealed email, the platform-wide blind
// index) get their keys, since operators belong to no practice. It cannot
// collide with a practice id from haven.NewID, whose alphabet has no "_".
// An empty practice id is always refused: a caller that forgot to set it
// must fail, not quietly seal a practice's data under the platform's keys.
const PlatformPracticeID = "_platform"

// Config is what Open needs.
type Config struct {
	// Store persists the wrapped keys (required).
	Store Store
	// Root wraps new practice and index keys (required).
	Root Root
	// OldRoots may still unwrap keys but wrap nothing new: pass the previous
	// root here to finish a root rotation that was interrupted.
	OldRoots []Root
	// FindRoot, if set, is asked for a root this keyring has not got when
	// the store names it: the root another node or the command line
	// rotated to while this one was running. The wiring looks in the root
	// key files; it returns an error if it finds no root with that ID.
	FindRoot func(ctx context.Context, id string) (Root, error)
	// CacheSize bounds how many unwrapped keys are held (default 10000).
	CacheSize int
	// CacheTTL bounds how long an unwrapped key is held in memory (default
	// 5 minutes). It has no bearing on when a key change made elsewhere
	// takes effect here: that is on the next use (see state.go).
	CacheTTL time.Duration
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
}

// Keyring owns Haven's key hierarchy: root → practice key (KEK) → patient
// data key (DEK) → AES-256-GCM over each field and each blob, plus a
// blind-index key per practice. Only the service layer holds one: it is
// the single place PHI becomes plaintext, after policy and audit.
type Keyring struct {
	store Store
	state stateReader
	cache *keyCache
	// verifiers holds public signing keys (sign.go).
	verifiers verifierCache
	now       func() time.Time
	find      func(ctx context.Context, id string) (Root, error)

	mu          sync.RWMutex
	root        Root            // wraps new keys
	roots       map[string]Root // every root that may unwrap, by ID
	rootAt      int64           // the key-state version root was set from
	missingRoot string          // the store's current root, when this node has not got it
	found       []Root          // roots FindRoot gave, closed with the keyring

	findMu     sync.Mutex           // one FindRoot at a time
	findFailed map[string]time.Time // when a root was last looked for in vain
}

// listPage is how many keys one ListKeys call fetches while paging.
const listPage = 500

// Open returns a keyring over cfg.Store. It checks, before serving
// anything, that every live practice and index key is wrapped by a
// configured root and that each root really unwraps one of them, so a
// wrong key file, a wrong passphrase's sibling file or the wrong KMS key is
// reported now, naming the roots, instead of as failed reads later.
func Open(ctx context.Context, cfg Config) (*Keyring, error) {
	if cfg.Store == nil || cfg.Root == nil {
		return nil, haven.Errorf(haven.EINVALID, "keyring needs a store and a root")
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10000
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k := &Keyring{
		store:      cfg.Store,
		state:      stateReader{store: cfg.Store},
		cache:      newKeyCache(cfg.CacheSize, cfg.CacheTTL, cfg.Now),
		now:        cfg.Now,
		find:       cfg.FindRoot,
		root:       cfg.Root,
		roots:      map[string]Root{cfg.Root.ID(): cfg.Root},
		findFailed: map[string]time.Time{},
	}
	for _, r := range cfg.OldRoots {
		k.roots[r.ID()] = r
	}
	checked := map[string]bool{}
	for _, kind := range []string{KindPractice, KindIndex} {
		err := k.listAll(ctx, "", kind, "", func(wk haven.WrappedKey) error {
			if wk.State == StateDestroyed || checked[wk.WrappedBy] {
				return nil
			}
			if _, ok := k.findRoot(ctx, wk.WrappedBy); !ok {
				return haven.Errorf(haven.EINVALID, "the key store's %s key of practice %s is wrapped by root %s, but the configured root is %s: wrong key file or KMS key?", wk.Kind, wk.PracticeID, wk.WrappedBy, cfg.Root.ID())
			}
			raw, err := k.rootUnwrap(ctx, wk)
			if err != nil {
				return err
			}
			clear(raw)
			checked[wk.WrappedBy] = true
			return nil
		})
		if err != nil {
			k.Close()
			return nil, err
		}
	}
	if err := k.adoptRoot(ctx, cfg.Root); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

// adoptRoot settles, at Open, which root wraps new keys: the one the store
// names (a rotation elsewhere may have moved it on), or for a store that
// names none yet, the configured root, recorded so every node agrees.
func (k *Keyring) adoptRoot(ctx context.Context, configured Root) error {
	for range 3 {
		v, rootID, err := k.store.KeyState(ctx)
		if err != nil {
			return storeErr(err, "cannot read the key state")
		}
		if rootID == "" {
			err := k.store.SetRoot(ctx, "", configured.ID())
			if err == nil || haven.ErrorCode(err) == haven.ECONFLICT {
				continue // read what was recorded, ours or another node's
			}
			return storeErr(err, "cannot record the root")
		}
		k.follow(ctx, v, rootID)
		k.mu.RLock()
		missing := k.missingRoot
		k.mu.RUnlock()
		if missing != "" {
			return haven.Errorf(haven.EINVALID, "the key store's current root is %s, which is not configured (configured: %s): give this node the root key file it was rotated to", missing, configured.ID())
		}
		return nil
	}
	return haven.Errorf(haven.EUNAVAILABLE, "could not settle the current root")
}

// RootID returns the ID of the root that wraps new keys.
func (k *Keyring) RootID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.root.ID()
}

// Close zeroes every cached key. The keyring must not be used afterwards.
func (k *Keyring) Close() error {
	k.cache.purge()
	k.mu.Lock()
	found := k.found
	k.found = nil
	k.mu.Unlock()
	for _, r := range found {
		if c, ok := r.(io.Closer); ok {
			c.Close()
		}
	}
	return nil
}

// listAll pages through ListKeys.
func (k *Keyring) listAll(ctx context.Context, practiceID, kind, wrappedBy string, fn func(haven.WrappedKey) error) error {
	after := ""
	for {
		page, err := k.store.ListKeys(ctx, practiceID, kind, wrappedBy, after, listPage)
		if err != nil {
			return storeErr(err, "cannot list keys")
		}
		for _, wk := range page {
			if err := fn(wk); err != nil {
				return err
			}
		}
		if len(page) < listPage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// storeErr keeps haven errors from the store as they are and marks any
// other failure as the store being unavailable.
func storeErr(err error, msg string) error {
	if haven.ErrorCode(err) != haven.EINTERNAL {
		return err
	}
	return haven.Wrap(haven.EUNAVAILABLE, err, msg)
}

func validPracticeID(practiceID string) error {
	if practiceID == "" {
		return haven.Errorf(haven.EINVALID, "practice id required (use the platform practice id for platform records)")
	}
	return nil
}

// rootByID returns the root with the given ID, looking for it (FindRoot)
// if this node has not got it: after a rotation elsewhere, keys are
// wrapped by a root this node has not loaded yet.
func (k *Keyring) rootByID(ctx context.Context, id string) (Root, error) {
	r, ok := k.findRoot(ctx, id)
	if !ok {
		return nil, errMissingRoot(fmt.Errorf("key is wrapped by root %s, which is not configured (current root %s): wrong key file or KMS key?", id, k.RootID()))
	}
	return r, nil
}

func (k *Keyring) rootUnwrap(ctx context.Context, wk haven.WrappedKey) ([]byte, error) {
	r, err := k.rootByID(ctx, wk.WrappedBy)
	if err != nil {
		return nil, err
	}
	raw, err := r.Unwrap(ctx, wk.Wrapped, wrapAD(wk, wk.WrappedBy))
	if err != nil {
		if haven.ErrorCode(err) == haven.EUNAVAILABLE {
			return nil, err
		}
		return nil, haven.Wrap(haven.EINTERNAL, fmt.Errorf("root %s cannot unwrap the %s key of practice %s: wrong root key, or the key record was altered: %w", wk.WrappedBy, wk.Kind, wk.PracticeID, err), "a key of the encryption hierarchy cannot be opened")
	}
	if len(raw) != keySize {
		clear(raw)
		return nil, haven.Wrap(haven.EINTERNAL, ErrTampered, "unwrapped key has the wrong size")
	}
	return raw, nil
}

func newKey() ([]byte, error) {
	raw := make([]byte, keySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "random key failed")
	}
	return raw, nil
}

// appendCacheName appends an unambiguous cache name made of a tag and
// length-prefixed fields. Names are built in caller-provided buffers so a
// cache hit allocates nothing.
func appendCacheName(b []byte, tag string, fields ...string) []byte {
	b = append(b, tag...)
	for _, f := range fields {
		b = appendLP(b, f)
	}
	return b
}

func cacheName(tag string, fields ...string) string {
	return string(appendCacheName(nil, tag, fields...))
}

func appendDataName(b []byte, practiceID, patientID string, version int) []byte {
	b = appendCacheName(b, "d", practiceID, patientID)
	return binary.BigEndian.AppendUint32(b, uint32(version))
}

// rootWrapped returns the newest practice or index key of a practice,
// creating version 1 under the current root if there is none yet. Racing
// creators end with one key: the loser of CreateKey reads the winner's.
func (k *Keyring) rootWrapped(ctx context.Context, practiceID, kind string) (haven.WrappedKey, error) {
	for range 3 {
		wk, err := k.store.GetKey(ctx, practiceID, kind, "", 0)
		if err == nil {
			if wk.State != StateActive {
				return haven.WrappedKey{}, haven.Errorf(haven.EINTERNAL, "newest %s key of practice %s is %s", kind, practiceID, wk.State)
			}
			return wk, nil
		}
		if haven.ErrorCode(err) != haven.ENOTFOUND {
			return haven.WrappedKey{}, storeErr(err, "cannot read key")
		}
		// A new key goes under the root the store names now, not the one
		// this node started with: a rotation may have moved it on.
		if _, err := k.sync(ctx); err != nil {
			return haven.WrappedKey{}, err
		}
		root, err := k.currentRoot()
		if err != nil {
			return haven.WrappedKey{}, err
		}
		raw, err := newKey()
		if err != nil {
			return haven.WrappedKey{}, err
		}
		wk = haven.WrappedKey{PracticeID: practiceID, ID: haven.NewID(), Kind: kind, Version: 1,
			WrappedBy: root.ID(), State: StateActive, CreatedAt: k.now().UTC()}
		wk.Wrapped, err = root.Wrap(ctx, raw, wrapAD(wk, wk.WrappedBy))
		if err == nil {
			// The raw key is cached only if this insert won; a loser
			// discards it and reads the winner's key on the next turn.
			err = k.store.CreateKey(ctx, wk)
			if err == nil {
				_, err = k.cache.put(cacheName("k", wk.ID), wk.ID, wk.Version, raw, 0)
				clear(raw)
				if err != nil {
					return haven.WrappedKey{}, err
				}
				return k.followRotation(ctx, wk)
			}
		}
		clear(raw)
		if haven.ErrorCode(err) != haven.ECONFLICT {
			return haven.WrappedKey{}, storeErr(err, "cannot store new key")
		}
	}
	return haven.WrappedKey{}, haven.Errorf(haven.EUNAVAILABLE, "could not settle the %s key of practice %s", kind, practiceID)
}

// followRotation moves a practice or index key this node has just created
// to the store's current root if a root rotation began meanwhile: the
// rotation may have listed the keys before this one was written, and must
// not leave it behind under the root being retired.
func (k *Keyring) followRotation(ctx context.Context, wk haven.WrappedKey) (haven.WrappedKey, error) {
	if _, err := k.sync(ctx); err != nil {
		return haven.WrappedKey{}, err
	}
	root, err := k.currentRoot()
	if err != nil {
		return haven.WrappedKey{}, err
	}
	if root.ID() == wk.WrappedBy {
		return wk, nil
	}
	if err := k.rewrapUnderRoot(ctx, wk, root); err != nil {
		return haven.WrappedKey{}, err
	}
	return k.store.GetKey(ctx, wk.PracticeID, wk.Kind, "", wk.Version)
}

// rootKeyEntry returns the unwrapped practice or index key wk.
func (k *Keyring) rootKeyEntry(ctx context.Context, wk haven.WrappedKey) (*cacheEntry, error) {
	name := cacheName("k", wk.ID)
	if e, _ := k.cache.get([]byte(name)); e != nil {
		return e, nil
	}
	raw, err := k.rootUnwrap(ctx, wk)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	return k.cache.put(name, wk.ID, wk.Version, raw, 0)
}

// practiceKeyByID returns the unwrapped practice key with the given ID.
func (k *Keyring) practiceKeyByID(ctx context.Context, practiceID, id string) (*cacheEntry, error) {
	var nb [64]byte
	if e, _ := k.cache.get(appendCacheName(nb[:0], "k", id)); e != nil {
		return e, nil
	}
	var found *haven.WrappedKey
	err := k.listAll(ctx, practiceID, KindPractice, "", func(wk haven.WrappedKey) error {
		if wk.ID == id {
			found = &wk
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if found == nil || found.State == StateDestroyed {
		return nil, haven.Errorf(haven.EINTERNAL, "practice key %s of practice %s is missing or destroyed", id, practiceID)
	}
	return k.rootKeyEntry(ctx, *found)
}

// dataKey returns the unwrapped data key of a patient (patientID "" for the
// practice's own records). version 0 means the newest, made if there is
// none and create is set; sealing uses that, opening names a version.
func (k *Keyring) dataKey(ctx context.Context, practiceID, patientID string, version int, create bool) (*cacheEntry, error) {
	// A key made for a record this request is creating (NewDataKey) is
	// in no store and no cache yet: nothing can have destroyed it.
	if e := k.newKeyFor(ctx, practiceID, patientID, version); e != nil {
		return e, nil
	}
	// The key state is read before the cache is: a key destroyed on any
	// node before this call (or the request it serves, see Checked) began
	// is not used, cached or not.
	v, err := k.syncFor(ctx)
	if err != nil {
		return nil, err
	}
	var nb [128]byte
	nameBytes := appendDataName(nb[:0], practiceID, patientID, version)
	if e, checked := k.cache.get(nameBytes); e != nil {
		if checked >= v {
			return e, nil
		}
		if err := k.checkLive(ctx, e, v); err != nil {
			return nil, err
		}
		return e, nil
	}
	name := string(nameBytes)
	for range 3 {
		wk, err := k.store.GetKey(ctx, practiceID, KindData, patientID, version)
		if haven.ErrorCode(err) == haven.ENOTFOUND && create && version == 0 {
			var raw []byte
			wk, raw, err = k.createDataKey(ctx, practiceID, patientID)
			if err == nil {
				defer clear(raw)
				return k.cache.putData(name, wk.ID, wk.Version, raw, v, practiceID, patientID)
			}
			if haven.ErrorCode(err) == haven.ECONFLICT {
				continue // another request made it first: read theirs
			}
			return nil, err
		}
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			return nil, haven.Errorf(haven.ENOTFOUND, "no data key version %d for this record", version)
		}
		if err != nil {
			return nil, storeErr(err, "cannot read data key")
		}
		if wk.State == StateDestroyed {
			return nil, haven.Wrap(haven.ENOTFOUND, ErrKeyDestroyed, "data key destroyed")
		}
		kek, err := k.practiceKeyByID(ctx, practiceID, wk.WrappedBy)
		if err != nil {
			return nil, err
		}
		raw, err := unwrapWith(kek.aead, wk.Wrapped, wrapAD(wk, wk.WrappedBy))
		if err != nil {
			return nil, haven.Wrap(haven.EINTERNAL, err, "practice key cannot unwrap data key "+wk.ID)
		}
		defer clear(raw)
		return k.cache.putData(name, wk.ID, wk.Version, raw, v, practiceID, patientID)
	}
	return nil, haven.Errorf(haven.EUNAVAILABLE, "could not settle a data key")
}

// createDataKey makes version 1 of a data key under the practice's newest
// practice key and stores it. It returns haven.ECONFLICT if one appeared
// meanwhile.
func (k *Keyring) createDataKey(ctx context.Context, practiceID, patientID string) (haven.WrappedKey, []byte, error) {
	wk, raw, err := k.wrapNewDataKey(ctx, practiceID, patientID)
	if err != nil {
		return haven.WrappedKey{}, nil, err
	}
	if err := k.store.CreateKey(ctx, wk); err != nil {
		clear(raw)
		return haven.WrappedKey{}, nil, storeErr(err, "cannot store data key")
	}
	return wk, raw, nil
}

// newDataKey marks a context that carries a data key made for a record
// not stored yet (NewDataKey).
type newDataKey struct{ k *Keyring }

// NewDataKey makes version 1 of the data key of a patient whose record is
// about to be created (a registration), wrapped under the practice's
// newest practice key, and does not store it: under the context it
// returns, Seal and Open for that practice's patient use it, and the
// caller stores the wrapped key in the transaction that creates the
// record. So a registration costs no commit of its own for its key and no
// lookup for a key that cannot exist yet, and one that fails leaves no key
// behind. The key is never cached: once stored, it is read as any other.
// Keep the context to the request, and store the key before anything
// sealed under it is.
func (k *Keyring) NewDataKey(ctx context.Context, practiceID, patientID string) (context.Context, haven.WrappedKey, error) {
	if patientID == "" {
		return ctx, haven.WrappedKey{}, haven.Errorf(haven.EINVALID, "a new data key is a patient's")
	}
	wk, raw, err := k.wrapNewDataKey(ctx, practiceID, patientID)
	if err != nil {
		return ctx, haven.WrappedKey{}, err
	}
	defer clear(raw)
	aead, err := newGCM(raw)
	if err != nil {
		return ctx, haven.WrappedKey{}, err
	}
	e := &cacheEntry{id: wk.ID, version: wk.Version, aead: aead, practiceID: practiceID, patientID: patientID}
	return context.WithValue(ctx, newDataKey{k}, e), wk, nil
}

// newKeyFor returns the key NewDataKey put in ctx if it is the one asked
// for: that practice's patient, the newest version or its own.
func (k *Keyring) newKeyFor(ctx context.Context, practiceID, patientID string, version int) *cacheEntry {
	e, ok := ctx.Value(newDataKey{k}).(*cacheEntry)
	if !ok || e.practiceID != practiceID || e.patientID != patientID || (version != 0 && version != e.version) {
		return nil
	}
	return e
}

// wrapNewDataKey makes version 1 of a data key and wraps it under the
// practice's newest practice key, storing nothing.
func (k *Keyring) wrapNewDataKey(ctx context.Context, practiceID, patientID string) (haven.WrappedKey, []byte, error) {
	pk, err := k.rootWrapped(ctx, practiceID, KindPractice)
	if err != nil {
		return haven.WrappedKey{}, nil, err
	}
	kek, err := k.rootKeyEntry(ctx, pk)
	if err != nil {
		return haven.WrappedKey{}, nil, err
	}
	raw, err := newKey()
	if err != nil {
		return haven.WrappedKey{}, nil, err
	}
	wk := haven.WrappedKey{PracticeID: practiceID, ID: haven.NewID(), Kind: KindData, PatientID: patientID,
		Version: 1, WrappedBy: pk.ID, State: StateActive, CreatedAt: k.now().UTC()}
	if wk.Wrapped, err = wrapWith(kek.aead, raw, wrapAD(wk, pk.ID)); err != nil {
		clear(raw)
		return haven.WrappedKey{}, nil, err
	}
	return wk, raw, nil
}

package keyring

import (
	"container/list"
	"crypto/cipher"
	"crypto/ed25519"
	"sync"
	"time"
)

// keyCache holds unwrapped keys so a field read does not cost two unwraps
// and a key lookup. It is bounded (least recently used entries go first)
// and entries expire after a TTL, which bounds how long key material sits
// in memory; it is not what makes a shred take effect (see [Keyring.sync]).
// Raw key bytes are zeroed whenever an entry leaves, and are only ever read
// under the cache's lock.
type keyCache struct {
	mu  sync.Mutex
	max int
	ttl time.Duration
	now func() time.Time
	m   map[string]*cacheEntry
	lru list.List // of *cacheEntry, most recent at the front
}

// cacheEntry is one unwrapped key. aead never changes once made, so it is
// safe to use outside the lock; raw and epoch are not.
type cacheEntry struct {
	name    string
	id      string
	version int
	aead    cipher.AEAD
	raw     []byte
	// signer is a practice's Ed25519 private key (sign.go); nil for every
	// other entry, which has raw and aead instead.
	signer  []byte
	expires time.Time
	elem    *list.Element

	// practiceID and patientID name a data key's owner, so the entry can
	// be checked against the store again; both are empty for practice and
	// index keys, which are never destroyed.
	practiceID, patientID string
	// epoch is the key-state version read before the key was loaded or
	// last checked: the entry is known to be live as of that version.
	epoch int64
}

func newKeyCache(max int, ttl time.Duration, now func() time.Time) *keyCache {
	return &keyCache{max: max, ttl: ttl, now: now, m: map[string]*cacheEntry{}}
}

// get returns the live entry for name and the key-state version it was
// last known live at.
func (c *keyCache) get(name []byte) (*cacheEntry, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[string(name)] // no allocation: the compiler looks up bytes directly
	if e == nil {
		return nil, 0
	}
	if !c.now().Before(e.expires) {
		c.removeLocked(e)
		return nil, 0
	}
	c.lru.MoveToFront(e.elem)
	return e, e.epoch
}

// put stores a new entry for name holding its own copy of raw, known live
// as of key-state version epoch.
func (c *keyCache) put(name, id string, version int, raw []byte, epoch int64) (*cacheEntry, error) {
	return c.putData(name, id, version, raw, epoch, "", "")
}

// putData is put for a data key of (practiceID, patientID).
func (c *keyCache) putData(name, id string, version int, raw []byte, epoch int64, practiceID, patientID string) (*cacheEntry, error) {
	aead, err := newGCM(raw)
	if err != nil {
		return nil, err
	}
	e := &cacheEntry{name: name, id: id, version: version, aead: aead, raw: append([]byte(nil), raw...),
		practiceID: practiceID, patientID: patientID, epoch: epoch}
	return c.insert(e), nil
}

// putSigner stores a practice's signing key under name, holding its own
// copy of priv.
func (c *keyCache) putSigner(name, id string, version int, priv []byte) *cacheEntry {
	return c.insert(&cacheEntry{name: name, id: id, version: version, signer: append([]byte(nil), priv...)})
}

// insert adds e under e.name, replacing an older entry of that name unless
// that one was checked later than e.
func (c *keyCache) insert(e *cacheEntry) *cacheEntry {
	name, epoch := e.name, e.epoch
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[name]; old != nil {
		if old.epoch > epoch {
			// A newer check of the same key won the race: keep it.
			return e
		}
		c.removeLocked(old)
	}
	e.expires = c.now().Add(c.ttl)
	e.elem = c.lru.PushFront(e)
	c.m[name] = e
	for c.lru.Len() > c.max {
		c.removeLocked(c.lru.Back().Value.(*cacheEntry))
	}
	return e
}

// checked records that e was found live as of key-state version epoch.
func (c *keyCache) checked(e *cacheEntry, epoch int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.epoch = max(e.epoch, epoch)
}

// remove drops and zeroes e if it is still cached.
func (c *keyCache) remove(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[e.name] == e {
		c.removeLocked(e)
	}
}

// copyRaw copies e's key into dst and reports whether e was still live.
func (c *keyCache) copyRaw(e *cacheEntry, dst *[keySize]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.raw == nil {
		return false
	}
	copy(dst[:], e.raw)
	return true
}

// copySigner copies e's signing key into dst and reports whether e was
// still live.
func (c *keyCache) copySigner(e *cacheEntry, dst *[ed25519.PrivateKeySize]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.signer == nil {
		return false
	}
	copy(dst[:], e.signer)
	return true
}

func (c *keyCache) removeLocked(e *cacheEntry) {
	clear(e.raw)
	e.raw = nil
	clear(e.signer)
	e.signer = nil
	c.lru.Remove(e.elem)
	delete(c.m, e.name)
}

// shred drops and zeroes every data key entry of one patient.
func (c *keyCache) shred(practiceID, patientID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.m {
		if e.practiceID != "" && e.practiceID == practiceID && e.patientID == patientID {
			c.removeLocked(e)
		}
	}
}

// purge drops and zeroes everything.
func (c *keyCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.m {
		c.removeLocked(e)
	}
}

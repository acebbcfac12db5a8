package keyring

import (
	"container/list"
	"crypto/cipher"
	"strings"
	"sync"
	"time"
)

// keyCache holds unwrapped keys so a field read does not cost a database
// round trip and two unwraps. It is bounded (least recently used entries go
// first) and entries expire, so a key destroyed by another node stops
// working here within the TTL. Raw key bytes are zeroed whenever an entry
// leaves, and are only ever read under the cache's lock.
type keyCache struct {
	mu  sync.Mutex
	max int
	ttl time.Duration
	now func() time.Time
	m   map[string]*cacheEntry
	lru list.List // of *cacheEntry, most recent at the front
	// shredded holds name prefixes of recently destroyed keys until when
	// they may not be cached again, so a load that raced the shred cannot
	// put the destroyed key back for a whole TTL.
	shredded map[string]time.Time
}

// cacheEntry is one unwrapped key. aead never changes once made, so it is
// safe to use outside the lock; raw is not.
type cacheEntry struct {
	name    string
	id      string
	version int
	aead    cipher.AEAD
	raw     []byte
	expires time.Time
	elem    *list.Element
}

func newKeyCache(max int, ttl time.Duration, now func() time.Time) *keyCache {
	return &keyCache{max: max, ttl: ttl, now: now, m: map[string]*cacheEntry{}, shredded: map[string]time.Time{}}
}

func (c *keyCache) get(name []byte) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[string(name)] // no allocation: the compiler looks up bytes directly
	if e == nil {
		return nil
	}
	if !c.now().Before(e.expires) {
		c.removeLocked(e)
		return nil
	}
	c.lru.MoveToFront(e.elem)
	return e
}

// put stores a new entry for name holding its own copy of raw.
func (c *keyCache) put(name, id string, version int, raw []byte) (*cacheEntry, error) {
	aead, err := newGCM(raw)
	if err != nil {
		return nil, err
	}
	e := &cacheEntry{name: name, id: id, version: version, aead: aead, raw: append([]byte(nil), raw...)}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for prefix, until := range c.shredded {
		if !now.Before(until) {
			delete(c.shredded, prefix)
		} else if strings.HasPrefix(name, prefix) {
			return e, nil // usable by the caller that loaded it, never cached
		}
	}
	if old := c.m[name]; old != nil {
		c.removeLocked(old)
	}
	e.expires = now.Add(c.ttl)
	e.elem = c.lru.PushFront(e)
	c.m[name] = e
	for c.lru.Len() > c.max {
		c.removeLocked(c.lru.Back().Value.(*cacheEntry))
	}
	return e, nil
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

func (c *keyCache) removeLocked(e *cacheEntry) {
	clear(e.raw)
	e.raw = nil
	c.lru.Remove(e.elem)
	delete(c.m, e.name)
}

// shred drops and zeroes every entry whose name starts with prefix, and
// keeps such names out of the cache for one TTL.
func (c *keyCache) shred(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shredded[prefix] = c.now().Add(c.ttl)
	for name, e := range c.m {
		if strings.HasPrefix(name, prefix) {
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

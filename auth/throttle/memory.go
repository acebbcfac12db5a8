package throttle

import (
	"container/list"
	"context"
	"strings"
	"sync"
)

// MemoryStore is a Store in one process's memory, bounded: each kind of
// key (address, account, pair) keeps at most MaxEntries records and evicts
// the least recently updated one beyond that. Kinds are bounded apart so a
// flood of new addresses cannot push accounts' counts out, and vice versa.
// An attacker who wants a count evicted must first make MaxEntries failed
// attempts of that kind, each costing a password hash, from addresses that
// are themselves throttled.
type MemoryStore struct {
	MaxEntries int // per kind; default 100,000 (a few MiB)

	mu    sync.Mutex
	kinds map[string]*lru
}

type lru struct {
	order *list.List               // front: most recently updated
	items map[string]*list.Element // value: *entry
}

type entry struct {
	key string
	rec Record
}

func (m *MemoryStore) kind(key string) *lru {
	k, _, _ := strings.Cut(key, ":")
	if m.kinds == nil {
		m.kinds = map[string]*lru{}
	}
	l := m.kinds[k]
	if l == nil {
		l = &lru{order: list.New(), items: map[string]*list.Element{}}
		m.kinds[k] = l
	}
	return l
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, key string) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.kind(key).items[key]; ok {
		return e.Value.(*entry).rec, nil
	}
	return Record{}, nil
}

// Update implements Store.
func (m *MemoryStore) Update(_ context.Context, key string, fn func(Record) Record) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.kind(key)
	var cur Record
	e, ok := l.items[key]
	if ok {
		cur = e.Value.(*entry).rec
	}
	next := fn(cur)
	switch {
	case next.Failures <= 0:
		if ok {
			l.order.Remove(e)
			delete(l.items, key)
		}
		return Record{}, nil
	case ok:
		e.Value.(*entry).rec = next
		l.order.MoveToFront(e)
	default:
		l.items[key] = l.order.PushFront(&entry{key: key, rec: next})
		max := m.MaxEntries
		if max <= 0 {
			max = 100_000
		}
		for l.order.Len() > max {
			old := l.order.Back()
			l.order.Remove(old)
			delete(l.items, old.Value.(*entry).key)
		}
	}
	return next, nil
}

// Len returns how many records the store holds, all kinds together.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, l := range m.kinds {
		n += l.order.Len()
	}
	return n
}

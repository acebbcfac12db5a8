package token

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"haven"
)

// Spent remembers which tokens have been used, until they expire. It is
// what makes a token single-use: a token copied after its owner joined (from
// browser history, a proxy log, a screenshot) is refused.
type Spent interface {
	// MarkSpent records tokenID as used until expiry. It returns an error
	// with code haven.ECONFLICT if tokenID was already spent, and must be
	// atomic: of two concurrent calls for one id, exactly one succeeds.
	MarkSpent(ctx context.Context, tokenID string, expiry time.Time) error
}

// Redeem verifies tok like [Verify] and then spends it. Only a token that
// passes every check is spent, so a stranger presenting someone's token at
// the wrong visit cannot burn it. A store failure refuses the join: a
// token that cannot be spent must not be usable.
func Redeem(ctx context.Context, key []byte, spent Spent, tok, visitID, participantID string, now time.Time) (Claims, error) {
	c, err := Verify(key, tok, visitID, participantID, now)
	if err != nil {
		return Claims{}, err
	}
	if err := spent.MarkSpent(ctx, c.TokenID, c.Expiry); err != nil {
		if haven.ErrorCode(err) == haven.ECONFLICT {
			return Claims{}, refused(ErrReused)
		}
		return Claims{}, haven.Wrap(haven.EUNAVAILABLE, err, "join tokens cannot be checked right now")
	}
	return c, nil
}

// DefaultMaxSpent bounds a MemorySpent made with max <= 0. Tokens live
// minutes, so this is room for thousands of joins a minute.
const DefaultMaxSpent = 100_000

// MemorySpent is a Spent in memory for one process. It holds at most max
// ids, dropping expired ones first; when it is full of unexpired ids it
// refuses new ones (haven.ETOOMANY) rather than forget an id that could
// then be replayed.
type MemorySpent struct {
	mu  sync.Mutex
	max int
	now func() time.Time
	ids map[string]time.Time
	exp expiryHeap
}

// NewMemorySpent returns an empty MemorySpent holding at most max ids;
// now is the clock (time.Now when nil).
func NewMemorySpent(max int, now func() time.Time) *MemorySpent {
	if max <= 0 {
		max = DefaultMaxSpent
	}
	if now == nil {
		now = time.Now
	}
	return &MemorySpent{max: max, now: now, ids: map[string]time.Time{}}
}

// MarkSpent implements Spent.
func (m *MemorySpent) MarkSpent(_ context.Context, tokenID string, expiry time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for len(m.exp) > 0 && !m.exp[0].expiry.After(now) {
		e := heap.Pop(&m.exp).(spentID)
		delete(m.ids, e.id)
	}
	if _, ok := m.ids[tokenID]; ok {
		return haven.Errorf(haven.ECONFLICT, "join token already used")
	}
	if !expiry.After(now) {
		// Already expired: Verify refuses it anyway, and remembering it
		// would only take room.
		return nil
	}
	if len(m.ids) >= m.max {
		return haven.Errorf(haven.ETOOMANY, "too many joins in progress; try again shortly")
	}
	m.ids[tokenID] = expiry
	heap.Push(&m.exp, spentID{id: tokenID, expiry: expiry})
	return nil
}

// Len returns how many ids are held (expired ones may linger until the
// next MarkSpent).
func (m *MemorySpent) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.ids)
}

type spentID struct {
	id     string
	expiry time.Time
}

type expiryHeap []spentID

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expiry.Before(h[j].expiry) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(spentID)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

package totp

import (
	"context"
	"sync"
)

// MemoryStepStore is a StepStore in memory, for tests and for a single
// process that needs no persistence.
type MemoryStepStore struct {
	mu    sync.Mutex
	steps map[string]int64
}

// AdvanceStep implements StepStore.
func (m *MemoryStepStore) AdvanceStep(_ context.Context, userID string, step int64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.steps == nil {
		m.steps = map[string]int64{}
	}
	if step <= m.steps[userID] {
		return false, nil
	}
	m.steps[userID] = step
	return true, nil
}

// LastStep returns the last step accepted for userID (0 if none).
func (m *MemoryStepStore) LastStep(userID string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.steps[userID]
}

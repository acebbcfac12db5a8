package recovery

import (
	"bytes"
	"context"
	"slices"
	"sync"
)

// MemoryStore is a Store in memory, for tests.
type MemoryStore struct {
	mu    sync.Mutex
	codes map[string][][]byte
}

// RecoveryCodes implements Store.
func (m *MemoryStore) RecoveryCodes(_ context.Context, userID string) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.codes[userID]), nil
}

// ConsumeRecoveryCode implements Store.
func (m *MemoryStore) ConsumeRecoveryCode(_ context.Context, userID string, hash []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, h := range m.codes[userID] {
		if bytes.Equal(h, hash) {
			m.codes[userID] = slices.Delete(slices.Clone(m.codes[userID]), i, i+1)
			return true, nil
		}
	}
	return false, nil
}

// ReplaceRecoveryCodes implements Store.
func (m *MemoryStore) ReplaceRecoveryCodes(_ context.Context, userID string, hashes [][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.codes == nil {
		m.codes = map[string][][]byte{}
	}
	m.codes[userID] = slices.Clone(hashes)
	return nil
}

package memlog_test

import (
	"time"

	"testing"

	"haven/audit"
	"haven/audit/audittest"
	"haven/audit/memlog"
)

func TestStore(t *testing.T) {
	audittest.TestStore(t, func(t *testing.T) audit.Store { return memlog.New() })
}

func TestTamperEvidence(t *testing.T) {
	audittest.TestTamperEvidence(t, func(t *testing.T) (audit.Store, audittest.Insider) {
		s := memlog.New()
		return s, s
	})
}

// A durable commit costs on the order of a millisecond (an fsync on a cloud
// volume); the memory store simulates it, so group commit can be compared
// with one commit per event in the same run.
const simulatedFsync = time.Millisecond

func BenchmarkAppend(b *testing.B) {
	b.Run("NoCommitCost", func(b *testing.B) {
		audittest.BenchmarkAppend(b, func(b *testing.B) audit.Store { return memlog.New() })
	})
	b.Run("SimulatedFsync", func(b *testing.B) {
		audittest.BenchmarkAppend(b, func(b *testing.B) audit.Store {
			s := memlog.New()
			s.SetCommitDelay(simulatedFsync)
			return s
		})
	})
}

func BenchmarkVerify(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	audittest.BenchmarkVerify(b, func(b *testing.B) audit.Store { return memlog.New() }, n)
}

package memlog_test

import (
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

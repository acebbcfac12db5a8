package service_test

import (
	"testing"

	"haven/internal/testkit"
	"haven/internal/testkit/stack"
	"haven/service"
)

// BenchmarkChartRead measures an audited chart read (decide, append the
// audit event with group commit, open) on SQLite against the same read
// without the audit append, in the same run: what auditing every read
// costs. Target: at least 0.5x the unaudited throughput.
//
//	go test -run '^$' -bench ChartRead ./service
func BenchmarkChartRead(b *testing.B) {
	s := stack.New(b, testkit.SQLite(b), stack.WallClock())
	p := s.Seed("bench", "b1")
	actx := s.As(p.Staff)
	patientID := p.ChartA.PatientID
	b.Run("audited", func(b *testing.B) {
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Service.Chart(actx, patientID); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("baseline", func(b *testing.B) {
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := service.ChartReadUnaudited(actx, s.Service, patientID); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

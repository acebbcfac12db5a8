package service_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"haven"
	"haven/demo"
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

// BenchmarkRxSignAndQueue measures signing a prescription (a fresh
// step-up each time: decide, audit, check the warnings, sign with the
// practice's Ed25519 key, lock it and queue it in the outbox in one
// transaction) on SQLite, and reports its p50 and p99. make bench reads
// the p99 against the p99 of the signed-in session row of the same run
// (GET /api/v1/session); its baseline here is an audited chart read by
// the same clinician, the cheapest request that passes the whole gate.
// Drafting and cancelling around each signature are not timed.
//
//	go test -run '^$' -bench RxSignAndQueue ./service
func BenchmarkRxSignAndQueue(b *testing.B) {
	s := stack.New(b, testkit.SQLite(b), stack.WallClock())
	p := s.Seed("benchrx", "b2")
	ctx := context.Background()
	if err := s.Service.SeedFormulary(ctx, p.ID, bytes.NewReader(demo.Formulary)); err != nil {
		b.Fatal(err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	ph := &haven.Vendor{Name: "Bench Pharmacy", Kind: haven.VendorPharmacy, Endpoint: "https://pharmacy.invalid/fhir", PHI: haven.PHIMinimum,
		BAASigned: today.AddDate(0, -1, 0), BAAExpires: today.AddDate(1, 0, 0)}
	if err := s.Service.AddVendor(s.As(p.Admin), ph); err != nil {
		b.Fatal(err)
	}
	patientID := p.ChartA.PatientID
	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		if len(lat) == 0 {
			return
		}
		b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
	}
	b.Run("sign", func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			d, err := s.Service.DraftPrescription(s.As(p.Clinician), service.NewPrescription{PatientID: patientID, RxNorm: "29046", Strength: "10 mg",
				Form: "tablet", Directions: "One tablet every morning", Quantity: 30, DaysSupply: 30, Refills: 1, PharmacyID: ph.ID})
			if err != nil {
				b.Fatal(err)
			}
			signer := s.As(p.Clinician) // a step-up no signature has consumed
			t0 := time.Now()
			if _, err := s.Service.SignPrescription(signer, d.ID, true); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
			if err := s.Service.CancelPrescription(s.As(p.Clinician), d.ID); err != nil {
				b.Fatal(err)
			}
		}
		report(b, lat)
	})
	b.Run("baseline", func(b *testing.B) {
		var lat []time.Duration
		actx := s.As(p.Clinician)
		for b.Loop() {
			t0 := time.Now()
			if _, err := s.Service.Chart(actx, patientID); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		report(b, lat)
	})
}

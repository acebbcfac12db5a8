package service

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/password"
	"haven/keyring"
	"haven/policy"
	"haven/store/sqlstore"
)

// BenchmarkChartRead measures an audited chart read (decide, append the
// audit event with group commit, open) on SQLite against the same read
// without the audit append, in the same run: what auditing every read
// costs. Target: at least 0.5x the unaudited throughput.
//
//	go test -run '^$' -bench ChartRead ./service
func BenchmarkChartRead(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := sqlstore.Open(ctx, filepath.Join(dir, "haven.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	root, err := keyring.OpenLocalRoot(filepath.Join(dir, "root.key"), nil, true)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := keyring.Open(ctx, keyring.Config{Store: db, Root: root})
	if err != nil {
		b.Fatal(err)
	}
	log := audit.NewLog(db, audit.Options{})
	defer log.Close()
	s := New(Config{DB: db, Keys: keys, Audit: log, Passwords: password.NewHasher(password.HasherConfig{Params: password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})})
	pr, _ := s.CreatePractice(ctx, "bench")
	staff, err := s.CreateUser(ctx, NewUser{PracticeID: pr.ID, Role: haven.RoleStaff, Email: "desk@bench.example", Name: "Desk", Password: "correct horse battery staple"})
	if err != nil {
		b.Fatal(err)
	}
	actx := haven.NewContextWithActor(ctx, haven.Actor{UserID: staff.ID, PracticeID: pr.ID, Role: haven.RoleStaff, MFA: true, AuthTime: time.Now(), SessionID: "bench"})
	c, err := s.RegisterPatient(actx, NewPatient{MRN: "B1", Demographics: Demographics{Name: "Bench Patient", DateOfBirth: "1970-01-01"}, Contact: Contact{Email: "p@bench.example"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("audited", func(b *testing.B) {
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Chart(actx, c.PatientID); err != nil {
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
				a, _ := haven.ActorFromContext(actx)
				row, err := s.db.FindPatient(actx, c.PatientID)
				if err != nil {
					b.Error(err)
					return
				}
				res := chartResource(policy.KindChart, row)
				f, err := s.loadFacts(actx, a, res)
				if err != nil || !policy.Decide(a, policy.ChartRead, res, f).Allow {
					b.Error("denied", err)
					return
				}
				if _, err := s.openChart(actx, row); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

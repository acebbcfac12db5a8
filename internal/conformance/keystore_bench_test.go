package conformance_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"haven/internal/testkit"
	"haven/keyring"
	"haven/keyring/memstore"
	"haven/store/sqlstore"
)

// BenchmarkOpenField measures opening a sealed field with its data key
// cached, over the SQL store (each use first reads the key-state row, so a
// key shredded anywhere is refused at once) against the same keyring over
// the in-memory store (the same code, the read nearly free), in the same
// run: the ratio is what being in force on every node at once costs per
// field. A service call that opens many fields reads the state once
// (keyring.Keyring.Checked), so this is the cost per call, not per field.
//
//	go test -run '^$' -bench OpenField ./internal/conformance
func BenchmarkOpenField(b *testing.B) {
	dbs := map[string]func(b *testing.B) string{"sqlite": func(b *testing.B) string { return filepath.Join(b.TempDir(), "haven.db") }}
	if os.Getenv("HAVEN_TEST_POSTGRES") != "" {
		dbs["postgres"] = func(b *testing.B) string { return testkit.Postgres(b) }
	}
	for name, dsn := range dbs {
		b.Run(name, func(b *testing.B) {
			b.Run("keyring", func(b *testing.B) {
				ctx := context.Background()
				db, err := sqlstore.Open(ctx, dsn(b))
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				if _, err := db.Migrate(ctx); err != nil {
					b.Fatal(err)
				}
				benchOpen(b, db)
			})
			b.Run("baseline", func(b *testing.B) { benchOpen(b, memstore.New()) })
		})
	}
}

func benchOpen(b *testing.B, store keyring.Store) {
	ctx := context.Background()
	root, err := keyring.OpenLocalRoot(filepath.Join(b.TempDir(), "root.key"), nil, true)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	k, err := keyring.Open(ctx, keyring.Config{Store: store, Root: root})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	ad := keyring.AD{PracticeID: "p1", PatientID: "alice", Kind: "note", RecordID: "r1", Field: "body"}
	sealed, err := k.Seal(ctx, ad, []byte("a typical sealed field of a chart"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open(ctx, ad, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

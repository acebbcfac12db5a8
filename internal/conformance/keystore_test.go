package conformance_test

import (
	"context"
	"os"
	"testing"

	"haven/internal/testkit"
	"haven/keyring"
	"haven/keyring/keyringtest"
	"haven/store/sqlstore"
)

// The SQL store satisfies keyring.Store structurally, without importing it.
var _ keyring.Store = (*sqlstore.DB)(nil)

func TestSQLStoreConformsToTheKeyStoreSuite(t *testing.T) {
	names := []string{"sqlite"}
	if !testkit.SQLiteOnly() && (os.Getenv("HAVEN_TEST_POSTGRES") != "" || testkit.InCI()) {
		names = append(names, "postgres")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			keyringtest.RunStoreSuite(t, func(t *testing.T) keyring.Store {
				dsn := testkit.SQLite(t)
				if name == "postgres" {
					dsn = testkit.Postgres(t)
				}
				db, err := sqlstore.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				if _, err := db.Migrate(context.Background()); err != nil {
					t.Fatal(err)
				}
				return db
			})
		})
	}
}

package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
	"haven/store/sqlstore"
)

// restrictedRole makes a PostgreSQL role that may connect to the database
// at dsn and read and write its tables, but not create anything in its
// schema (least privilege for the serving nodes), and returns the URL to
// connect as it. The database must be migrated already.
func restrictedRole(t *testing.T, dsn string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	role := "haven_app_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	u, _ := url.Parse(dsn)
	dbName := strings.TrimPrefix(u.Path, "/")
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
		`GRANT CONNECT ON DATABASE ` + dbName + ` TO ` + role,
		`GRANT USAGE ON SCHEMA public TO ` + role,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ` + role,
		`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ` + role,
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Cleanups run last-registered first, so this runs before the
	// database is dropped: the role's grants go, then the role.
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec(`DROP OWNED BY ` + role)
		db.Exec(`DROP ROLE ` + role)
	})
	var canCreate bool
	if err := admin.QueryRow(`SELECT has_schema_privilege($1, 'public', 'CREATE')`, role).Scan(&canCreate); err != nil || canCreate {
		t.Fatalf("the role may create in the schema (%v): the test would prove nothing", err)
	}
	u.User = url.User(role)
	return u.String()
}

// On PostgreSQL, a serving role without CREATE on the schema opens and
// "migrates" a current schema: nothing is created, nothing is refused.
func TestMigrateAsARoleWithoutCreateSucceedsOnACurrentSchema(t *testing.T) {
	ctx := context.Background()
	dsn := testkit.Postgres(t)
	mustOpen(t, dsn) // migrated as the owner
	app, err := sqlstore.Open(ctx, restrictedRole(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	applied, err := app.Migrate(ctx)
	if err != nil || len(applied) != 0 {
		t.Fatalf("migrate as a role without CREATE: applied %v, %v", applied, err)
	}
	if err := app.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	// It serves: a key-state change is an ordinary write.
	if err := app.SetRoot(ctx, "", "local:test"); err != nil {
		t.Fatal(err)
	}
	// With a migration pending, the same role is told plainly.
	if _, err := app.SQL().ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Migrate(ctx); err == nil || haven.ErrorCode(err) == "" {
		t.Fatalf("a pending migration as a role without CREATE: %v", err)
	}
}

package main_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"syscall"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"haven/internal/testkit"
)

// A serving role on PostgreSQL often may read and write the tables but not
// create in the schema (the owner runs migrations): with the schema
// current, `haven migrate` and `haven serve` as that role succeed.
func TestServeAsAPostgresRoleWithoutCreateOnACurrentSchema(t *testing.T) {
	owner := testkit.Postgres(t)
	dataDir := t.TempDir()
	if code, out, errOut := runHaven(t, nil, "migrate", "--data-dir", dataDir, "--db", owner); code != 0 {
		t.Fatalf("migrate as the owner: %d\n%s%s", code, out, errOut)
	}
	var b [6]byte
	rand.Read(b[:])
	role := "haven_serve_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", owner)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, _ := url.Parse(owner)
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
		`GRANT CONNECT ON DATABASE ` + strings.TrimPrefix(u.Path, "/") + ` TO ` + role,
		`GRANT USAGE ON SCHEMA public TO ` + role,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ` + role,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", owner)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec(`DROP OWNED BY ` + role)
		db.Exec(`DROP ROLE ` + role)
	})
	u.User = url.User(role)
	app := u.String()
	code, out, errOut := runHaven(t, nil, "migrate", "--data-dir", dataDir, "--db", app)
	if code != 0 || !strings.Contains(out, "applied 0 migration") {
		t.Fatalf("migrate as a role without CREATE: %d\n%s%s", code, out, errOut)
	}
	s := startServe(t, dataDir, "--db", app, "--demo")
	resp, err := insecureClient.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("readyz: %d", resp.StatusCode)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-s.done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

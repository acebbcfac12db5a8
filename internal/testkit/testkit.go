// Package testkit gives tests real parts: a fresh PostgreSQL database per
// test when HAVEN_TEST_POSTGRES names a server, and temporary SQLite files.
// In CI (CI=true) a missing PostgreSQL is a failure, never a silent skip, so
// a green run always means both databases were exercised.
package testkit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// InCI reports whether the tests run under CI.
func InCI() bool { return os.Getenv("CI") == "true" }

// SQLiteOnly reports whether this run was asked, by HAVEN_TEST_SQLITE_ONLY=1,
// to leave PostgreSQL out even in CI: make test-fips does, because it
// exercises Haven's cryptography under the FIPS 140-3 module, which is the
// same on either database, and make test covers PostgreSQL in the same CI.
func SQLiteOnly() bool { return os.Getenv("HAVEN_TEST_SQLITE_ONLY") == "1" }

// Postgres creates an empty database on the server named by
// HAVEN_TEST_POSTGRES (for example postgres://postgres@127.0.0.1:5432/postgres),
// drops it when the test ends, and returns its URL. Outside CI, with no server
// named, the test is skipped; in CI it fails.
func Postgres(tb testing.TB) string {
	tb.Helper()
	if SQLiteOnly() {
		tb.Skip("HAVEN_TEST_SQLITE_ONLY=1 (make test-fips): PostgreSQL is covered by make test")
	}
	base := os.Getenv("HAVEN_TEST_POSTGRES")
	if base == "" {
		if InCI() {
			tb.Fatal("HAVEN_TEST_POSTGRES is not set: CI must run the PostgreSQL tests")
		}
		tb.Skip("HAVEN_TEST_POSTGRES not set; PostgreSQL tests skipped outside CI")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatalf("HAVEN_TEST_POSTGRES: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b [6]byte
	rand.Read(b[:])
	name := "haven_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		tb.Fatalf("PostgreSQL at HAVEN_TEST_POSTGRES is not usable: %v", err)
	}
	tb.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("HAVEN_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// SQLite returns the path of a fresh SQLite database file in a temp dir.
func SQLite(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "haven.db")
}

// Databases returns the DSNs every storage test runs against, keyed by
// dialect name: SQLite always, PostgreSQL when available (required in CI).
func Databases(tb testing.TB) map[string]string {
	tb.Helper()
	dbs := map[string]string{"sqlite": SQLite(tb)}
	if !SQLiteOnly() && (os.Getenv("HAVEN_TEST_POSTGRES") != "" || InCI()) {
		dbs["postgres"] = Postgres(tb)
	}
	return dbs
}

// FindTool returns the path of an installed program, looking in PATH and
// in GOBIN / GOPATH/bin, where `go install` (and .ci/run) puts it; "" when
// it is nowhere.
func FindTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"path/filepath"
	"testing"

	"haven/internal/testkit"
)

func TestRefusesToListenOffLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "10.0.0.1:0", "[::]:0"} {
		if err := run(addr, "", ""); err == nil {
			t.Errorf("run(%q) listened; want refusal", addr)
		}
	}
}

func TestCertificateIsECDSAP256LikeHavens(t *testing.T) {
	c, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("certificate key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
}

// appendConcurrently appends 16 rows at once through g and returns how
// many rows the table holds afterwards, read on a fresh query.
func appendConcurrently(t *testing.T, g *groupCommit) int {
	t.Helper()
	errs := make(chan error, 16)
	for range 16 {
		go func() { errs <- g.append(t.Context()) }()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := g.db.QueryRowContext(t.Context(), `SELECT count(*) FROM floor`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDurableAppendOnSQLiteStoresEveryRow(t *testing.T) {
	g, err := openSQLite(t.Context(), filepath.Join(t.TempDir(), "floor.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.db.Close()
	var mode string
	var sync int
	g.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	g.db.QueryRow(`PRAGMA synchronous`).Scan(&sync)
	if mode != "wal" || sync != 2 {
		t.Fatalf("journal_mode %q synchronous %d, want wal and 2 (FULL)", mode, sync)
	}
	if n := appendConcurrently(t, g); n != 16 {
		t.Fatalf("%d rows after 16 appends", n)
	}
}

func TestDurableAppendOnPostgreSQLStoresEveryRow(t *testing.T) {
	g, err := openPostgres(t.Context(), testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer g.db.Close()
	if n := appendConcurrently(t, g); n != 16 {
		t.Fatalf("%d rows after 16 appends", n)
	}
}

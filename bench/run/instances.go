package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL rows create their database
)

// localPostgres is the server the PostgreSQL rows use when
// HAVEN_TEST_POSTGRES names none: the project's machines run one here.
const localPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// An instance is one haven server the load rows run against: the default
// SQLite one, and one on PostgreSQL when a server is at hand.
type instance struct {
	key      string // what loadSuite.Server names
	postgres bool
	// grown, when set, is what bench/seed adds to the database before
	// the instance serves (it is started once with --demo, stopped,
	// seeded and started again): the growth rows compare the same read
	// at two sizes.
	grown *size
	// nodes, when more than one, is how many haven serve share the
	// database behind HAProxy (cluster.go): the row then measures the
	// balancer's address.
	nodes int
}

// size is how many patients and audit events bench/seed adds.
type size struct{ patients, events int }

// The growth rows' two sizes: a new clinic's log against a busy one's.
var (
	smallSize = size{patients: 0, events: 1_000}
	largeSize = size{patients: 100_000, events: 1_000_000}
)

func instances(cfg config) []instance {
	return []instance{
		{key: "sqlite"}, {key: "postgres", postgres: true}, {key: "postgres-3nodes", postgres: true, nodes: 3},
		{key: "sqlite-1k", grown: &smallSize}, {key: "sqlite-1m", grown: &largeSize},
		{key: "postgres-1k", postgres: true, grown: &smallSize}, {key: "postgres-1m", postgres: true, grown: &largeSize},
	}
}

// needed reports whether a row that is measured runs on in, and whether in
// can run here at all.
func (in instance) needed(cfg config) bool {
	if in.postgres && cfg.postgres == "" || in.nodes > 1 && haproxyPath() == "" {
		return false
	}
	for _, s := range loadSuites {
		if cmp.Or(s.Server, "sqlite") == in.key && (cfg.only == nil || cfg.only.MatchString(s.Name)) {
			return true
		}
	}
	return false
}

// start starts in, on a database of its own.
func (in instance) start(ctx context.Context, cfg config, bins map[string]string, tmp string) (*server, error) {
	db, drop := "", func() {}
	if in.postgres {
		u, d, err := createDatabase(ctx, cfg.postgres)
		if err != nil {
			return nil, err
		}
		db, drop = u, d
	}
	if in.nodes > 1 {
		s, err := startCluster(ctx, cfg, bins["haven"], tmp, in.key, db, in.nodes)
		if err != nil {
			drop()
			return nil, err
		}
		s.cleanup = func() { s.stopNodes(); drop() }
		return s, nil
	}
	s, err := startHaven(ctx, bins["haven"], tmp, in.key, db, cfg.startTimeout)
	if err == nil && in.grown != nil {
		s, err = in.grow(ctx, cfg, s, bins, tmp, db)
	}
	if err != nil {
		drop()
		return nil, err
	}
	s.cleanup = drop
	return s, nil
}

// grow stops s, adds in.grown to its database with bench/seed, and starts
// it again on the same data directory and database.
func (in instance) grow(ctx context.Context, cfg config, s *server, bins map[string]string, tmp, db string) (*server, error) {
	s.stop()
	args := []string{"-data-dir", filepath.Join(tmp, in.key), "-patients", strconv.Itoa(in.grown.patients), "-events", strconv.Itoa(in.grown.events)}
	if db != "" {
		args = append(args, "-db", db)
	}
	logf("seeding %s: %d patients, %d audit events", in.key, in.grown.patients, in.grown.events)
	cmd := exec.CommandContext(ctx, bins["seed"], args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("seeding %s: %w", in.key, err)
	}
	return startHaven(ctx, bins["haven"], tmp, in.key, db, cfg.startTimeout)
}

// skipReason says why no instance named key runs.
func skipReason(cfg config, key string) string {
	if strings.HasPrefix(key, "postgres") && cfg.postgres == "" {
		return "no PostgreSQL (set HAVEN_TEST_POSTGRES or -postgres)"
	}
	if strings.HasSuffix(key, "nodes") && haproxyPath() == "" {
		return "no haproxy installed"
	}
	return "no instance " + key
}

// postgresServer returns the PostgreSQL server the PostgreSQL rows use:
// flag, else HAVEN_TEST_POSTGRES, else the local server if it answers; ""
// for none.
func postgresServer(ctx context.Context, flagValue string) string {
	switch {
	case flagValue == "off":
		return ""
	case flagValue != "":
		return flagValue
	case os.Getenv("HAVEN_TEST_POSTGRES") != "":
		return os.Getenv("HAVEN_TEST_POSTGRES")
	}
	db, err := sql.Open("pgx", localPostgres)
	if err != nil {
		return ""
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if db.PingContext(ctx) != nil {
		logf("no PostgreSQL answers at 127.0.0.1:5432: the PostgreSQL rows are skipped")
		return ""
	}
	return localPostgres
}

// createDatabase makes an empty database on the server and returns its
// URL and a function that drops it.
func createDatabase(ctx context.Context, server string) (string, func(), error) {
	admin, err := sql.Open("pgx", server)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	defer admin.Close()
	var b [6]byte
	rand.Read(b[:])
	name := "haven_bench_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		return "", nil, fmt.Errorf("PostgreSQL: creating a database: %w", err)
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		a, err := sql.Open("pgx", server)
		if err != nil {
			return
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := a.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			logf("dropping database %s: %v", name, err)
		}
	}
	return u.String(), drop, nil
}

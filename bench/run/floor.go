package main

import (
	"context"
	"path/filepath"
	"strings"
)

// A floor is a durable baseline: bench/baseline answering GET /durable
// only after a group-committed append of a small row to a database (see
// bench/baseline/durable.go). Every audited read waits for its audit
// event's commit to be durable, so on a disk whose fsync takes
// milliseconds these rows, not the bare TLS row, are the fastest an
// audited read could be on this machine; the audited rows are divided by
// the floor of their database too.
type floor struct {
	db     string // "sqlite" or "postgres", as database() names them
	name   string // the row's name
	server *server
}

// floorNames are the rows' names; -only selects them by these.
var floorNames = map[string]string{
	"sqlite":   "baseline (SQLite): bare Go TLS 1.3 + a durable group-committed append, GET /durable",
	"postgres": "baseline (PostgreSQL): bare Go TLS 1.3 + a durable group-committed append, GET /durable",
}

// startFloors starts the floors -only selects: SQLite on a file under
// tmp, and PostgreSQL on a database of its own when a server is at hand.
func startFloors(ctx context.Context, cfg config, bin, tmp string) ([]floor, error) {
	var floors []floor
	for _, db := range []string{"sqlite", "postgres"} {
		name := floorNames[db]
		if cfg.only != nil && !cfg.only.MatchString(name) || db == "postgres" && cfg.postgres == "" {
			continue
		}
		flag, drop := []string{"-sqlite", filepath.Join(tmp, "floor.db")}, func() {}
		if db == "postgres" {
			u, d, err := createDatabase(ctx, cfg.postgres)
			if err != nil {
				stopFloors(floors)
				return nil, err
			}
			flag, drop = []string{"-postgres", u}, d
		}
		s, err := startBaseline(ctx, bin, tmp, "floor-"+db, flag...)
		if err != nil {
			drop()
			stopFloors(floors)
			return nil, err
		}
		s.cleanup = drop
		floors = append(floors, floor{db: db, name: name, server: s})
	}
	return floors, nil
}

func stopFloors(floors []floor) {
	for _, f := range floors {
		f.server.stop()
	}
}

// database names the database an instance (instances.go) runs on.
func database(instance string) string {
	if strings.HasPrefix(instance, "postgres") {
		return "postgres"
	}
	return "sqlite"
}

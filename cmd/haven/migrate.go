package main

import (
	"context"
	"fmt"

	"haven/store/sqlstore"
)

func runMigrate(ctx context.Context, env *Env, args []string) error {
	var cfg Config
	fs := newFlagSet(env, "migrate", "Applies pending database migrations. Safe to run on a live deployment:\nmigrations are versioned and a newer schema than this binary knows is refused.")
	if err := cfg.register(fs, false); err != nil {
		return err
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(false); err != nil {
		return err
	}
	db, err := sqlstore.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	cur, _, _ := db.SchemaVersion(ctx)
	fmt.Fprintf(env.Stdout, "applied %d migration(s); schema version %d (%s)\n", len(applied), cur, db.Dialect())
	return nil
}

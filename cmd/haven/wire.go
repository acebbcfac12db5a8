package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"haven/keyring"
	"haven/service"
	"haven/store/sqlstore"
)

// stack is Haven wired together for one process: the database, the
// keyring and the service layer over them.
type stack struct {
	db   *sqlstore.DB
	keys *keyring.Keyring
	svc  *service.Service
	root *keyring.LocalRoot
}

func (s *stack) Close() {
	if s.keys != nil {
		s.keys.Close()
	}
	if s.root != nil {
		s.root.Close()
	}
	if s.db != nil {
		s.db.Close()
	}
}

// openStack opens the database (migrating it), the root key and the
// keyring. A root key file is created only when the database holds no keys
// yet: if keys exist and the file is missing or wrong, Haven refuses to
// start rather than make a new root that would orphan every practice key.
func openStack(ctx context.Context, env *Env, cfg *Config) (*stack, error) {
	st := &stack{}
	var err error
	if st.db, err = sqlstore.Open(ctx, cfg.DB); err != nil {
		return nil, err
	}
	if _, err := st.db.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	existing, err := st.db.ListKeys(ctx, "", "", "", "", 1)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("cannot read the key table: %v", err)
	}
	create := len(existing) == 0
	if create {
		if err := os.MkdirAll(filepath.Dir(cfg.RootKey), 0o700); err != nil {
			st.Close()
			return nil, fmt.Errorf("--root-key: %v", errShort(err))
		}
	}
	if st.root, err = keyring.OpenLocalRoot(cfg.RootKey, []byte(cfg.RootPassphrase), create); err != nil {
		st.Close()
		return nil, fmt.Errorf("--root-key: %s", oneLine(err))
	}
	if st.root.Created() {
		fmt.Fprintf(env.Stdout, "\n*** Created a new root key at %s ***\n"+
			"*** Every record in this database can only be read with it: back it up now, apart from the database. ***\n\n", cfg.RootKey)
		env.Logger.Warn("created a new root key", "path", cfg.RootKey, "root_id", st.root.ID())
	}
	if st.keys, err = keyring.Open(ctx, keyring.Config{Store: st.db, Root: st.root}); err != nil {
		st.Close()
		return nil, fmt.Errorf("root key %s does not open this database's keys: %s", cfg.RootKey, oneLine(err))
	}
	st.svc = service.New(service.Config{DB: st.db, Keys: st.keys})
	return st, nil
}

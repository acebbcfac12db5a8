package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"haven/audit"
	"haven/blob"
	"haven/blob/dir"
	"haven/blob/s3"

	"haven/keyring"
	"haven/service"
	"haven/store/sqlstore"
)

// stack is Haven wired together for one process: the database, the
// keyring and the service layer over them.
type stack struct {
	db       *sqlstore.DB
	keys     *keyring.Keyring
	svc      *service.Service
	root     keyring.Root
	nextRoot *keyring.LocalRoot // during a root rotation
	audit    *audit.Log
	verifier string // the audit checkpoint verifier key
	witness  audit.Witness
	blobs    blob.Store
}

func (s *stack) Close() {
	if s.svc != nil {
		s.svc.Wait() // reports still appending to the audit log
	}
	if s.audit != nil {
		s.audit.Close()
	}
	if c, ok := s.blobs.(io.Closer); ok {
		c.Close()
	}
	if s.keys != nil {
		s.keys.Close()
	}
	if c, ok := s.root.(io.Closer); ok {
		c.Close()
	}
	if s.nextRoot != nil {
		s.nextRoot.Close()
	}
	if s.db != nil {
		s.db.Close()
	}
}

// openStack opens the database (migrating it), the root key and the
// keyring. A root key file is created only when the database holds no keys
// yet: if keys exist and the file is missing or wrong, Haven refuses to
// start rather than make a new root that would orphan every practice key.
//
// A root rotation in progress leaves <root-key>.new beside the root key; it
// is loaded as a further root so keys it already re-wrapped still open.
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
	if cfg.KMS != "" {
		kms, err := keyring.OpenKMSRoot(ctx, cfg.KMS)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("--kms: %s", oneLine(err))
		}
		st.root = kms
	} else {
		create := len(existing) == 0
		if create {
			if err := os.MkdirAll(filepath.Dir(cfg.RootKey), 0o700); err != nil {
				st.Close()
				return nil, fmt.Errorf("--root-key: %v", errShort(err))
			}
		}
		local, err := keyring.OpenLocalRoot(cfg.RootKey, []byte(cfg.RootPassphrase), create)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("--root-key: %s", oneLine(err))
		}
		st.root = local
		if local.Created() {
			fmt.Fprintf(env.Stdout, "\n*** Created a new root key at %s ***\n"+
				"*** Every record in this database can only be read with it: back it up now, apart from the database. ***\n\n", cfg.RootKey)
			env.Logger.Warn("created a new root key", "path", cfg.RootKey, "root_id", local.ID())
		}
	}
	kc := keyring.Config{Store: st.db, Root: st.root, FindRoot: rootFinder(env, cfg)}
	if _, err := os.Stat(cfg.RootKey + ".new"); err == nil {
		next, err := keyring.OpenLocalRoot(cfg.RootKey+".new", []byte(cfg.RootPassphrase), false)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("--root-key: the root being rotated to: %s", oneLine(err))
		}
		st.nextRoot = next
		kc.OldRoots = []keyring.Root{next}
	}
	if st.keys, err = keyring.Open(ctx, kc); err != nil {
		st.Close()
		return nil, fmt.Errorf("root key %s does not open this database's keys: %s", cfg.RootKey, oneLine(err))
	}
	signer, err := openAuditSigner(env, cfg.AuditKey)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("--audit-key: %s", oneLine(err))
	}
	st.verifier = signer.VerifierKey()
	if strings.HasPrefix(cfg.AuditWitness, "https://") {
		st.witness = audit.HTTPWitness{URL: cfg.AuditWitness}
	} else {
		if err := os.MkdirAll(cfg.AuditWitness, 0o700); err != nil {
			st.Close()
			return nil, fmt.Errorf("--audit-witness: %v", errShort(err))
		}
		st.witness = audit.DirWitness{Dir: cfg.AuditWitness}
	}
	st.audit = audit.NewLog(st.db, audit.Options{Signer: signer, Witnesses: []audit.Witness{st.witness}})
	if st.blobs, err = openBlobStore(ctx, cfg); err != nil {
		st.Close()
		return nil, fmt.Errorf("--blob-store: %s", oneLine(err))
	}
	st.svc = service.New(service.Config{DB: st.db, Keys: st.keys, Audit: st.audit, Blobs: st.blobs, VideoKey: cfg.videoKey})
	return st, nil
}

// rootFinder finds a root this process has not loaded when the key store
// names it: the root `haven keys rotate --root` moved to while this process
// was running, here or on another node. It looks in <root-key>.new (where a
// rotation prepares the new root, and where an operator copies it on other
// nodes) and then <root-key> (where the rotation leaves it when done), in
// that order, so a rotation renaming the files meanwhile cannot hide it.
func rootFinder(env *Env, cfg *Config) func(context.Context, string) (keyring.Root, error) {
	return func(ctx context.Context, id string) (keyring.Root, error) {
		for _, path := range []string{cfg.RootKey + ".new", cfg.RootKey} {
			r, err := keyring.OpenLocalRoot(path, []byte(cfg.RootPassphrase), false)
			if err != nil {
				continue
			}
			if r.ID() == id {
				env.Logger.Warn("loaded the root key the key store moved to", "root_id", id, "path", path)
				return r, nil
			}
			r.Close()
		}
		return nil, fmt.Errorf("no root key file at %s.new or %s holds root %s", cfg.RootKey, cfg.RootKey, id)
	}
}

// openBlobStore opens the directory or S3 bucket for encrypted files.
func openBlobStore(ctx context.Context, cfg *Config) (blob.Store, error) {
	if bucket, ok := strings.CutPrefix(cfg.BlobStore, "s3://"); ok {
		bucket, prefix, _ := strings.Cut(bucket, "/")
		if prefix != "" && !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		return s3.New(ctx, s3.Config{Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, Bucket: bucket, Prefix: prefix,
			AccessKeyID: cfg.S3AccessKey, SecretAccessKey: cfg.S3SecretKey})
	}
	if err := os.MkdirAll(cfg.BlobStore, 0o700); err != nil {
		return nil, errShort(err)
	}
	return dir.Open(cfg.BlobStore)
}

// openAuditSigner loads the checkpoint signing key, creating it (and its
// public verifier key beside it, for auditors and witnesses) on first use.
func openAuditSigner(env *Env, path string) (*audit.Signer, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, errShort(err)
		}
		priv, vkey, err := audit.GenerateKey("haven-audit")
		if err != nil {
			return nil, err
		}
		if err := audit.WriteKeyFile(path, priv); err != nil {
			return nil, err
		}
		pub := strings.TrimSuffix(path, filepath.Ext(path)) + ".pub"
		if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o644); err != nil {
			return nil, errShort(err)
		}
		env.Logger.Warn("created a new audit signing key", "path", path, "verifier_key", vkey)
		fmt.Fprintf(env.Stdout, "created an audit checkpoint signing key at %s; give auditors its verifier key: %s\n", path, vkey)
	}
	return audit.LoadSigner(path)
}

// checkpointAll signs and publishes a checkpoint of every log that grew.
func (s *stack) checkpointAll(ctx context.Context) (int, error) {
	logs, err := s.db.Logs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range logs {
		if _, err := s.audit.Checkpoint(ctx, id); err != nil {
			return n, fmt.Errorf("checkpoint of log %s: %s", id, oneLine(err))
		}
		n++
	}
	return n, nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"haven/audit"
	"haven/backup"
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
	db        *sqlstore.DB
	keys      *keyring.Keyring
	svc       *service.Service
	root      keyring.Root
	nextRoot  *keyring.LocalRoot // during a root rotation
	audit     *audit.Log
	verifier  string // the audit checkpoint verifier key
	signer    *audit.Signer
	trust     *audit.Trust
	witnesses []audit.Witness
	blobs     blob.Store
	rawBlobs  blob.Store // blobs without its gate, to close

	// The vendor registry's gates of the object store and the KMS, asked
	// before each of their operations once serve has found them in the
	// registry (recognizeVendors); before that, only the start-up of this
	// process uses them.
	blobGate, kmsGate lateGate

	reerased int // patients the erasure ledger had shredded again at open
}

// lateGate is an egress gate set once the registry has been read: until
// then it allows (the process is starting, serving no one).
type lateGate struct {
	allow atomic.Pointer[func(context.Context) error]
}

func (g *lateGate) Allow(ctx context.Context) error {
	if f := g.allow.Load(); f != nil {
		return (*f)(ctx)
	}
	return nil
}

func (g *lateGate) set(f func(context.Context) error) { g.allow.Store(&f) }

func (s *stack) Close() {
	if s.svc != nil {
		s.svc.Wait() // reports still appending to the audit log
	}
	if s.audit != nil {
		s.audit.Close()
	}
	if c, ok := s.rawBlobs.(io.Closer); ok {
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
	if cfg.KMS != "" {
		kc.Root = keyring.GatedRoot(st.root, st.kmsGate.Allow)
	}
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
		if cfg.KMS != "" {
			// Usually the KMS is unreachable; the error names it and why.
			return nil, fmt.Errorf("--kms: the KMS root cannot open this database's keys (nothing was written): %s", oneLine(err))
		}
		return nil, fmt.Errorf("root key %s does not open this database's keys: %s", cfg.RootKey, oneLine(err))
	}
	if err := st.openAudit(ctx, env, cfg); err != nil {
		st.Close()
		return nil, err
	}
	if err := st.checkAuditLogs(ctx, env, cfg); err != nil {
		st.Close()
		return nil, err
	}
	if st.rawBlobs, err = openBlobStore(ctx, cfg); err != nil {
		st.Close()
		return nil, fmt.Errorf("--blob-store: %s", oneLine(err))
	}
	st.blobs = st.rawBlobs
	if strings.HasPrefix(cfg.BlobStore, "s3://") {
		st.blobs = blob.Gated(st.rawBlobs, st.blobGate.Allow)
	}
	ledger := backup.OpenLedger(cfg.ErasureLedger)
	st.svc = service.New(service.Config{DB: st.db, Keys: st.keys, Audit: st.audit, Blobs: st.blobs, VideoKey: cfg.videoKey, Processor: cfg.processor, Erasures: ledger,
		WitnessesOnDataDisk: cfg.sameDiskWarning() != ""})
	if err := st.reapplyErasures(ctx, env, ledger); err != nil {
		st.Close()
		return nil, err
	}
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

// openAudit loads the audit keys and witnesses and opens the audit log
// over the database. Nothing is checked or appended yet (checkAuditLogs).
func (s *stack) openAudit(ctx context.Context, env *Env, cfg *Config) error {
	var err error
	if s.signer, s.trust, err = loadAuditKeys(ctx, env, cfg, s.db); err != nil {
		return err
	}
	s.verifier = s.signer.VerifierKey()
	if s.witnesses, err = cfg.witnesses(true); err != nil {
		return err
	}
	s.audit = audit.NewLog(s.db, audit.Options{Signer: s.signer, Trust: s.trust, Witnesses: s.witnesses})
	return nil
}

// openAuditStack opens only what the audit commands need: the database
// (migrated), the audit keys and witnesses, and checks every log. No root
// key is read and no PHI can be opened.
func openAuditStack(ctx context.Context, env *Env, cfg *Config) (*stack, error) {
	st := &stack{}
	var err error
	if st.db, err = sqlstore.Open(ctx, cfg.DB); err != nil {
		return nil, err
	}
	if _, err := st.db.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	if err := st.openAudit(ctx, env, cfg); err != nil {
		st.Close()
		return nil, err
	}
	if err := st.checkAuditLogs(ctx, env, cfg); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
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

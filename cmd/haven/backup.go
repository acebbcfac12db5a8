package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"haven"
	"haven/audit"
	"haven/backup"
	"haven/blob"
	"haven/service"
	"haven/store/sqlstore"
)

func init() {
	commands["backup"] = command{"make, verify, restore and drill encrypted, signed backups", runBackup}
}

func runBackup(ctx context.Context, env *Env, args []string) error {
	sub := map[string]func(context.Context, *Env, []string) error{
		"keygen": runBackupKeygen, "create": runBackupCreate, "verify": runBackupVerify, "restore": runBackupRestore, "drill": runBackupDrill,
	}
	if len(args) == 0 || sub[args[0]] == nil {
		fmt.Fprintln(env.Stderr, "Usage: haven backup keygen|create|verify|restore|drill [flags]\n\n"+
			"  keygen   make the backup keys: an age identity (--identity FILE, keep it offline) and its\n"+
			"           recipient, and the manifest signing key beside the root key\n"+
			"  create   write a backup of the database, the blobs and the key table to --out, encrypted to\n"+
			"           the backup recipient, with a signed manifest\n"+
			"  verify   decrypt a backup with the identity and check every part against the signed manifest\n"+
			"  restore  restore a verified backup into an empty --data-dir / --db, then shred again every\n"+
			"           patient the erasure ledger names\n"+
			"  drill    restore the latest backup into a scratch directory, verify its audit log, open a\n"+
			"           sample of records, and record the recovery time as evidence")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errUsage
	}
	return sub[args[0]](ctx, env, args[1:])
}

// backupSettings are the backup keys' settings. The recipient and the
// verifier key are public; the identity file is the secret that opens
// backups, needed only to verify or restore, never by create or serve.
type backupSettings struct {
	Recipient  string
	Identity   string
	Verifier   string
	SigningKey string
}

func (b *backupSettings) register(fs *flag.FlagSet) error {
	return registerSettings(fs, []setting{
		{"recipient", "HAVEN_BACKUP_RECIPIENT", "", "age recipient backups are encrypted to (default: the one keygen wrote, <data-dir>/keys/backup.recipient)", false, &b.Recipient},
		{"identity", "HAVEN_BACKUP_IDENTITY", "", "age identity file that opens backups; keep it apart from the server and its backups", false, &b.Identity},
		{"verifier", "HAVEN_BACKUP_VERIFIER", "", "backup verifier key, or a file holding it (default <data-dir>/keys/backup.pub)", false, &b.Verifier},
		{"signing-key", "HAVEN_BACKUP_SIGNING_KEY", "", "file of the key that signs backup manifests (default <data-dir>/keys/backup.key)", false, &b.SigningKey},
	})
}

// defaults fills paths that default beside the root key.
func (b *backupSettings) defaults(cfg *Config) {
	keys := filepath.Dir(cfg.RootKey)
	if b.SigningKey == "" {
		b.SigningKey = filepath.Join(keys, "backup.key")
	}
	if b.Verifier == "" {
		b.Verifier = filepath.Join(keys, "backup.pub")
	}
}

func (b *backupSettings) recipients(cfg *Config) ([]age.Recipient, error) {
	r := b.Recipient
	if r == "" {
		raw, err := os.ReadFile(filepath.Join(filepath.Dir(cfg.RootKey), "backup.recipient"))
		if err != nil {
			return nil, errors.New("--recipient: none given, and no backup.recipient beside the root key: run haven backup keygen")
		}
		r = string(raw)
	}
	rs, err := backup.ParseRecipients(strings.TrimSpace(r))
	if err != nil {
		return nil, fmt.Errorf("--recipient: %s", oneLine(err))
	}
	return rs, nil
}

func (b *backupSettings) identities() ([]age.Identity, error) {
	if b.Identity == "" {
		return nil, errors.New("--identity: the age identity file that opens backups is required")
	}
	f, err := os.Open(b.Identity)
	if err != nil {
		return nil, fmt.Errorf("--identity: cannot read %s: %v", b.Identity, errShort(err))
	}
	defer f.Close()
	ids, err := backup.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("--identity: %s", oneLine(err))
	}
	return ids, nil
}

func (b *backupSettings) verifierKey() (string, error) {
	v := b.Verifier
	if !strings.HasPrefix(v, backup.SigningKeyName+"+") {
		raw, err := os.ReadFile(v)
		if err != nil {
			return "", fmt.Errorf("--verifier: cannot read %s: %v", v, errShort(err))
		}
		v = string(raw)
	}
	return strings.TrimSpace(v), nil
}

// backupFlags parses the data settings, the backup keys' and extra ones.
// validate is false for commands that touch no live data (verify).
func backupFlags(env *Env, name, synopsis string, args []string, validate bool, extra func(*flag.FlagSet)) (*Config, *backupSettings, error) {
	var cfg Config
	var bs backupSettings
	fs := newFlagSet(env, name, synopsis)
	if err := cfg.register(fs, false); err != nil {
		return nil, nil, err
	}
	if err := bs.register(fs); err != nil {
		return nil, nil, err
	}
	if extra != nil {
		extra(fs)
	}
	if err := parse(fs, args); err != nil {
		return nil, nil, err
	}
	if validate {
		if err := cfg.validate(false); err != nil {
			return nil, nil, err
		}
	} else if cfg.RootKey == "" {
		cfg.RootKey = filepath.Join(cfg.DataDir, "keys", "root.key")
	}
	bs.defaults(&cfg)
	return &cfg, &bs, nil
}

func runBackupKeygen(ctx context.Context, env *Env, args []string) error {
	cfg, bs, err := backupFlags(env, "backup keygen", "Makes the backup keys. The age identity goes to --identity (mode 0600): it opens\n"+
		"every backup, so keep it offline, apart from the server and from the backups. Its\n"+
		"recipient (public) is written to backup.recipient beside the root key, where create\n"+
		"finds it; the manifest signing key and its verifier key go to backup.key and backup.pub.\n"+
		"Refuses to overwrite any of them.", args, true, nil)
	if err != nil {
		return err
	}
	if bs.Identity == "" {
		return errors.New("--identity FILE is required: where to write the identity that opens backups")
	}
	recipientPath := filepath.Join(filepath.Dir(cfg.RootKey), "backup.recipient")
	for _, p := range []string{bs.Identity, bs.SigningKey, bs.Verifier, recipientPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists already: backup keys are never overwritten (older backups need them)", p)
		}
	}
	keys, err := backup.GenerateKeys()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(bs.SigningKey), 0o700); err != nil {
		return errShort(err)
	}
	for _, f := range []struct {
		path, body string
		mode       os.FileMode
	}{
		{bs.Identity, "# Haven backup identity: opens every backup. Keep it offline.\n# recipient: " + keys.Recipient + "\n" + keys.Identity + "\n", 0o600},
		{bs.SigningKey, keys.SigningKey + "\n", 0o600},
		{bs.Verifier, keys.VerifierKey + "\n", 0o644},
		{recipientPath, keys.Recipient + "\n", 0o644},
	} {
		if err := writeFileAtomic(f.path, []byte(f.body), f.mode); err != nil {
			return fmt.Errorf("%s: %v", f.path, errShort(err))
		}
	}
	fmt.Fprintf(env.Stdout, "backup identity written to %s: move it off this machine; restores need it.\n"+
		"recipient (backups are encrypted to it): %s\nverifier key (checks backup manifests): %s\n", bs.Identity, recipientPath, keys.VerifierKey)
	return nil
}

// progress reports bytes done of a total on w, one line rewritten in
// place, redrawn only when the shown percentage changes.
type progress struct {
	w           io.Writer
	label       string
	done, total int64
	shown       int64
}

func newProgress(w io.Writer, label string, total int64) *progress {
	return &progress{w: w, label: label, total: total, shown: -1}
}

func (p *progress) add(n int64) {
	p.done += n
	pct := int64(100)
	if p.total > 0 {
		pct = min(100, p.done*100/p.total)
	}
	if pct == p.shown {
		return
	}
	p.shown = pct
	const width = 30
	filled := int(pct * width / 100)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %s", p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), pct, mib(p.done))
	if pct == 100 {
		fmt.Fprintln(p.w)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// countingReader advances a progress bar as it is read.
type countingReader struct {
	r io.Reader
	p *progress
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(int64(n))
	return n, err
}

func runBackupCreate(ctx context.Context, env *Env, args []string) error {
	var out string
	cfg, bs, err := backupFlags(env, "backup create", "Writes a backup to --out: a consistent snapshot of the database (SQLite: VACUUM INTO;\n"+
		"PostgreSQL: pg_dump, which must be on the PATH), every blob, and with them the key table\n"+
		"(wrapped keys only: the root key is never in a backup). The file is encrypted to the\n"+
		"backup recipient; its manifest lists every part with its SHA-256 and is signed with the\n"+
		"backup signing key. Needs no identity: the server cannot read its own backups.", args, true, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "the backup file to write (must not exist)")
	})
	if err != nil {
		return err
	}
	if out == "" {
		return errors.New("--out is required")
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("--out: %s exists already", out)
	}
	rs, err := bs.recipients(cfg)
	if err != nil {
		return err
	}
	skey, err := os.ReadFile(bs.SigningKey)
	if err != nil {
		return fmt.Errorf("--signing-key: cannot read %s: %v (run haven backup keygen)", bs.SigningKey, errShort(err))
	}
	m, err := createBackup(ctx, env, cfg, rs, strings.TrimSpace(string(skey)), out)
	if err != nil {
		return err
	}
	info, _ := os.Stat(out)
	fmt.Fprintf(env.Stdout, "backup written to %s: %s database, %d blobs, %s of parts, %s encrypted\n",
		out, m.Database, len(m.Parts)-1, mib(m.Bytes()), mib(info.Size()))
	return nil
}

// createBackup writes the backup to out through a temporary file renamed
// into place only when complete and synced, so out is never a partial
// backup.
func createBackup(ctx context.Context, env *Env, cfg *Config, rs []age.Recipient, signingKey, out string) (backup.Manifest, error) {
	// The database and the audit log only: making a backup needs no root
	// key, and the backup cannot be read by the server that makes it.
	st, err := openAuditStack(ctx, env, cfg)
	if err != nil {
		return backup.Manifest{}, err
	}
	defer st.Close()
	db := st.db
	// Audited before the snapshot, so the backup holds its own making.
	if _, err := st.audit.Append(ctx, service.OperatorEvent(audit.PlatformLogID, "backup.create", "backup", haven.NewID(), "")); err != nil {
		return backup.Manifest{}, fmt.Errorf("cannot audit the backup: %s", oneLine(err))
	}
	blobs, err := openBlobStore(ctx, cfg)
	if err != nil {
		return backup.Manifest{}, fmt.Errorf("--blob-store: %s", oneLine(err))
	}
	if c, ok := blobs.(io.Closer); ok {
		defer c.Close()
	}
	lister, ok := blobs.(blob.Lister)
	if !ok {
		return backup.Manifest{}, errors.New("--blob-store: this store cannot list its blobs")
	}
	// The snapshot is taken first: blobs written after it are carried
	// along as harmless orphans, and a blob the snapshot names was written
	// before its row was committed, so it is there to copy.
	work, err := os.MkdirTemp(filepath.Dir(out), ".haven-backup-*")
	if err != nil {
		return backup.Manifest{}, fmt.Errorf("--out: %v", errShort(err))
	}
	defer os.RemoveAll(work)
	database := string(db.Dialect())
	snap := filepath.Join(work, "db")
	if db.Dialect() == sqlstore.Postgres {
		err = pgDump(ctx, cfg.DB, snap)
	} else {
		err = db.SnapshotSQLite(ctx, snap)
	}
	if err != nil {
		return backup.Manifest{}, err
	}
	type item struct {
		key  string
		size int64
	}
	var items []item
	total := fileSize(snap)
	if err := lister.List(ctx, "", func(key string, _ time.Time) error {
		size, err := blobs.Stat(ctx, key)
		if err != nil {
			return err
		}
		items = append(items, item{key, size})
		total += size
		return nil
	}); err != nil {
		return backup.Manifest{}, fmt.Errorf("listing the blobs: %s", oneLine(err))
	}
	f, err := os.CreateTemp(work, "out-*")
	if err != nil {
		return backup.Manifest{}, errShort(err)
	}
	defer f.Close()
	w, err := backup.NewWriter(f, rs, signingKey, database, time.Now())
	if err != nil {
		return backup.Manifest{}, err
	}
	bar := newProgress(env.Stderr, "backup", total)
	sf, err := os.Open(snap)
	if err != nil {
		return backup.Manifest{}, err
	}
	err = w.Add(backup.DatabasePart(database), fileSize(snap), countingReader{sf, bar})
	sf.Close()
	if err != nil {
		return backup.Manifest{}, err
	}
	for _, it := range items {
		rc, err := blobs.Get(ctx, it.key)
		if err != nil {
			return backup.Manifest{}, fmt.Errorf("blob %s: %s", it.key, oneLine(err))
		}
		err = w.Add(backup.BlobPrefix+it.key, it.size, countingReader{rc, bar})
		rc.Close()
		if err != nil {
			return backup.Manifest{}, fmt.Errorf("blob %s: %s", it.key, oneLine(err))
		}
	}
	bar.add(0)
	m, err := w.Close()
	if err != nil {
		return backup.Manifest{}, err
	}
	if err := f.Sync(); err != nil {
		return backup.Manifest{}, err
	}
	if err := f.Close(); err != nil {
		return backup.Manifest{}, err
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return backup.Manifest{}, fmt.Errorf("--out: %v", errShort(err))
	}
	return m, nil
}

func fileSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

// pgConn splits a postgres:// URL into the URL libpq tools take and the
// password, which goes to them in PGPASSWORD so it never shows in the
// process list.
func pgConn(dsn string) (string, []string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("--db: %s is not a valid URL", sqlstore.Redact(dsn))
	}
	env := os.Environ()
	if pw, ok := u.User.Password(); ok {
		env = append(env, "PGPASSWORD="+pw)
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if pw := q.Get("password"); pw != "" {
		env = append(env, "PGPASSWORD="+pw)
		q.Del("password")
	}
	u.RawQuery = q.Encode()
	return u.String(), env, nil
}

// pgDump writes pg_dump's plain SQL of the database to path. pg_dump reads
// in one repeatable-read transaction, so the dump is one moment of the
// database while Haven keeps serving. No owners or grants: the dump loads
// into an empty database owned by whoever restores it.
func pgDump(ctx context.Context, dsn, path string) error {
	conn, env, err := pgConn(dsn)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "pg_dump", "--format=plain", "--no-owner", "--no-privileges", "--file="+path, "--dbname="+conn)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_dump failed (%v): %s", err, oneLine(errors.New(sqlstore.Redact(string(out)))))
	}
	return nil
}

// pgLoad loads a pg_dump plain SQL file into an empty database in one
// transaction, stopping at the first error: it loads whole or not at all.
func pgLoad(ctx context.Context, dsn, path string) error {
	conn, env, err := pgConn(dsn)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--single-transaction", "--file="+path, "--dbname="+conn)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("loading the PostgreSQL dump failed (%v): %s", err, oneLine(errors.New(string(out))))
	}
	return nil
}

// readBackup opens in, shows progress over its encrypted bytes, and reads
// it with backup.Read.
func readBackup(env *Env, bs *backupSettings, in string, sink func(p backup.Part, r io.Reader) error) (backup.Manifest, error) {
	ids, err := bs.identities()
	if err != nil {
		return backup.Manifest{}, err
	}
	vkey, err := bs.verifierKey()
	if err != nil {
		return backup.Manifest{}, err
	}
	f, err := os.Open(in)
	if err != nil {
		return backup.Manifest{}, fmt.Errorf("--in: cannot read %s: %v", in, errShort(err))
	}
	defer f.Close()
	bar := newProgress(env.Stderr, "reading backup", fileSize(in))
	m, err := backup.Read(countingReader{f, bar}, ids, vkey, sink)
	if err == nil {
		bar.add(0)
	} else if bar.shown >= 0 && bar.shown < 100 {
		fmt.Fprintln(env.Stderr)
	}
	return m, err
}

func runBackupVerify(ctx context.Context, env *Env, args []string) error {
	var in string
	_, bs, err := backupFlags(env, "backup verify", "Decrypts a backup with the identity and checks that every part matches the manifest\n"+
		"and that the manifest is signed by the backup verifier key. Changes nothing.", args, false, func(fs *flag.FlagSet) {
		fs.StringVar(&in, "in", "", "the backup file")
	})
	if err != nil {
		return err
	}
	if in == "" {
		return errors.New("--in is required")
	}
	m, err := readBackup(env, bs, in, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "backup %s: OK, made %s, %s database, %d blobs, %s, every part matches the signed manifest\n",
		in, m.Created.Format(time.RFC3339), m.Database, len(m.Parts)-1, mib(m.Bytes()))
	return nil
}

func runBackupRestore(ctx context.Context, env *Env, args []string) error {
	var in string
	cfg, bs, err := backupFlags(env, "backup restore", "Restores a backup into the database and blob store the data flags name, which must be\n"+
		"empty: a restore never overwrites data. The backup is verified in full before anything\n"+
		"is loaded. The root key and the audit key are not in backups: give them as usual\n"+
		"(--root-key or --kms, --audit-key). Every patient the erasure ledger names is shredded\n"+
		"again before the command returns, so a backup never revives an erased patient.", args, true, func(fs *flag.FlagSet) {
		fs.StringVar(&in, "in", "", "the backup file")
	})
	if err != nil {
		return err
	}
	if in == "" {
		return errors.New("--in is required")
	}
	res, err := restoreBackup(ctx, env, cfg, bs, in)
	if err != nil {
		return err
	}
	// A PostgreSQL dump carries no statistics: with autovacuum off the
	// restored tables would be planned as empty until someone analyzed them.
	analyzeAfterBulkChange(ctx, env, res.st.db)
	res.st.Close()
	fmt.Fprintf(env.Stdout, "restored backup made %s: %s database, %d blobs; %d erased patients shredded again\n",
		res.manifest.Created.Format(time.RFC3339), res.manifest.Database, res.blobs, res.reerased)
	return nil
}

type restored struct {
	manifest backup.Manifest
	blobs    int
	reerased int
	st       *stack
}

// errNotEmpty is the refusal to restore over existing data.
var errNotEmpty = errors.New("refused: the target already holds data; restore into an empty database and blob store")

// checkEmptyTarget refuses a target database or blob store that holds
// anything.
func checkEmptyTarget(ctx context.Context, cfg *Config) error {
	if !sqlstore.IsPostgresURL(cfg.DB) {
		if info, err := os.Stat(strings.TrimPrefix(cfg.DB, "sqlite://")); err == nil && info.Size() > 0 {
			return fmt.Errorf("--db %s: %w", cfg.DB, errNotEmpty)
		}
	} else {
		db, err := sqlstore.Open(ctx, cfg.DB)
		if err != nil {
			return err
		}
		empty, err := db.Empty(ctx)
		db.Close()
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("--db %s: %w", sqlstore.Redact(cfg.DB), errNotEmpty)
		}
	}
	blobs, err := openBlobStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("--blob-store: %s", oneLine(err))
	}
	if c, ok := blobs.(io.Closer); ok {
		defer c.Close()
	}
	lister, ok := blobs.(blob.Lister)
	if !ok {
		return errors.New("--blob-store: this store cannot list its blobs")
	}
	errFound := errors.New("found")
	err = lister.List(ctx, "", func(string, time.Time) error { return errFound })
	if errors.Is(err, errFound) {
		return fmt.Errorf("--blob-store %s: %w", cfg.BlobStore, errNotEmpty)
	}
	return err
}

// restoreBackup verifies the whole backup into a staging directory, loads
// it into the empty target, and opens Haven on it, which re-applies the
// erasure ledger (openStack). The caller closes the returned stack.
func restoreBackup(ctx context.Context, env *Env, cfg *Config, bs *backupSettings, in string) (*restored, error) {
	if err := checkEmptyTarget(ctx, cfg); err != nil {
		return nil, err
	}
	stageDir := cfg.DataDir
	if !sqlstore.IsPostgresURL(cfg.DB) {
		stageDir = filepath.Dir(strings.TrimPrefix(cfg.DB, "sqlite://")) // the snapshot is renamed into place
	}
	stage, err := os.MkdirTemp(stageDir, ".haven-restore-*")
	if err != nil {
		return nil, errShort(err)
	}
	defer os.RemoveAll(stage)
	var blobKeys []string
	m, err := readBackup(env, bs, in, func(p backup.Part, r io.Reader) error {
		name := "db"
		if key, ok := strings.CutPrefix(p.Name, backup.BlobPrefix); ok {
			name = fmt.Sprintf("blob-%d", len(blobKeys))
			blobKeys = append(blobKeys, key)
		}
		f, err := os.OpenFile(filepath.Join(stage, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		return nil, err
	}
	isPG := sqlstore.IsPostgresURL(cfg.DB)
	if (m.Database == "postgres") != isPG {
		return nil, fmt.Errorf("--db: this is a %s backup; restore it into a %s database", m.Database, m.Database)
	}
	// Loaded last is first checked: a second look that the target is still
	// empty, then the database, then the blobs.
	if err := checkEmptyTarget(ctx, cfg); err != nil {
		return nil, err
	}
	if isPG {
		if err := pgLoad(ctx, cfg.DB, filepath.Join(stage, "db")); err != nil {
			return nil, err
		}
	} else {
		path := strings.TrimPrefix(cfg.DB, "sqlite://")
		os.Remove(path) // an empty file checkEmptyTarget accepted
		if err := os.Rename(filepath.Join(stage, "db"), path); err != nil {
			return nil, fmt.Errorf("--db: %v", errShort(err))
		}
	}
	st, err := loadBlobsAndOpen(ctx, env, cfg, stage, blobKeys)
	if err != nil {
		// Take back what this restore loaded, so the operator can fix the
		// cause (most often a missing or wrong root or audit key) and run
		// the same command again into a target that is empty again.
		if isPG {
			if derr := dropLoaded(ctx, cfg.DB); derr != nil {
				return nil, fmt.Errorf("%s (and the loaded backup could not be taken back: %s; empty the database before restoring again)", oneLine(err), oneLine(derr))
			}
		} else {
			path := strings.TrimPrefix(cfg.DB, "sqlite://")
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				os.Remove(p)
			}
		}
		if blobs, berr := openBlobStore(ctx, cfg); berr == nil {
			for _, key := range blobKeys {
				blobs.Delete(ctx, key)
			}
			if c, ok := blobs.(io.Closer); ok {
				c.Close()
			}
		}
		return nil, fmt.Errorf("%s (nothing of the backup was left in place)", oneLine(err))
	}
	return &restored{manifest: m, blobs: len(blobKeys), reerased: st.reerased, st: st}, nil
}

// dropLoaded takes a PostgreSQL load back (sqlstore.DropLoaded).
func dropLoaded(ctx context.Context, dsn string) error {
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.DropLoaded(ctx)
}

// loadBlobsAndOpen puts the staged blobs into the blob store and opens
// Haven on the restored data, which re-applies the erasure ledger.
func loadBlobsAndOpen(ctx context.Context, env *Env, cfg *Config, stage string, blobKeys []string) (*stack, error) {
	blobs, err := openBlobStore(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("--blob-store: %s", oneLine(err))
	}
	if c, ok := blobs.(io.Closer); ok {
		defer c.Close()
	}
	bar := newProgress(env.Stderr, "restoring blobs", int64(len(blobKeys)))
	for i, key := range blobKeys {
		f, err := os.Open(filepath.Join(stage, fmt.Sprintf("blob-%d", i)))
		if err != nil {
			return nil, err
		}
		_, err = blobs.Put(ctx, key, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("restoring blob %s: %s", key, oneLine(err))
		}
		bar.add(1)
	}
	if len(blobKeys) == 0 {
		bar.add(0)
	}
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return nil, fmt.Errorf("the backup is loaded but Haven cannot open it: %s", oneLine(err))
	}
	return st, nil
}

// reapplyErasures shreds again every patient the erasure ledger names
// whose data key this database still holds: data restored from a backup
// taken before the erasure. It runs whenever Haven opens its data, so a
// restore interrupted before it finished cannot serve a revived patient
// either.
func (s *stack) reapplyErasures(ctx context.Context, env *Env, ledger *backup.Ledger) error {
	es, err := ledger.Erasures()
	if err != nil {
		return fmt.Errorf("--erasure-ledger: %s", oneLine(err))
	}
	for _, e := range es {
		did, err := s.svc.ReapplyErasure(ctx, e.PracticeID, e.PatientID, e.At)
		if err != nil {
			return fmt.Errorf("re-applying the erasure of patient %s: %s", e.PatientID, oneLine(err))
		}
		if did {
			s.reerased++
			env.Logger.Warn("re-applied an erasure the restored data had undone", "patient_id", e.PatientID, "practice_id", e.PracticeID)
		}
	}
	return nil
}

package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"haven"
	"haven/store/sqlstore"
	"haven/web"
)

// Config is what every subcommand that touches data shares. Each setting is
// a flag and a HAVEN_* environment variable (the flag wins); secrets also
// read from NAME_FILE so they need not sit in the environment.
type Config struct {
	DataDir        string
	Addr           string
	PublicURL      string
	DB             string
	TLSCert        string
	TLSKey         string
	RootKey        string
	RootPassphrase string
	KMS            string
	BlobStore      string
	S3Endpoint     string
	S3Region       string
	S3AccessKey    string
	S3SecretKey    string
	AuditKey       string
	AuditWitness   string
	ErasureLedger  string
	MetricsToken   string
	Demo           bool
	FIPS           bool

	auditLog     string          // `haven audit --log`
	witnessSpecs []witnessSpec   // parsed --audit-witness
	videoKey     []byte          // `haven serve`: the join-token key (video.go)
	processor    haven.Processor // `haven serve`: the card processor, or nil (payments.go)
}

type setting struct {
	flag, env, def, usage string
	secret                bool
	dst                   *string
}

func (c *Config) settings(serve bool) []setting {
	s := []setting{
		{"data-dir", "HAVEN_DATA_DIR", "./haven-data", "directory for the embedded database, blobs, keys and certificates", false, &c.DataDir},
		{"db", "HAVEN_DB", "", "database: a postgres:// URL selects PostgreSQL; default is SQLite at <data-dir>/haven.db", true, &c.DB},
		{"root-key", "HAVEN_ROOT_KEY", "", "root key file (default <data-dir>/keys/root.key); keep it out of database backups", false, &c.RootKey},
		{"root-key-passphrase", "HAVEN_ROOT_KEY_PASSPHRASE", "", "passphrase sealing the root key file (argon2id); prefer HAVEN_ROOT_KEY_PASSPHRASE_FILE", true, &c.RootPassphrase},
		{"kms", "HAVEN_KMS_URL", "", "root key in a KMS instead of a file, e.g. hashivault://haven-root (Vault or OpenBao transit; VAULT_ADDR and VAULT_TOKEN configure it)", false, &c.KMS},
		{"blob-store", "HAVEN_BLOB_STORE", "", "where encrypted files go: a directory (default <data-dir>/blobs) or s3://bucket/prefix", false, &c.BlobStore},
		{"s3-endpoint", "HAVEN_S3_ENDPOINT", "", "S3-compatible endpoint host[:port] for an s3:// blob store (TLS always)", false, &c.S3Endpoint},
		{"s3-region", "HAVEN_S3_REGION", "", "S3 region", false, &c.S3Region},
		{"s3-access-key-id", "HAVEN_S3_ACCESS_KEY_ID", "", "S3 access key id", false, &c.S3AccessKey},
		{"s3-secret-access-key", "HAVEN_S3_SECRET_ACCESS_KEY", "", "S3 secret access key", true, &c.S3SecretKey},
		{"audit-key", "HAVEN_AUDIT_KEY", "", "Ed25519 key signing audit checkpoints and batches (default <data-dir>/keys/audit.key; its verifier key, which must name it, is beside it as audit.pub)", false, &c.AuditKey},
		{"erasure-ledger", "HAVEN_ERASURE_LEDGER", "", "file recording every erased patient, outside every backup: a restore shreds them again (default <data-dir>/keys/erasures; keep it with the root key, never roll it back)", false, &c.ErasureLedger},
		{"audit-witness", "HAVEN_AUDIT_WITNESS", "", "witnesses of the audit log, comma-separated: a directory (another machine's mount; on the data dir's disk it proves nothing) or \"URL KEY\", a C2SP tlog-witness at an https:// URL with its verifier key (default <data-dir>/witness)", false, &c.AuditWitness},
	}
	if serve {
		s = append(s,
			setting{"addr", "HAVEN_ADDR", "127.0.0.1:8443", "address to serve HTTPS on", false, &c.Addr},
			setting{"public-url", "HAVEN_PUBLIC_URL", "", "the https:// address browsers use: links in emails, and the domain passkeys belong to (default https://localhost:<port of --addr>)", false, &c.PublicURL},
			setting{"tls-cert", "HAVEN_TLS_CERT", "", "PEM certificate file (default: a self-signed localhost certificate in the data dir)", false, &c.TLSCert},
			setting{"tls-key", "HAVEN_TLS_KEY", "", "PEM private key file for --tls-cert", false, &c.TLSKey},
			setting{"metrics-token", "HAVEN_METRICS_TOKEN", "", "bearer token a Prometheus scraper presents at /metrics (at least 16 characters); without one, /metrics answers 403 to everyone", true, &c.MetricsToken},
		)
	}
	return s
}

// register adds the settings' flags to fs, with defaults from the environment.
func (c *Config) register(fs *flag.FlagSet, serve bool) error {
	if err := registerSettings(fs, c.settings(serve)); err != nil {
		return err
	}
	if serve {
		demo := false
		if v, ok := os.LookupEnv("HAVEN_DEMO"); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("HAVEN_DEMO: %q is not true or false", v)
			}
			demo = b
		}
		fs.BoolVar(&c.Demo, "demo", demo, "seed two demo practices and print how to sign in (env HAVEN_DEMO)")
		fips := false
		if v, ok := os.LookupEnv("HAVEN_FIPS"); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("HAVEN_FIPS: %q is not true or false", v)
			}
			fips = b
		}
		fs.BoolVar(&c.FIPS, "fips", fips, "require Go's FIPS 140-3 mode (GODEBUG=fips140=on or only): refuse to start without it (env HAVEN_FIPS)")
	}
	return nil
}

// registerSettings adds each setting's flag to fs. Its default comes from
// the environment variable, or for a secret from the file NAME_FILE names,
// so a secret need not sit in the environment or on the command line.
func registerSettings(fs *flag.FlagSet, settings []setting) error {
	for _, s := range settings {
		def := s.def
		if v, ok := os.LookupEnv(s.env); ok {
			def = v
		} else if s.secret {
			if file, ok := os.LookupEnv(s.env + "_FILE"); ok {
				b, err := os.ReadFile(file)
				if err != nil {
					return fmt.Errorf("%s_FILE: cannot read %s: %v", s.env, file, errShort(err))
				}
				def = strings.TrimSpace(string(b))
			}
		}
		usage := s.usage + " (env " + s.env
		if s.secret {
			usage += ", or " + s.env + "_FILE"
		}
		fs.StringVar(s.dst, s.flag, def, usage+")")
		if s.secret {
			fs.Func(s.flag+"_FILE", "a file holding --"+s.flag+", so the secret is not on the command line", secretFile(s.flag, s.dst))
		}
	}
	return nil
}

// secretFile is the --NAME_FILE flag of a secret: it reads the secret from
// the file it names, as NAME_FILE in the environment does.
func secretFile(flag string, dst *string) func(string) error {
	return func(file string) error {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("cannot read %s: %v", file, errShort(err))
		}
		*dst = strings.TrimSpace(string(b))
		if *dst == "" {
			return fmt.Errorf("%s is empty", file)
		}
		return nil
	}
}

// validate checks settings that need no I/O beyond the data dir, and fills
// in defaults that depend on other settings. Errors name the setting.
func (c *Config) validate(serve bool) error {
	if err := checkFIPS(serve && c.FIPS); err != nil {
		return err
	}
	if c.DataDir == "" {
		return fmt.Errorf("--data-dir: must not be empty")
	}
	if err := checkWritableDir(c.DataDir); err != nil {
		return fmt.Errorf("--data-dir: %s is not a writable directory: %v", c.DataDir, err)
	}
	if c.RootKey == "" {
		c.RootKey = filepath.Join(c.DataDir, "keys", "root.key")
	}
	if c.AuditKey == "" {
		c.AuditKey = filepath.Join(c.DataDir, "keys", "audit.key")
	}
	if c.ErasureLedger == "" {
		c.ErasureLedger = filepath.Join(c.DataDir, "keys", "erasures")
	}
	if c.BlobStore == "" {
		c.BlobStore = filepath.Join(c.DataDir, "blobs")
	} else if strings.HasPrefix(c.BlobStore, "s3://") && c.S3Endpoint == "" {
		return fmt.Errorf("--blob-store: an s3:// store needs --s3-endpoint")
	} else if strings.Contains(c.BlobStore, "://") && !strings.HasPrefix(c.BlobStore, "s3://") {
		return fmt.Errorf("--blob-store: use a directory or s3://bucket/prefix")
	}
	if c.AuditWitness == "" {
		c.AuditWitness = filepath.Join(c.DataDir, "witness")
	}
	var err error
	if c.witnessSpecs, err = parseWitnesses(c.AuditWitness); err != nil {
		return err
	}
	if c.DB == "" {
		c.DB = filepath.Join(c.DataDir, "haven.db")
	} else if strings.Contains(c.DB, "://") && !sqlstore.IsPostgresURL(c.DB) && !strings.HasPrefix(c.DB, "sqlite://") {
		return fmt.Errorf("--db: %s: use a postgres:// URL or an SQLite file path", sqlstore.Redact(c.DB))
	}
	if !serve {
		return nil
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("--addr: %q is not host:port", c.Addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("--addr: %q has no valid port", c.Addr)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		if _, err := net.LookupHost(host); err != nil {
			return fmt.Errorf("--addr: cannot resolve host %q", host)
		}
	}
	if c.PublicURL != "" {
		if c.PublicURL, err = checkPublicURL(c.PublicURL); err != nil {
			return err
		}
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < web.MinMetricsToken {
		return fmt.Errorf("--metrics-token: must be at least %d characters", web.MinMetricsToken)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key must be given together")
	}
	for _, s := range []struct{ flag, file string }{{"--tls-cert", c.TLSCert}, {"--tls-key", c.TLSKey}} {
		if s.file == "" {
			continue
		}
		if _, err := os.ReadFile(s.file); err != nil {
			return fmt.Errorf("%s: cannot read %s: %v", s.flag, s.file, errShort(err))
		}
	}
	return nil
}

// checkPublicURL validates --public-url and returns it without a trailing
// slash. Passkeys are bound to this origin's host for good, and emailed
// links point at it: it must be a name (not an IP address) that browsers
// reach over https.
func checkPublicURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || net.ParseIP(u.Hostname()) != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("--public-url: %q must be an https:// address with a host name, such as https://clinic.example", raw)
	}
	return strings.TrimSuffix(raw, "/"), nil
}

// checkWritableDir creates dir if needed (0700: it holds keys and the
// database) and proves it writable by creating and removing a probe file.
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errShort(err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return errShort(err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// errShort strips the path an *os.PathError repeats, so messages read as
// one clean line.
func errShort(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

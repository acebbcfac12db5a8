package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"haven"
	"haven/audit"
	"haven/store/sqlstore"
)

// witnessSpec is one --audit-witness entry: a directory, or a tlog-witness
// URL with the witness's verifier key after a space.
type witnessSpec struct {
	dir      string
	url, key string
}

// parseWitnesses reads --audit-witness: comma-separated entries, each a
// directory or "URL KEY". A network witness is spoken to over C2SP
// tlog-witness and must be https://, or http:// to this machine (a local
// TLS-terminating proxy); its key checks every cosignature it returns.
func parseWitnesses(s string) ([]witnessSpec, error) {
	var out []witnessSpec
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if !strings.Contains(entry, "://") {
			out = append(out, witnessSpec{dir: entry})
			continue
		}
		f := strings.Fields(entry)
		if len(f) != 2 {
			return nil, fmt.Errorf("--audit-witness: a witness URL must be followed by a space and the witness's verifier key")
		}
		u, err := url.Parse(f[0])
		if err != nil || u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())) {
			return nil, fmt.Errorf("--audit-witness: %q: use a directory, an https:// URL, or http:// to this machine", f[0])
		}
		if _, err := audit.ParseWitnessKey(f[1]); err != nil {
			return nil, fmt.Errorf("--audit-witness: %s: %s", f[0], oneLine(err))
		}
		out = append(out, witnessSpec{url: f[0], key: f[1]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--audit-witness: no witness given")
	}
	return out, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// witnesses builds the configured witnesses. With create, a directory
// witness's directory is made if missing (a new deployment); what it held
// before is checked against the database's record either way.
func (c *Config) witnesses(create bool) ([]audit.Witness, error) {
	var out []audit.Witness
	for _, s := range c.witnessSpecs {
		if s.dir != "" {
			if create {
				if err := os.MkdirAll(s.dir, 0o700); err != nil {
					return nil, fmt.Errorf("--audit-witness: %v", errShort(err))
				}
			}
			out = append(out, audit.DirWitness{Dir: s.dir})
			continue
		}
		w, err := audit.NewTlogWitness(s.url, s.key)
		if err != nil {
			return nil, fmt.Errorf("--audit-witness: %s", oneLine(err))
		}
		out = append(out, w)
	}
	return out, nil
}

// sameDiskWarning returns a warning when every witness is a directory on
// the same disk as the data dir: whoever can write the database can then
// rewrite the witness too, so it proves nothing to them.
func (c *Config) sameDiskWarning() string {
	for _, s := range c.witnessSpecs {
		if s.dir == "" || !sameDevice(s.dir, c.DataDir) {
			return ""
		}
	}
	return "WARNING: the only audit witness is a directory on the same disk as the data dir (" + c.AuditWitness + "): " +
		"it cannot prove a rollback to anyone who can write both; add a witness on another machine (--audit-witness)"
}

// verifierKeyPath is the public key beside the audit signing key:
// <dir>/audit.pub for <dir>/audit.key.
func verifierKeyPath(auditKey string) string {
	return strings.TrimSuffix(auditKey, filepath.Ext(auditKey)) + ".pub"
}

// loadAuditKeys loads the checkpoint signing key and the trust it must fit:
// the verifier keys in audit.pub beside it, extended by the key hand-overs
// stored in the database. A new key (and audit.pub) is created only for a
// database without any audit log; otherwise a missing key is an error, and
// a key that audit.pub (through hand-overs) does not name is refused:
// replacing the key file must not quietly start a new identity.
func loadAuditKeys(ctx context.Context, env *Env, cfg *Config, db *sqlstore.DB) (*audit.Signer, *audit.Trust, error) {
	pubPath := verifierKeyPath(cfg.AuditKey)
	logs, err := db.Logs(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read the audit log: %s", oneLine(err))
	}
	if _, err := os.Stat(cfg.AuditKey); errors.Is(err, os.ErrNotExist) {
		if _, perr := os.Stat(pubPath); perr == nil || len(logs) > 0 {
			return nil, nil, fmt.Errorf("--audit-key: %s is missing, and the audit log (or %s) belongs to an existing key: restore it", cfg.AuditKey, pubPath)
		}
		if err := os.MkdirAll(filepath.Dir(cfg.AuditKey), 0o700); err != nil {
			return nil, nil, fmt.Errorf("--audit-key: %v", errShort(err))
		}
		priv, vkey, err := audit.GenerateKey("haven-audit")
		if err != nil {
			return nil, nil, err
		}
		if err := audit.WriteKeyFile(cfg.AuditKey, priv); err != nil {
			return nil, nil, fmt.Errorf("--audit-key: %s", oneLine(err))
		}
		if err := writeFileAtomic(pubPath, []byte(vkey+"\n"), 0o644); err != nil {
			return nil, nil, fmt.Errorf("--audit-key: %v", errShort(err))
		}
		env.Logger.Warn("created a new audit signing key", "path", cfg.AuditKey, "verifier_key", vkey)
		fmt.Fprintf(env.Stdout, "created an audit checkpoint signing key at %s; give auditors its verifier key (%s): %s\n", cfg.AuditKey, pubPath, vkey)
	}
	signer, err := audit.LoadSigner(cfg.AuditKey)
	if err != nil {
		return nil, nil, fmt.Errorf("--audit-key: %s", oneLine(err))
	}
	anchor, err := os.ReadFile(pubPath)
	if errors.Is(err, os.ErrNotExist) {
		// The public half is no secret and no anchor by itself: the key
		// must still match every stored checkpoint (audit.Log.Check).
		if err := writeFileAtomic(pubPath, []byte(signer.VerifierKey()+"\n"), 0o644); err != nil {
			return nil, nil, fmt.Errorf("--audit-key: %v", errShort(err))
		}
		env.Logger.Warn("wrote the missing audit verifier key", "path", pubPath, "key", signer.ID())
		anchor = []byte(signer.VerifierKey())
	} else if err != nil {
		return nil, nil, fmt.Errorf("--audit-key: cannot read %s: %v", pubPath, errShort(err))
	}
	trust, err := loadTrust(ctx, db, string(anchor))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %s", pubPath, oneLine(err))
	}
	if err := trust.Current(signer.VerifierKey()); err != nil {
		return nil, nil, fmt.Errorf("--audit-key: %s (rotate keys with haven audit rotate-key)", oneLine(err))
	}
	return signer, trust, nil
}

// loadTrust reads verifier keys and extends them along the stored key
// hand-overs.
func loadTrust(ctx context.Context, db *sqlstore.DB, verifierKeys string) (*audit.Trust, error) {
	trust, err := audit.NewTrust(verifierKeys)
	if err != nil {
		return nil, err
	}
	hs, err := db.Handovers(ctx)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read the audit key hand-overs")
	}
	if err := trust.AddHandovers(hs); err != nil {
		return nil, err
	}
	return trust, nil
}

// auditLogIDs lists every log a start must check: those with rows,
// checkpoints or acknowledgements, every practice's (a practice whose log
// vanished entirely is a rollback too) and those a directory witness holds.
func auditLogIDs(ctx context.Context, db *sqlstore.DB, witnesses []audit.Witness) ([]string, error) {
	ids, err := db.Logs(ctx)
	if err != nil {
		return nil, err
	}
	ps, err := db.ListPractices(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	for _, w := range witnesses {
		if dw, ok := w.(audit.DirWitness); ok {
			more, err := dw.Logs()
			if err != nil {
				return nil, err
			}
			ids = append(ids, more...)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// checkAuditLogs runs audit.Log.Check on every log before anything is
// served or appended: a log shorter than or inconsistent with a checkpoint
// this deployment signed or a witness holds, rows appended without the key,
// a replaced key or a witness that went backwards stop the command with
// one line. It says loudly when the only witness is on the same disk.
func (s *stack) checkAuditLogs(ctx context.Context, env *Env, cfg *Config) error {
	if w := cfg.sameDiskWarning(); w != "" {
		fmt.Fprintf(env.Stdout, "*** %s ***\n", w)
		env.Logger.Warn("audit witness on the same disk as the data", "witness", cfg.AuditWitness)
	}
	ids, err := auditLogIDs(ctx, s.db, s.witnesses)
	if err != nil {
		return fmt.Errorf("cannot list the audit logs: %s", oneLine(err))
	}
	for _, id := range ids {
		warnings, err := s.audit.Check(ctx, id)
		for _, w := range warnings {
			fmt.Fprintf(env.Stdout, "*** WARNING: %s ***\n", w)
			env.Logger.Warn("audit witness", "log", id, "warning", w)
		}
		if err != nil {
			env.Logger.Error("audit log refused", "log", id, "err", err)
			return fmt.Errorf("audit log refused: %s", oneLine(err))
		}
	}
	return nil
}

// writeFileAtomic replaces path with b (temporary file, then rename).
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), mode); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"haven"
	"haven/audit"
	"haven/store/sqlstore"
)

func init() {
	commands["audit"] = command{"verify, checkpoint or export the tamper-evident audit log; rotate its key", runAudit}
}

func runAudit(ctx context.Context, env *Env, args []string) error {
	sub := map[string]func(context.Context, *Env, []string) error{
		"verify": runAuditVerify, "checkpoint": runAuditCheckpoint, "export": runAuditExport,
		"rotate-key": runAuditRotateKey, "log-keys": runAuditLogKeys,
	}
	if len(args) == 0 || sub[args[0]] == nil {
		fmt.Fprintln(env.Stderr, "Usage: haven audit verify|checkpoint|export|rotate-key|log-keys [flags]\n\n"+
			"  verify      recompute every log's Merkle tree, check every seal, signed checkpoint and witness with\n"+
			"              public keys only (--verifier-key); exit 1 naming the first bad entry on any edit,\n"+
			"              deletion, insertion, reordering, forged entry or rollback, or a witness gone backwards\n"+
			"  checkpoint  check every log, sign a checkpoint of each now and publish it to the witnesses\n"+
			"  export      write a log as JSON lines, each event with its inclusion proof\n"+
			"  rotate-key  replace the audit signing key, recording a hand-over both keys sign, so\n"+
			"              verification continues across it (stop every server first)\n"+
			"  log-keys    each log's origin and verifier key, for a witness to trust")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errUsage
	}
	return sub[args[0]](ctx, env, args[1:])
}

// auditFlags parses the settings the audit subcommands share plus extra
// flags.
func auditFlags(env *Env, name, synopsis string, args []string, extra func(*flag.FlagSet)) (*Config, error) {
	var cfg Config
	fs := newFlagSet(env, "audit "+name, synopsis)
	if err := cfg.register(fs, false); err != nil {
		return nil, err
	}
	fs.StringVar(&cfg.auditLog, "log", "", "one log id (a practice id, or \"platform\"); default every log")
	if extra != nil {
		extra(fs)
	}
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if err := cfg.validate(false); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (s *stack) logIDs(ctx context.Context, only string) ([]string, error) {
	if only != "" {
		return []string{only}, nil
	}
	return auditLogIDs(ctx, s.db, s.witnesses)
}

func runAuditVerify(ctx context.Context, env *Env, args []string) error {
	var verifierKey string
	cfg, err := auditFlags(env, "verify", "Verifies the audit logs from scratch with public keys only: every leaf recomputed from its\n"+
		"row, the Merkle tree rebuilt, every batch seal and every stored, acknowledged and witnessed\n"+
		"checkpoint checked against the verifier key, and every witness asked what it holds.\n"+
		"Needs no root key and no secret; creates and changes no key. Exits 1 on any problem,\n"+
		"naming the first bad entry.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&verifierKey, "verifier-key", "", "file of trusted audit verifier keys, one per line (default audit.pub beside --audit-key)")
	})
	if err != nil {
		return err
	}
	if verifierKey == "" {
		verifierKey = verifierKeyPath(cfg.AuditKey)
	}
	keys, err := os.ReadFile(verifierKey)
	if err != nil {
		return fmt.Errorf("--verifier-key: cannot read %s: %v", verifierKey, errShort(err))
	}
	db, err := openForReading(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	witnesses, err := cfg.witnesses(false)
	if err != nil {
		return err
	}
	if w := cfg.sameDiskWarning(); w != "" {
		fmt.Fprintf(env.Stdout, "*** %s ***\n", w)
	}
	ids := []string{cfg.auditLog}
	if cfg.auditLog == "" {
		if ids, err = auditLogIDs(ctx, db, witnesses); err != nil {
			return fmt.Errorf("cannot list the audit logs: %s", oneLine(err))
		}
	}
	bad := 0
	for _, id := range ids {
		trust, err := audit.NewTrust(string(keys))
		if err != nil {
			return fmt.Errorf("--verifier-key: %s: %s", verifierKey, oneLine(err))
		}
		rep, err := audit.VerifyWith(ctx, db, id, audit.VerifyOptions{Trust: trust, Witnesses: witnesses})
		if err != nil {
			return fmt.Errorf("log %s: %s", id, oneLine(err))
		}
		for _, w := range rep.Witnesses {
			switch {
			case w.Err != nil:
				fmt.Fprintf(env.Stdout, "log %s: WITNESS %s: %s\n", id, w.Name, oneLine(w.Err))
			case w.Warning != "":
				fmt.Fprintf(env.Stdout, "log %s: warning: %s\n", id, w.Warning)
			}
		}
		if rep.OK() {
			fmt.Fprintf(env.Stdout, "log %s: OK, %d entries, %d seals, %d checkpoints, vouched to %d, root %s\n",
				id, rep.Size, rep.Seals, rep.Checkpoints, rep.Vouched, base64.StdEncoding.EncodeToString(rep.Root))
			continue
		}
		bad++
		if first, ok := rep.First(); ok {
			fmt.Fprintf(env.Stdout, "log %s: TAMPERED: first bad entry %d: %s\n", id, first.Seq, first)
			for _, p := range rep.Problems {
				fmt.Fprintf(env.Stdout, "  %s\n", p)
			}
		} else {
			fmt.Fprintf(env.Stdout, "log %s: NOT VERIFIED: a witness cannot vouch for it\n", id)
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d audit logs failed verification", bad, len(ids))
	}
	return nil
}

// openForReading opens the database for a verifier: nothing is created or
// migrated, and a schema this binary does not expect is refused.
func openForReading(ctx context.Context, cfg *Config) (*sqlstore.DB, error) {
	if !sqlstore.IsPostgresURL(cfg.DB) {
		if _, err := os.Stat(strings.TrimPrefix(cfg.DB, "sqlite://")); err != nil {
			return nil, fmt.Errorf("--db: no database at %s", cfg.DB)
		}
	}
	db, err := sqlstore.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	if err := db.Ready(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("--db: %s", oneLine(err))
	}
	return db, nil
}

func runAuditCheckpoint(ctx context.Context, env *Env, args []string) error {
	cfg, err := auditFlags(env, "checkpoint", "Checks every audit log, signs a checkpoint of each and publishes it to the witnesses.", args, nil)
	if err != nil {
		return err
	}
	st, err := openAuditStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	ids, err := st.logIDs(ctx, cfg.auditLog)
	if err != nil {
		return err
	}
	for _, id := range ids {
		cp, err := st.audit.Checkpoint(ctx, id)
		if err != nil {
			return fmt.Errorf("log %s: %s", id, oneLine(err))
		}
		fmt.Fprintf(env.Stdout, "log %s: checkpoint at size %d\n%s\n", id, cp.Size, strings.TrimSpace(string(cp.Note)))
	}
	return nil
}

// exportLine is one line of `haven audit export`.
type exportLine struct {
	Log        string      `json:"log"`
	Event      audit.Event `json:"event"`
	LeafHash   []byte      `json:"leaf_hash"`
	TreeSize   uint64      `json:"tree_size"`
	Proof      [][]byte    `json:"inclusion_proof"`
	Checkpoint string      `json:"checkpoint,omitempty"` // on the first line of each log
}

func runAuditExport(ctx context.Context, env *Env, args []string) error {
	cfg, err := auditFlags(env, "export", "Writes audit logs to standard output as JSON lines: each event with its leaf hash and\nits inclusion proof against a freshly signed checkpoint (on each log's first line).", args, nil)
	if err != nil {
		return err
	}
	st, err := openAuditStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	ids, err := st.logIDs(ctx, cfg.auditLog)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.Stdout)
	for _, id := range ids {
		cp, err := st.audit.Checkpoint(ctx, id)
		if err != nil {
			return fmt.Errorf("log %s: %s", id, oneLine(err))
		}
		first := true
		for from := uint64(0); from < cp.Size; from += 1000 {
			entries, err := st.db.Entries(ctx, id, from, min(from+1000, cp.Size))
			if err != nil {
				return err
			}
			for _, e := range entries {
				proof, err := st.audit.InclusionProof(ctx, id, e.Seq, cp.Size)
				if err != nil {
					return err
				}
				line := exportLine{Log: id, Event: e.Event, LeafHash: e.LeafHash, TreeSize: cp.Size, Proof: proof}
				if first {
					line.Checkpoint, first = string(cp.Note), false
				}
				if err := enc.Encode(line); err != nil {
					if errors.Is(err, os.ErrClosed) {
						return nil
					}
					return err
				}
			}
		}
	}
	return nil
}

func runAuditLogKeys(ctx context.Context, env *Env, args []string) error {
	var verifierKey string
	cfg, err := auditFlags(env, "log-keys", "Prints each audit log's origin and the verifier key its checkpoints are signed under,\n"+
		"one log per line, for a witness to trust (c2sp.org/tlog-witness witnesses know logs by origin).", args, func(fs *flag.FlagSet) {
		fs.StringVar(&verifierKey, "verifier-key", "", "the audit verifier key file (default audit.pub beside --audit-key); its first key is used")
	})
	if err != nil {
		return err
	}
	if verifierKey == "" {
		verifierKey = verifierKeyPath(cfg.AuditKey)
	}
	b, err := os.ReadFile(verifierKey)
	if err != nil {
		return fmt.Errorf("--verifier-key: cannot read %s: %v", verifierKey, errShort(err))
	}
	key := strings.TrimSpace(strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)[0])
	ids := []string{cfg.auditLog}
	if cfg.auditLog == "" {
		db, err := openForReading(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		if ids, err = auditLogIDs(ctx, db, nil); err != nil {
			return err
		}
		ids = append(ids, audit.PlatformLogID)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		k, err := audit.LogVerifierKey(key, id)
		if err != nil {
			return fmt.Errorf("--verifier-key: %s", oneLine(err))
		}
		fmt.Fprintf(env.Stdout, "%s %s\n", strings.SplitN(k, "+", 2)[0], k)
	}
	return nil
}

// runAuditRotateKey replaces the audit signing key. Every log is checked
// and checkpointed under the old key; a hand-over naming each log's size,
// signed by both keys, is stored; the rotation is appended to the platform
// log under the new key; every log is checkpointed under the new key and
// published; then the key files are swapped (the old one kept as
// audit.key.retired-<id>) and the new verifier key is added to audit.pub.
// A crash at any point is finished by running it again.
func runAuditRotateKey(ctx context.Context, env *Env, args []string) error {
	cfg, err := auditFlags(env, "rotate-key", "Replaces the audit signing key with a new one. Verification continues across the\n"+
		"rotation: both keys sign a hand-over recording each log's size, which verifiers follow\n"+
		"from the key they hold. The old key signs nothing after it. Stop every server first,\n"+
		"and have each network witness trust the new log keys (haven audit log-keys) before.", args, nil)
	if err != nil {
		return err
	}
	if cfg.auditLog != "" {
		return errors.New("--log: a key rotation covers every log")
	}
	nextPath := cfg.AuditKey + ".new"
	db, err := sqlstore.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	old, err := audit.LoadSigner(cfg.AuditKey)
	if err != nil {
		return fmt.Errorf("--audit-key: %s", oneLine(err))
	}
	if _, err := os.Stat(nextPath); errors.Is(err, os.ErrNotExist) {
		priv, _, err := audit.GenerateKey(old.Name())
		if err != nil {
			return err
		}
		if err := audit.WriteKeyFile(nextPath, priv); err != nil {
			return fmt.Errorf("--audit-key: %s", oneLine(err))
		}
	}
	next, err := audit.LoadSigner(nextPath)
	if err != nil {
		return fmt.Errorf("--audit-key: the key being rotated to: %s", oneLine(err))
	}
	pubPath := verifierKeyPath(cfg.AuditKey)
	anchor, err := os.ReadFile(pubPath)
	if err != nil {
		return fmt.Errorf("--audit-key: cannot read %s: %v", pubPath, errShort(err))
	}
	trust, err := loadTrust(ctx, db, string(anchor))
	if err != nil {
		return fmt.Errorf("%s: %s", pubPath, oneLine(err))
	}
	witnesses, err := cfg.witnesses(true)
	if err != nil {
		return err
	}
	st := &stack{db: db, witnesses: witnesses}
	if err := trust.Current(old.VerifierKey()); err == nil {
		// Not handed over yet: check and close every log under the old key.
		st.signer, st.trust = old, trust
		st.audit = audit.NewLog(db, audit.Options{Signer: old, Trust: trust, Witnesses: witnesses})
		if err := st.checkAuditLogs(ctx, env, cfg); err != nil {
			return err
		}
		ids, err := auditLogIDs(ctx, db, witnesses)
		if err != nil {
			return err
		}
		sizes := map[string]uint64{}
		for _, id := range ids {
			if sizes[id], err = st.audit.Size(ctx, id); err != nil {
				return fmt.Errorf("log %s: %s", id, oneLine(err))
			}
		}
		st.audit.Close()
		handover, err := audit.SignHandover(old, next, sizes)
		if err != nil {
			return err
		}
		if err := db.PutHandover(ctx, old.VerifierKey(), handover); err != nil {
			return fmt.Errorf("cannot record the hand-over: %s", oneLine(err))
		}
		if trust, err = loadTrust(ctx, db, string(anchor)); err != nil {
			return err
		}
	}
	if err := trust.Current(next.VerifierKey()); err != nil {
		return fmt.Errorf("--audit-key: the old key was handed over to another key than %s: %s", nextPath, oneLine(err))
	}
	st.signer, st.trust, st.verifier = next, trust, next.VerifierKey()
	st.audit = audit.NewLog(db, audit.Options{Signer: next, Trust: trust, Witnesses: witnesses})
	defer st.audit.Close()
	ev := audit.Event{LogID: audit.PlatformLogID, ActorID: "operator-cli", ActorRole: string(haven.RolePlatformOperator),
		Action: "audit.rotate_key", ResourceKind: "audit_key", ResourceID: strings.ReplaceAll(next.ID(), "+", ":"),
		Purpose: audit.PurposeOperations, Decision: haven.DecisionAllow}
	if _, err := st.audit.Append(ctx, ev); err != nil {
		return fmt.Errorf("cannot audit the rotation: %s", oneLine(err))
	}
	if err := st.checkAuditLogs(ctx, env, cfg); err != nil {
		return err
	}
	retired := cfg.AuditKey + ".retired-" + strings.ReplaceAll(old.ID(), "+", "-")
	if err := os.Rename(cfg.AuditKey, retired); err != nil {
		return fmt.Errorf("--audit-key: %v", errShort(err))
	}
	if err := os.Rename(nextPath, cfg.AuditKey); err != nil {
		return fmt.Errorf("--audit-key: %v", errShort(err))
	}
	keys := strings.TrimSpace(string(anchor)) + "\n" + next.VerifierKey() + "\n"
	if err := writeFileAtomic(pubPath, []byte(keys), 0o644); err != nil {
		return fmt.Errorf("--audit-key: %v", errShort(err))
	}
	env.Logger.Warn("audit key rotated", "old", old.ID(), "new", next.ID(), "retired_file", filepath.Base(retired))
	fmt.Fprintf(env.Stdout, "audit key rotated: %s -> %s\nthe hand-over is recorded; the old key is kept as %s\n"+
		"%s now lists both verifier keys; give auditors the new one:\n%s\n", old.ID(), next.ID(), retired, pubPath, next.VerifierKey())
	return nil
}

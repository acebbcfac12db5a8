package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"haven/keyring"
	"haven/store/sqlstore"
)

func init() {
	commands["keys"] = command{"show, rotate or shred keys of the encryption hierarchy", runKeys}
	commands["legal-hold"] = command{"place or lift a legal hold on a patient (blocks erasure)", runLegalHold}
}

func runKeys(ctx context.Context, env *Env, args []string) error {
	sub := map[string]func(context.Context, *Env, []string) error{"status": runKeysStatus, "rotate": runKeysRotate, "shred": runKeysShred}
	if len(args) == 0 || sub[args[0]] == nil {
		fmt.Fprintln(env.Stderr, "Usage: haven keys status|rotate|shred [flags]\n\n"+
			"  status   the root, each practice's key versions and states, and data key counts (no key material)\n"+
			"  rotate   new practice key versions (--practice ID or --all), or a new root key (--root);\n"+
			"           online and resumable: run it again after a crash\n"+
			"  shred    destroy one patient's data key (--patient ID): their data, in every copy, can never be\n"+
			"           opened again; refused under a legal hold")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errUsage
	}
	return sub[args[0]](ctx, env, args[1:])
}

// keysFlags parses cfg's shared flags plus extra ones and validates.
func keysFlags(env *Env, name, synopsis string, args []string, extra func(*flag.FlagSet)) (*Config, error) {
	var cfg Config
	fs := newFlagSet(env, name, synopsis)
	if err := cfg.register(fs, false); err != nil {
		return nil, err
	}
	if extra != nil {
		extra(fs)
	}
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	return &cfg, cfg.validate(false)
}

func runKeysStatus(ctx context.Context, env *Env, args []string) error {
	cfg, err := keysFlags(env, "keys status", "Shows the key hierarchy: no key material, only ids, versions, states and counts.", args, nil)
	if err != nil {
		return err
	}
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := st.keys.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "root %s (%d keys wrapped)\n", rep.Root, rep.RootUse[rep.Root])
	for _, old := range rep.OldRoots {
		if rep.RootUse[old] > 0 {
			fmt.Fprintf(env.Stdout, "old root %s (%d keys still wrapped: a root rotation is unfinished)\n", old, rep.RootUse[old])
		} else {
			fmt.Fprintf(env.Stdout, "other root %s loaded (wraps no key: prepared for a rotation)\n", old)
		}
	}
	for id, n := range rep.RootUse {
		if n > 0 && id != rep.Root && !slices.Contains(rep.OldRoots, id) {
			fmt.Fprintf(env.Stdout, "old root %s (%d keys still wrapped) is not loaded here\n", id, n)
		}
	}
	for _, p := range rep.Practices {
		fmt.Fprintf(env.Stdout, "practice %s: %d data keys, %d destroyed\n", p.PracticeID, p.DataKeys, p.DestroyedDataKeys)
		for _, k := range p.Keys {
			fmt.Fprintf(env.Stdout, "  %-8s v%-3d %-9s %s  wraps %d data keys, created %s\n", k.Kind, k.Version, k.State, k.ID, k.DataKeys, k.CreatedAt.Format(time.RFC3339))
		}
	}
	return nil
}

// progressBar draws rotation progress on w, one line rewritten in place.
func progressBar(w io.Writer, label string) func(done, total int) {
	return func(done, total int) {
		const width = 30
		filled := width
		if total > 0 {
			filled = done * width / total
		}
		fmt.Fprintf(w, "\r%s [%s%s] %d/%d", label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total)
		if done >= total {
			fmt.Fprintln(w)
		}
	}
}

func runKeysRotate(ctx context.Context, env *Env, args []string) error {
	var practice string
	var all, root, prepare bool
	cfg, err := keysFlags(env, "keys rotate", "Rotates keys online: running servers keep serving and follow at once. With --practice\n"+
		"or --all: a new practice key version re-wraps the practice's data keys (data is not\n"+
		"re-encrypted), then the old version retires. With --root and --kms: after the key was\n"+
		"rotated in the KMS, every practice key is wrapped again under its newest version. With\n"+
		"--root and a root key file: a new root key file\n"+
		"(<root-key>.new) re-wraps every practice key, then replaces the old file, which is kept\n"+
		"as <root-key>.retired-<time> for you to destroy once backups no longer need it. A running\n"+
		"server loads the new root from <root-key>.new or <root-key> when it first meets it.\n"+
		"Several nodes: run with --root --prepare first, copy <root-key>.new to every other node's\n"+
		"<root-key>.new (mode 0600), then run with --root.\n"+
		"Interrupted? Run the same command again: it continues.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&practice, "practice", "", "rotate this practice's key")
		fs.BoolVar(&all, "all", false, "rotate every practice's key")
		fs.BoolVar(&root, "root", false, "rotate the root key")
		fs.BoolVar(&prepare, "prepare", false, "with --root: only make <root-key>.new, to copy to the other nodes first")
	})
	if err != nil {
		return err
	}
	if (practice != "") == all == !root || (root && (practice != "" || all)) {
		return errors.New("give exactly one of --practice ID, --all or --root")
	}
	if prepare && !root {
		return errors.New("--prepare goes with --root")
	}
	if root {
		return rotateRoot(ctx, env, cfg, prepare)
	}
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	ids := []string{practice}
	if all {
		ps, err := st.db.ListPractices(ctx)
		if err != nil {
			return err
		}
		ids = ids[:0]
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
	}
	for _, id := range ids {
		if err := st.svc.RecordKeyOperation(ctx, id, "keys.rotate_practice"); err != nil {
			return err
		}
		if err := st.keys.RotatePracticeKey(ctx, id, progressBar(env.Stderr, "practice "+id)); err != nil {
			return fmt.Errorf("practice %s: %s", id, oneLine(err))
		}
		fmt.Fprintf(env.Stdout, "practice %s: new key version active, old version retired\n", id)
	}
	analyzeAfterBulkChange(ctx, env, st.db)
	return nil
}

// analyzeAfterBulkChange refreshes the database's statistics after a
// command rewrote many rows (see sqlstore.Analyze). The change is done and
// committed: a failure here is only reported.
func analyzeAfterBulkChange(ctx context.Context, env *Env, db *sqlstore.DB) {
	if err := db.Analyze(ctx); err != nil {
		env.Logger.Warn("refreshing the database statistics", "err", oneLine(err))
	}
}

// rotateRoot makes (or, after a crash or --prepare, reuses)
// <root-key>.new, records it as the key store's current root, re-wraps
// every practice and index key under it with the old root still able to
// unwrap, and only when that has finished swaps the files. Running nodes
// follow on their next use of a key: from the moment the new root is
// recorded they wrap new keys under it and unwrap with it, loading it from
// their own <root-key>.new or <root-key>.
func rotateRoot(ctx context.Context, env *Env, cfg *Config, prepare bool) error {
	if cfg.KMS != "" {
		if prepare {
			return errors.New("--prepare is for a root key file; with --kms, rotate the key in the KMS, then run haven keys rotate --root")
		}
		return rewrapUnderKMS(ctx, env, cfg)
	}
	next := cfg.RootKey + ".new"
	if _, err := os.Stat(next); errors.Is(err, fs.ErrNotExist) {
		r, err := keyring.OpenLocalRoot(next, []byte(cfg.RootPassphrase), true)
		if err != nil {
			return fmt.Errorf("new root key %s: %s", next, oneLine(err))
		}
		r.Close()
	}
	if prepare {
		r, err := keyring.OpenLocalRoot(next, []byte(cfg.RootPassphrase), false)
		if err != nil {
			return fmt.Errorf("new root key %s: %s", next, oneLine(err))
		}
		defer r.Close()
		fmt.Fprintf(env.Stdout, "new root %s is ready at %s; nothing is re-wrapped yet.\n"+
			"Copy that file to <root-key>.new on every other node (mode 0600, owned by Haven's user), then run\n"+
			"haven keys rotate --root here.\n", r.ID(), next)
		return nil
	}
	st, err := openStack(ctx, env, cfg) // loads next as a further root
	if err != nil {
		return err
	}
	defer st.Close()
	newRoot := st.nextRoot
	if err := st.svc.RecordKeyOperation(ctx, "", "keys.rotate_root"); err != nil {
		return err
	}
	if err := st.keys.RotateRoot(ctx, newRoot, progressBar(env.Stderr, "root")); err != nil {
		return fmt.Errorf("root rotation stopped (run the command again to continue): %s", oneLine(err))
	}
	analyzeAfterBulkChange(ctx, env, st.db)
	retired := fmt.Sprintf("%s.retired-%s", cfg.RootKey, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(cfg.RootKey, retired); err != nil {
		return err
	}
	if err := os.Rename(next, cfg.RootKey); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "root rotated to %s; the old root is at %s: destroy it once no backup needs it\n"+
		"(other nodes use the copy in their <root-key>.new; run this command there too to swap their files)\n", newRoot.ID(), retired)
	return nil
}

// rewrapUnderKMS is root rotation with the root in a KMS that versions
// its key (Vault transit): the operator rotates the key there, and this
// wraps every practice and index key again, so the KMS seals each with its
// newest version. Only then may the older versions be stopped from
// decrypting (in Vault, the key's min_decryption_version); before, a node
// would fail closed on a key still sealed by one of them.
func rewrapUnderKMS(ctx context.Context, env *Env, cfg *Config) error {
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.svc.RecordKeyOperation(ctx, "", "keys.rotate_root"); err != nil {
		return err
	}
	if err := st.keys.RewrapUnderRoot(ctx, progressBar(env.Stderr, "root")); err != nil {
		return fmt.Errorf("root rotation stopped (run the command again to continue): %s", oneLine(err))
	}
	analyzeAfterBulkChange(ctx, env, st.db)
	fmt.Fprintf(env.Stdout, "every practice and index key is wrapped again by %s under its newest key version;\n"+
		"older versions of that key may now be stopped from decrypting\n", st.root.ID())
	return nil
}

func runKeysShred(ctx context.Context, env *Env, args []string) error {
	var patient string
	cfg, err := keysFlags(env, "keys shred", "Destroys one patient's data key (crypto-shredding): every sealed field and file of\n"+
		"theirs, in the database, the blob store and every backup, becomes unreadable. Refused\n"+
		"while a legal hold applies. This cannot be undone.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&patient, "patient", "", "the patient id")
	})
	if err != nil {
		return err
	}
	if patient == "" {
		return errors.New("--patient is required")
	}
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.svc.ErasePatient(ctx, patient); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "patient %s: data key destroyed; their records can no longer be opened\n", patient)
	return nil
}

func runLegalHold(ctx context.Context, env *Env, args []string) error {
	var patient string
	var lift bool
	cfg, err := keysFlags(env, "legal-hold", "Places (or with --lift, lifts) a legal hold on a patient. While it holds, the patient\ncannot be erased.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&patient, "patient", "", "the patient id")
		fs.BoolVar(&lift, "lift", false, "lift the hold instead of placing it")
	})
	if err != nil {
		return err
	}
	if patient == "" {
		return errors.New("--patient is required")
	}
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.svc.SetLegalHold(ctx, patient, !lift); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "patient %s: legal hold %s\n", patient, map[bool]string{true: "lifted", false: "placed"}[lift])
	return nil
}

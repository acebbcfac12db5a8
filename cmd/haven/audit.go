package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"haven/audit"
)

func init() {
	commands["audit"] = command{"verify, checkpoint or export the tamper-evident audit log", runAudit}
}

func runAudit(ctx context.Context, env *Env, args []string) error {
	sub := map[string]func(context.Context, *Env, []string) error{
		"verify": runAuditVerify, "checkpoint": runAuditCheckpoint, "export": runAuditExport,
	}
	if len(args) == 0 || sub[args[0]] == nil {
		fmt.Fprintln(env.Stderr, "Usage: haven audit verify|checkpoint|export [flags]\n\n"+
			"  verify      recompute every log's Merkle tree, check every signed checkpoint and the witness;\n"+
			"              exit 1 naming the first bad entry on any edit, deletion, insertion, reordering or rollback\n"+
			"  checkpoint  sign and publish a checkpoint of every log now\n"+
			"  export      write a log as JSON lines, each event with its inclusion proof")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errUsage
	}
	return sub[args[0]](ctx, env, args[1:])
}

// auditStack parses the flags the audit subcommands share and opens the
// stack.
func auditStack(ctx context.Context, env *Env, name, synopsis string, args []string) (*stack, *Config, error) {
	var cfg Config
	fs := newFlagSet(env, "audit "+name, synopsis)
	if err := cfg.register(fs, false); err != nil {
		return nil, nil, err
	}
	var logID string
	fs.StringVar(&logID, "log", "", "one log id (a practice id, or \"platform\"); default every log")
	if err := parse(fs, args); err != nil {
		return nil, nil, err
	}
	if err := cfg.validate(false); err != nil {
		return nil, nil, err
	}
	st, err := openStack(ctx, env, &cfg)
	if err != nil {
		return nil, nil, err
	}
	cfg.auditLog = logID
	return st, &cfg, nil
}

func (s *stack) logIDs(ctx context.Context, only string) ([]string, error) {
	if only != "" {
		return []string{only}, nil
	}
	return s.db.Logs(ctx)
}

func runAuditVerify(ctx context.Context, env *Env, args []string) error {
	st, cfg, err := auditStack(ctx, env, "verify", "Verifies the audit logs from scratch: every leaf recomputed from its row, the Merkle\ntree rebuilt, every stored and witnessed checkpoint's signature and root checked.\nExits 1 on any problem, naming the first bad entry.", args)
	if err != nil {
		return err
	}
	defer st.Close()
	ids, err := st.logIDs(ctx, cfg.auditLog)
	if err != nil {
		return err
	}
	bad := 0
	for _, id := range ids {
		var witnessed [][]byte
		if dw, ok := st.witness.(audit.DirWitness); ok {
			if witnessed, err = dw.Checkpoints(id); err != nil {
				return fmt.Errorf("witness of log %s: %s", id, oneLine(err))
			}
		}
		rep, err := audit.Verify(ctx, st.db, id, st.verifier, witnessed)
		if err != nil {
			return fmt.Errorf("log %s: %s", id, oneLine(err))
		}
		if rep.OK() {
			fmt.Fprintf(env.Stdout, "log %s: OK, %d entries, %d checkpoints, vouched to %d, root %s\n",
				id, rep.Size, rep.Checkpoints, rep.Vouched, base64.StdEncoding.EncodeToString(rep.Root))
			continue
		}
		bad++
		first, _ := rep.First()
		fmt.Fprintf(env.Stdout, "log %s: TAMPERED: first bad entry %d: %s\n", id, first.Seq, first)
		for _, p := range rep.Problems {
			fmt.Fprintf(env.Stdout, "  %s\n", p)
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d audit logs failed verification", bad, len(ids))
	}
	return nil
}

func runAuditCheckpoint(ctx context.Context, env *Env, args []string) error {
	st, cfg, err := auditStack(ctx, env, "checkpoint", "Signs a checkpoint of every audit log now and publishes it to the witness.", args)
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
	st, cfg, err := auditStack(ctx, env, "export", "Writes audit logs to standard output as JSON lines: each event with its leaf hash and\nits inclusion proof against a freshly signed checkpoint (on each log's first line).", args)
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

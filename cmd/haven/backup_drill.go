package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"haven"
)

// runBackupDrill proves the contingency plan: it restores the latest
// backup into a scratch place exactly as a real restore would (verified in
// full, erasures re-applied), verifies the restored audit logs with the
// same check as `haven audit verify`, opens a sample of charts and files, and stores
// the time all that took (the recovery time) as evidence in the live
// instance, audited, for the compliance officer's page. A failed drill is
// recorded too: a plan that does not work is what the evidence is for.
func runBackupDrill(ctx context.Context, env *Env, args []string) error {
	var in, scratchDB string
	var sample int
	cfg, bs, err := backupFlags(env, "backup drill", "Restores the latest backup (--in: a backup file, or a directory of them: the newest is\n"+
		"taken) into a scratch directory, verifies its audit logs, opens a sample of charts and\n"+
		"files of every practice, and records the recovery time in this instance (the data flags name it)\n"+
		"for the compliance page. A PostgreSQL backup needs --scratch-db, an empty database (the\n"+
		"restored copy stays in it; drop and re-create it before the next drill). The scratch\n"+
		"directory is removed afterwards.", args, true, func(fs *flag.FlagSet) {
		fs.StringVar(&in, "in", "", "a backup file, or a directory of backups (the newest is drilled)")
		fs.StringVar(&scratchDB, "scratch-db", "", "an empty PostgreSQL database to restore a PostgreSQL backup into; the copy stays there: drop and re-create the database before the next drill")
		fs.IntVar(&sample, "sample", 5, "charts to open in each practice (with each one's newest file)")
	})
	if err != nil {
		return err
	}
	if in == "" {
		return errors.New("--in is required")
	}
	file, err := latestBackup(in)
	if err != nil {
		return err
	}
	start := time.Now()
	d := haven.RestoreDrill{ID: haven.NewID(), StartedAt: start.UTC(), BackupBytes: fileSize(file)}
	drillErr := drill(ctx, env, cfg, bs, file, scratchDB, sample, &d)
	d.Duration = time.Since(start)
	d.OK = drillErr == nil
	if drillErr != nil {
		d.Failure = oneLine(drillErr)
	}
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return fmt.Errorf("the drill is done but cannot be recorded: %s", oneLine(err))
	}
	defer st.Close()
	if err := st.svc.RecordRestoreDrill(ctx, d); err != nil {
		return fmt.Errorf("the drill is done but cannot be recorded: %s", oneLine(err))
	}
	if drillErr != nil {
		return fmt.Errorf("restore drill FAILED after %s (recorded): %s", d.Duration.Round(time.Millisecond), d.Failure)
	}
	fmt.Fprintf(env.Stdout, "restore drill OK in %s (recorded): backup made %s restored, %d audit logs verified, %d records opened\n",
		d.Duration.Round(time.Millisecond), d.BackupCreated.Format(time.RFC3339), d.AuditLogs, d.RecordsOpened)
	return nil
}

// latestBackup returns in if it is a file, or the most recently modified
// file in the directory in.
func latestBackup(in string) (string, error) {
	info, err := os.Stat(in)
	if err != nil {
		return "", fmt.Errorf("--in: %v", errShort(err))
	}
	if !info.IsDir() {
		return in, nil
	}
	entries, err := os.ReadDir(in)
	if err != nil {
		return "", fmt.Errorf("--in: %v", errShort(err))
	}
	var best string
	var bestTime time.Time
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if best == "" || fi.ModTime().After(bestTime) {
			best, bestTime = filepath.Join(in, e.Name()), fi.ModTime()
		}
	}
	if best == "" {
		return "", fmt.Errorf("--in: no backup in %s", in)
	}
	return best, nil
}

// drill restores file into a scratch directory (and scratchDB, for a
// PostgreSQL backup) and checks it, filling d's counts.
func drill(ctx context.Context, env *Env, live *Config, bs *backupSettings, file, scratchDB string, sample int, d *haven.RestoreDrill) error {
	scratch, err := os.MkdirTemp("", "haven-drill-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	// The live instance's keys open the restored data, and its erasure
	// ledger is re-applied to it, as in a real restore; everything else
	// is the scratch directory's.
	sc := &Config{DataDir: scratch, DB: scratchDB, RootKey: live.RootKey, RootPassphrase: live.RootPassphrase, KMS: live.KMS,
		AuditKey: live.AuditKey, ErasureLedger: live.ErasureLedger}
	if err := sc.validate(false); err != nil {
		return err
	}
	res, err := restoreBackup(ctx, env, sc, bs, file)
	if err != nil {
		return err
	}
	d.BackupCreated = res.manifest.Created
	d.RecordsOpened, err = res.st.svc.OpenDrillSample(ctx, sample)
	res.st.Close()
	if err != nil {
		return err
	}
	// The same check as `haven audit verify`, over the restored logs
	// (the sample's openings included).
	var out bytes.Buffer
	venv := &Env{Stdout: &out, Stderr: io.Discard, Logger: env.Logger}
	vargs := []string{"--data-dir", scratch, "--db", sc.DB, "--audit-key", sc.AuditKey, "--audit-witness", sc.AuditWitness}
	if err := runAuditVerify(ctx, venv, vargs); err != nil {
		return fmt.Errorf("the restored audit log does not verify: %s", oneLine(err))
	}
	d.AuditLogs = strings.Count(out.String(), ": OK,")
	return nil
}

// Command seed grows a stopped haven's database to the size of a busy
// clinic's, quickly, for bench/run's growth rows: patients (each with an
// account) written in bulk straight into the tables, and audit events
// appended to the first practice's log through the audit log itself, in
// large batches, so the log is one the server checks and serves as its
// own (every batch sealed under the server's audit key).
//
// The patients' sealed fields are random bytes: the growth rows read
// another patient's chart, and these rows are there to make the tables
// and their indexes as large as a clinic's, not to be opened.
//
//	go run ./bench/seed -data-dir DIR [-db URL] -patients 100000 -events 1000000
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/store/sqlstore"
)

func main() {
	dataDir := flag.String("data-dir", "", "the stopped server's data directory (its audit key, and its SQLite database unless -db)")
	dsn := flag.String("db", "", "the server's database URL, when not SQLite in the data directory")
	patients := flag.Int("patients", 0, "patients to add")
	events := flag.Int("events", 0, "audit events to append to the first practice's log")
	flag.Parse()
	if *dataDir == "" || *patients < 0 || *events < 0 {
		fmt.Fprintln(os.Stderr, "seed: need -data-dir, and -patients and -events of zero or more")
		os.Exit(2)
	}
	if err := run(context.Background(), *dataDir, *dsn, *patients, *events); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dataDir, dsn string, patients, events int) error {
	if dsn == "" {
		dsn = filepath.Join(dataDir, "haven.db")
	}
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ps, err := db.ListPractices(ctx)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return fmt.Errorf("no practice in %s: start the server with --demo once first", sqlstore.Redact(dsn))
	}
	practice := ps[0].ID
	start := time.Now()
	if err := addPatients(ctx, db, practice, patients); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "seed: %d patients in %s\n", patients, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := appendEvents(ctx, db, filepath.Join(dataDir, "keys", "audit.key"), practice, events); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "seed: %d audit events in %s\n", events, time.Since(start).Round(time.Millisecond))
	return nil
}

// rowsPerInsert bounds a multi-row INSERT on PostgreSQL: 500 rows of
// eight columns stay under its parameter limit.
const rowsPerInsert = 500

// addPatients inserts n patients with accounts in one transaction: on
// SQLite one prepared statement per table run per row (SQLite binds a
// many-row statement's parameters one by one, slower than running a short
// one again), on PostgreSQL multi-row INSERTs.
func addPatients(ctx context.Context, db *sqlstore.DB, practice string, n int) error {
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UTC()
	const userSQL = `INSERT INTO users (id, practice_id, role, email_index, email_sealed, password_hash, created_at) VALUES `
	const chartSQL = `INSERT INTO patients (id, practice_id, mrn_index, mrn_sealed, demographics_sealed, contact_sealed, created_at, updated_at) VALUES `
	user := func(id string) []any { return []any{id, practice, random(32), random(60), now} }
	chart := func(id string) []any {
		return []any{id, practice, random(32), random(40), random(120), random(120), now, now}
	}
	if db.Dialect() == sqlstore.SQLite {
		us, err := tx.PrepareContext(ctx, userSQL+`($1, $2, 'patient', $3, $4, '', $5)`)
		if err != nil {
			return err
		}
		cs, err := tx.PrepareContext(ctx, chartSQL+`($1, $2, $3, $4, $5, $6, $7, $8)`)
		if err != nil {
			return err
		}
		for range n {
			id := newID()
			if _, err := us.ExecContext(ctx, user(id)...); err != nil {
				return err
			}
			if _, err := cs.ExecContext(ctx, chart(id)...); err != nil {
				return err
			}
		}
		return tx.Commit()
	}
	for done := 0; done < n; {
		k := min(rowsPerInsert, n-done)
		var users, charts strings.Builder
		var uargs, cargs []any
		for i := range k {
			id := newID()
			if i > 0 {
				users.WriteByte(',')
				charts.WriteByte(',')
			}
			fmt.Fprintf(&users, "($%d,$%d,'patient',$%d,$%d,'',$%d)", len(uargs)+1, len(uargs)+2, len(uargs)+3, len(uargs)+4, len(uargs)+5)
			uargs = append(uargs, user(id)...)
			fmt.Fprintf(&charts, "($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)", len(cargs)+1, len(cargs)+2, len(cargs)+3, len(cargs)+4, len(cargs)+5, len(cargs)+6, len(cargs)+7, len(cargs)+8)
			cargs = append(cargs, chart(id)...)
		}
		if _, err := tx.ExecContext(ctx, userSQL+users.String(), uargs...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, chartSQL+charts.String(), cargs...); err != nil {
			return err
		}
		done += k
	}
	return tx.Commit()
}

func newID() string { return "seed-" + hex.EncodeToString(random(12)) }

// eventsPerAppend is how many events one append carries: one commit and
// one seal each.
const eventsPerAppend = 2000

// appendEvents appends n chart reads by the practice's first clinician-like
// actor (an id of its own) to the practice's log, under the server's key.
func appendEvents(ctx context.Context, db *sqlstore.DB, keyPath, practice string, n int) error {
	if n == 0 {
		return nil
	}
	signer, err := audit.LoadSigner(keyPath)
	if err != nil {
		return err
	}
	log := audit.NewLog(db, audit.Options{Signer: signer, MaxBatch: eventsPerAppend})
	defer log.Close()
	a := haven.Actor{UserID: "seed-reader", PracticeID: practice, Role: haven.RoleClinician, SessionID: "seed", ClientAddr: "127.0.0.1", RequestID: "seed"}
	for done := 0; done < n; {
		k := min(eventsPerAppend, n-done)
		evs := make([]audit.Event, k)
		for i := range evs {
			ev := audit.ForActor(a, "chart.read")
			ev.ResourceKind, ev.ResourceID, ev.PatientID = "chart", "seed-patient", "seed-patient"
			ev.Decision, ev.Purpose, ev.Reason = haven.DecisionAllow, "treatment", "care_team"
			evs[i] = ev
		}
		if _, err := log.Append(ctx, evs...); err != nil {
			return err
		}
		done += k
	}
	return nil
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

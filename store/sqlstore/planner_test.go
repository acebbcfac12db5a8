package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"haven/audit"
	"haven/internal/testkit"
)

// hotQueries are the statements every request (or every audit commit)
// runs: each must be answered through an index, however small the tables
// were when the engine last gathered statistics. nargs is how many
// parameters the statement takes.
var hotQueries = []struct {
	name  string
	sql   string
	nargs int
}{
	{"session by token", sessionByTokenSQL, 1},
	{"session and the patient it reads", sessionAndPatientSQL, 2},
	{"session touched", touchSessionSQL, 2},
	{"practice settings", practiceSettingsSQL, 1},
	{"patient", findPatientSQL, 1},
	{"care team", careTeamSQL, 1},
	{"break-glass grants", grantsOfPatientSQL, 1},
	{"visits of a patient", patientVisitsSQL, 1},
	{"patient facts", patientFactsSQL, 2},
	{"patient facts (SQLite's)", patientFactsSQLite, 2},
	{"patient facts without relations", patientRowFactsSQL, 2},
	{"audit head", lockHeadSQL, 1},
	{"audit head's edge again", `SELECT ` + edgeColumns + ` FROM audit_heads h WHERE h.log_id = $1`, 1},
	{"audit head moved", moveHeadSQL, 3},
	{"audit size", auditSizeSQL, 1},
	{"message's owner (FHIR read)", messageOwnerSQL, 1},
}

// scanAllowed names tables a plan may read whole: key_state holds one row
// by its CHECK constraint, whatever happens.
var scanAllowed = map[string]bool{"key_state": true}

// TestHotQueriesUseTheirIndexes gives the engine statistics taken from
// tiny tables (as after a fresh install, with autovacuum off), makes it
// plan every hot query the way a long-lived connection ends up running it
// (PostgreSQL: the generic plan of a prepared statement, which it keeps
// until the next ANALYZE), and requires every table in every plan to be
// reached through an index condition, never read whole.
func TestHotQueriesUseTheirIndexes(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d := openTiny(t, dsn)
			// Statistics from the tiny tables.
			// Statistics from the tiny tables, gathered the way Haven
			// itself does and then plainly, as an operator might.
			if err := d.Analyze(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := d.db.ExecContext(ctx, `ANALYZE`); err != nil {
				t.Fatal(err)
			}
			conn, err := d.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for i, q := range hotQueries {
				var problems []string
				if d.dialect == Postgres {
					problems = postgresGenericPlanProblems(t, conn, i, d.sql(q.sql), q.nargs)
				} else {
					problems = sqlitePlanProblems(t, conn, d.sql(q.sql), q.nargs)
				}
				for _, p := range problems {
					t.Errorf("%s: %s", q.name, p)
				}
			}
		})
	}
}

// openTiny opens dsn's database, migrated and seeded by seedTiny, closed
// when t ends.
func openTiny(t *testing.T, dsn string) *DB {
	t.Helper()
	ctx := context.Background()
	d, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	seedTiny(t, d)
	return d
}

// seedTiny puts a few rows in the hot tables, as a new install has.
func seedTiny(t *testing.T, d *DB) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO practices (id, name, created_at) VALUES ('pr1', 'P', CURRENT_TIMESTAMP)`,
		`INSERT INTO users (id, practice_id, role, email_index, email_sealed, password_hash, created_at) VALUES
			('u1', 'pr1', 'patient', X'01', X'01', '', CURRENT_TIMESTAMP), ('u2', 'pr1', 'clinician', X'02', X'02', '', CURRENT_TIMESTAMP)`,
		`INSERT INTO patients (id, practice_id, mrn_index, mrn_sealed, demographics_sealed, contact_sealed, created_at, updated_at)
			VALUES ('u1', 'pr1', X'01', X'01', X'01', X'01', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`,
		`INSERT INTO care_team (practice_id, patient_id, user_id, added_by, added_at) VALUES ('pr1', 'u1', 'u2', 'u2', CURRENT_TIMESTAMP)`,
		`INSERT INTO break_glass_grants (id, practice_id, patient_id, user_id, reason_sealed, starts_at, expires_at)
			VALUES ('g1', 'pr1', 'u1', 'u2', X'01', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`,
		`INSERT INTO visits (id, practice_id, patient_id, clinician_id, starts_at, ends_at, state, reason_sealed, booked_by, created_at)
			VALUES ('v1', 'pr1', 'u1', 'u2', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'booked', X'01', 'u2', CURRENT_TIMESTAMP)`,
		`INSERT INTO practice_settings (practice_id, settings, updated_at) VALUES ('pr1', '{}', CURRENT_TIMESTAMP)`,
		`INSERT INTO sessions (id, token_hash, user_id, practice_id, role, created_us, last_seen_us, auth_us, mfa, factor, client_addr, device_hash, device_label)
			VALUES ('s1', X'01', 'u1', 'pr1', 'patient', 0, 0, 0, FALSE, '', '', '', '')`,
		`INSERT INTO audit_events (log_id, seq, time_us, actor_id, actor_role, session_id, action, resource_kind, resource_id,
			patient_id, purpose, decision, reason, client_addr, request_id, leaf_hash)
			VALUES ('pr1', 0, 0, 'u1', '', '', 'chart.read', '', '', '', '', 'allow', '', '', '', X'01')`,
		`INSERT INTO audit_heads (log_id, size, last_leaf) VALUES ('pr1', 1, X'01')`,
	} {
		if d.dialect == Postgres {
			q = strings.ReplaceAll(strings.ReplaceAll(q, "X'01'", `'\x01'::bytea`), "X'02'", `'\x02'::bytea`)
		}
		if _, err := d.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// postgresGenericPlanProblems prepares q on conn and explains the generic
// plan PostgreSQL would keep for it.
func postgresGenericPlanProblems(t *testing.T, conn *sql.Conn, i int, q string, nargs int) []string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("hot_%d", i)
	if _, err := conn.ExecContext(ctx, `PREPARE `+name+` AS `+q); err != nil {
		t.Fatalf("PREPARE %s: %v", q, err)
	}
	defer conn.ExecContext(ctx, `DEALLOCATE `+name)
	if _, err := conn.ExecContext(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	args := strings.TrimSuffix(strings.Repeat("NULL, ", nargs), ", ")
	var out string
	if err := conn.QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) EXECUTE `+name+`(`+args+`)`).Scan(&out); err != nil {
		t.Fatalf("EXPLAIN %s: %v", q, err)
	}
	var plans []struct{ Plan pgPlan }
	if err := json.Unmarshal([]byte(out), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("EXPLAIN output %q: %v", out, err)
	}
	var problems []string
	plans[0].Plan.walk(func(n pgPlan) {
		if n.Relation == "" || scanAllowed[n.Relation] {
			return
		}
		switch {
		case n.Type == "Seq Scan":
			problems = append(problems, fmt.Sprintf("reads all of %s (Seq Scan)", n.Relation))
		case (n.Type == "Index Scan" || n.Type == "Index Only Scan") && n.IndexCond == "":
			problems = append(problems, fmt.Sprintf("reads all of %s through %s, with no index condition", n.Relation, n.Index))
		}
	})
	return problems
}

type pgPlan struct {
	Type      string   `json:"Node Type"`
	Relation  string   `json:"Relation Name"`
	Index     string   `json:"Index Name"`
	IndexCond string   `json:"Index Cond"`
	Plans     []pgPlan `json:"Plans"`
}

func (p pgPlan) walk(fn func(pgPlan)) {
	fn(p)
	for _, c := range p.Plans {
		c.walk(fn)
	}
}

// sqlitePlanProblems asks SQLite for q's plan, with values as its first
// arguments (NULL for the rest): every table must be a SEARCH (an index
// lookup), not a SCAN; a MATERIALIZED CTE's rows, which its own SEARCH
// found, may be read whole.
func sqlitePlanProblems(t *testing.T, conn *sql.Conn, q string, nargs int, values ...any) []string {
	t.Helper()
	args := make([]any, nargs)
	copy(args, values)
	rows, err := conn.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", q, err)
	}
	defer rows.Close()
	var scans []string
	materialized := map[string]bool{} // a CTE's few rows, found by its own SEARCH
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		if cte, ok := strings.CutPrefix(detail, "MATERIALIZE "); ok {
			materialized[cte] = true
		}
		if _, ok := strings.CutPrefix(detail, "SCAN "); ok {
			scans = append(scans, detail)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var problems []string
	for _, detail := range scans {
		table, _, _ := strings.Cut(strings.TrimPrefix(detail, "SCAN "), " ")
		if !scanAllowed[table] && !materialized[table] {
			problems = append(problems, "reads all of "+detail)
		}
	}
	return problems
}

// TestKeepsOwnStatistics: SQLite never does, so serve analyzes it hourly;
// PostgreSQL does exactly when its autovacuum is on.
func TestKeepsOwnStatistics(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d, err := Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			own, err := d.KeepsOwnStatistics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := false
			if d.dialect == Postgres {
				var on string
				if err := d.db.QueryRowContext(ctx, `SELECT current_setting('autovacuum')`).Scan(&on); err != nil {
					t.Fatal(err)
				}
				want = on == "on"
			}
			if own != want {
				t.Errorf("KeepsOwnStatistics = %v, want %v", own, want)
			}
		})
	}
}

// TestHotStatementInATransactionWithEveryConnectionWaiting: a transaction
// holding SQLite's write lock asks for a hot statement no one has
// prepared yet while every other connection of the pool waits in BEGIN
// for that lock. Preparing it on the pool would wait for a connection
// that only the lock's release frees, until the busy timeout failed every
// waiter (eight racing audit appends on a fresh store did exactly that);
// it must be prepared on the transaction's own connection at once.
func TestHotStatementInATransactionWithEveryConnectionWaiting(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, testkit.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	holder, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	waiters := d.db.Stats().MaxOpenConnections - 1
	done := make(chan error, waiters)
	for range waiters {
		go func() {
			tx, err := d.db.BeginTx(ctx, nil) // waits for holder's lock
			if err == nil {
				err = tx.Rollback()
			}
			done <- err
		}()
	}
	for d.db.Stats().InUse < waiters+1 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	st := d.txStmt(ctx, holder, `SELECT size FROM audit_heads WHERE log_id = $1`)
	waited := time.Since(start)
	if st == nil {
		t.Fatal("no statement prepared inside the transaction")
	}
	var size int64
	if err := st.QueryRowContext(ctx, "nobody").Scan(&size); err != sql.ErrNoRows {
		t.Fatalf("the statement ran with %v", err)
	}
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	for range waiters {
		if err := <-done; err != nil {
			t.Errorf("a transaction waiting for the lock: %v", err)
		}
	}
	// The busy timeout is 10 s: a statement that needed a free connection
	// would have come back only when the waiters gave up.
	if waited > 5*time.Second {
		t.Errorf("preparing took %v: it waited for the pool", waited)
	}
}

// TestHotQueriesReadFewRowsInABigUnanalyzedDatabase is the growth case
// issue 19 measured: statistics gathered while the tables were tiny (as
// after a fresh install, with autovacuum off), then a hundred thousand
// audit events and thousands of accounts, patients and sessions stored
// without any ANALYZE. Every hot statement, the audit append's included,
// is then run with real arguments, the way a long-lived connection runs it
// (PostgreSQL: its generic plan, kept until the next ANALYZE), and must
// read a handful of rows: what it answers, never the log or the tables.
// PostgreSQL counts the rows each plan node read (EXPLAIN ANALYZE, inside
// a transaction rolled back); SQLite names each table's access, which
// must be a SEARCH by key.
func TestHotQueriesReadFewRowsInABigUnanalyzedDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds a large database")
	}
	const accounts, events = 5000, 100000
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d := openTiny(t, dsn)
			if err := d.Analyze(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := d.db.ExecContext(ctx, `ANALYZE`); err != nil {
				t.Fatal(err)
			}
			seedBig(t, d, accounts, events)

			hash := []byte{1}
			calls := []struct {
				name string
				sql  string
				args []any
			}{
				{"session by token", sessionByTokenSQL, []any{hash}},
				{"session touched", touchSessionSQL, []any{int64(1), "s1"}},
				{"practice settings", practiceSettingsSQL, []any{"pr1"}},
				{"patient", findPatientSQL, []any{"u1"}},
				{"care team", careTeamSQL, []any{"u1"}},
				{"break-glass grants", grantsOfPatientSQL, []any{"u1"}},
				{"visits of a patient", patientVisitsSQL, []any{"u1"}},
				{"patient facts", d.factsSQL(WithRelations), []any{"u1", "pr1"}},
				{"patient facts without relations", d.factsSQL(WithoutRelations), []any{"u1", "pr1"}},
				{"key state", keyStateSQL, nil},
				{"audit head", lockHeadSQL, []any{"pr1"}},
				{"audit head's edge again", `SELECT ` + edgeColumns + ` FROM audit_heads h WHERE h.log_id = $1`, []any{"pr1"}},
				{"audit head moved", moveHeadSQL, []any{int64(events + 1), hash, "pr1"}},
				{"audit size", auditSizeSQL, []any{"pr1"}},
			}
			if d.dialect == Postgres {
				// The usual append in one statement (appendAtHead), of one
				// row at the log's end.
				row := []any{int64(events + 2), hash, "pr1", int64(events + 1)}
				e := audit.Event{Seq: events + 1, Time: time.UnixMicro(1), ActorID: "u1", Action: "chart.read", Decision: "allow"}
				row = append(row, auditArgs("pr1", &e, hash, hash)...)
				calls = append(calls, struct {
					name string
					sql  string
					args []any
				}{"audit append at the head", appendAtHeadSQL(1), row})
			}
			conn, err := d.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for i, c := range calls {
				if d.dialect == Postgres {
					read := postgresRowsRead(t, conn, i, d.sql(c.sql), c.args)
					t.Logf("%s: %d rows read", c.name, read)
					// The tiny seed's answers are a row or two per table.
					if read > 16 {
						t.Errorf("%s: read %d rows in a database of %d events and %d accounts", c.name, read, events, accounts)
					}
					continue
				}
				for _, p := range sqlitePlanProblems(t, conn, d.sql(c.sql), len(c.args), c.args...) {
					t.Errorf("%s: %s", c.name, p)
				}
			}
			// The slow path of Size (a head that disagrees with its rows)
			// reads from the end of the log's key, not the log.
			if d.dialect == Postgres {
				if read := postgresRowsRead(t, conn, len(calls), d.sql(auditLastSeqSQL), []any{"pr1"}); read > 4 {
					t.Errorf("the log's last row: read %d rows", read)
				}
			} else {
				for _, p := range sqlitePlanProblems(t, conn, auditLastSeqSQL, 1, "pr1") {
					t.Errorf("the log's last row: %s", p)
				}
			}
		})
	}
}

// seedBig adds accounts, patients, sessions, care team rows and visits (n
// of each) and events audit rows to the tiny seed's practice and log,
// straight into the tables, without analyzing them.
func seedBig(t *testing.T, d *DB, n, events int) {
	t.Helper()
	ctx := context.Background()
	blob := func(prefix string) string { // a distinct key per row
		if d.dialect == Postgres {
			return `convert_to('` + prefix + `' || i, 'UTF8')`
		}
		return `CAST('` + prefix + `' || i AS BLOB)`
	}
	series := func(n int) string {
		if d.dialect == Postgres {
			return fmt.Sprintf(`generate_series(1, %d) AS s(i)`, n)
		}
		return fmt.Sprintf(`(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d) SELECT i FROM s)`, n)
	}
	one := blob("x")
	for _, q := range []string{
		`INSERT INTO users (id, practice_id, role, email_index, email_sealed, password_hash, created_at)
			SELECT 'bu' || i, 'pr1', 'patient', ` + blob("e") + `, ` + one + `, '', CURRENT_TIMESTAMP FROM ` + series(n),
		`INSERT INTO patients (id, practice_id, mrn_index, mrn_sealed, demographics_sealed, contact_sealed, created_at, updated_at)
			SELECT 'bu' || i, 'pr1', ` + blob("m") + `, ` + one + `, ` + one + `, ` + one + `, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM ` + series(n),
		`INSERT INTO sessions (id, token_hash, user_id, practice_id, role, created_us, last_seen_us, auth_us, mfa, factor, client_addr, device_hash, device_label)
			SELECT 'bs' || i, ` + blob("t") + `, 'bu' || i, 'pr1', 'patient', 0, 0, 0, FALSE, '', '', '', '' FROM ` + series(n),
		`INSERT INTO care_team (practice_id, patient_id, user_id, added_by, added_at)
			SELECT 'pr1', 'bu' || i, 'u2', 'u2', CURRENT_TIMESTAMP FROM ` + series(n),
		`INSERT INTO visits (id, practice_id, patient_id, clinician_id, starts_at, ends_at, state, reason_sealed, booked_by, created_at)
			SELECT 'bv' || i, 'pr1', 'bu' || i, 'bu' || i, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'booked', ` + one + `, 'u2', CURRENT_TIMESTAMP FROM ` + series(n),
		`INSERT INTO audit_events (log_id, seq, time_us, actor_id, actor_role, session_id, action, resource_kind, resource_id,
			patient_id, purpose, decision, reason, client_addr, request_id, leaf_hash)
			SELECT 'pr1', i, i, 'bu' || (i % 100), '', '', 'chart.read', '', '', 'bu' || (i % 100), '', 'allow', '', '', '', ` + one + ` FROM ` + series(events),
		fmt.Sprintf(`UPDATE audit_heads SET size = %d, last_leaf = (SELECT leaf_hash FROM audit_events WHERE log_id = 'pr1' AND seq = %d) WHERE log_id = 'pr1'`, events+1, events),
	} {
		if _, err := d.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// postgresRowsRead runs q with args on conn under its generic plan, in a
// transaction it rolls back, and adds up the rows every plan node read
// from a table: those it returned and those its filter removed, each time
// it ran.
func postgresRowsRead(t *testing.T, conn *sql.Conn, i int, q string, args []any) int {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	name := fmt.Sprintf("big_%d", i)
	if _, err := tx.ExecContext(ctx, `PREPARE `+name+` AS `+q); err != nil {
		t.Fatalf("PREPARE %s: %v", q, err)
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	lits := make([]string, len(args))
	for j, a := range args {
		switch v := a.(type) {
		case string:
			lits[j] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		case []byte:
			lits[j] = fmt.Sprintf(`'\x%x'::bytea`, v)
		default:
			lits[j] = fmt.Sprint(v)
		}
	}
	call := name
	if len(lits) > 0 {
		call += "(" + strings.Join(lits, ", ") + ")"
	}
	var out string
	if err := tx.QueryRowContext(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE `+call).Scan(&out); err != nil {
		t.Fatalf("EXPLAIN ANALYZE %s: %v", q, err)
	}
	var plans []struct{ Plan pgRun }
	if err := json.Unmarshal([]byte(out), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("EXPLAIN output %q: %v", out, err)
	}
	if _, err := tx.ExecContext(ctx, `DEALLOCATE `+name); err != nil {
		t.Fatal(err)
	}
	read := 0.0
	plans[0].Plan.walk(func(n pgRun) {
		if n.Relation != "" {
			read += (n.Rows + n.Filtered + n.Rechecked) * n.Loops
		}
	})
	if read > 16 {
		t.Logf("%s", out)
	}
	return int(read)
}

type pgRun struct {
	Relation  string  `json:"Relation Name"`
	Rows      float64 `json:"Actual Rows"`
	Loops     float64 `json:"Actual Loops"`
	Filtered  float64 `json:"Rows Removed by Filter"`
	Rechecked float64 `json:"Rows Removed by Index Recheck"`
	Plans     []pgRun `json:"Plans"`
}

func (p pgRun) walk(fn func(pgRun)) {
	fn(p)
	for _, c := range p.Plans {
		c.walk(fn)
	}
}

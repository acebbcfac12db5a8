package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"haven/internal/testkit"
	"haven/store/sqlstore"
)

// TestMigratedSchemasAgree migrates an SQLite and a PostgreSQL database and
// compares what each engine reports about the result, table by table and
// column by column: column names in order, a normalized type, nullability,
// default, primary keys, foreign keys, and indexes (by name and columns for
// those a migration creates, by columns for those a constraint implies).
// One migration text serves both engines, but the engines read some SQL
// differently; this is where such a difference shows.
func TestMigratedSchemasAgree(t *testing.T) {
	ctx := context.Background()
	lite := mustOpen(t, testkit.SQLite(t))
	pg := mustOpen(t, testkit.Postgres(t))
	ls, ps := readSchema(t, lite), readSchema(t, pg)
	if len(ls) == 0 {
		t.Fatal("no tables read from SQLite")
	}
	if diff := schemaDiff(ls, ps); len(diff) > 0 {
		t.Fatalf("SQLite and PostgreSQL schemas differ after migrating:\n%s", strings.Join(diff, "\n"))
	}

	// The comparison must see a difference when there is one.
	for _, stmt := range []string{
		`ALTER TABLE practices ADD COLUMN stray TEXT`,
		`CREATE INDEX stray_index ON users (role)`,
	} {
		if _, err := lite.SQL().ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	diff := strings.Join(schemaDiff(readSchema(t, lite), ps), "\n")
	for _, want := range []string{"practices.stray", "stray_index"} {
		if !strings.Contains(diff, want) {
			t.Errorf("a schema changed on SQLite only compares equal: %q missing from the differences:\n%s", want, diff)
		}
	}
}

// schema is one database's tables, each as lines that describe it in terms
// both engines share.
type schema map[string][]string

func schemaDiff(a, b schema) []string {
	var diff []string
	for _, name := range sortedKeys(a, b) {
		la, lb := a[name], b[name]
		switch {
		case la == nil:
			diff = append(diff, "table "+name+": only on PostgreSQL")
		case lb == nil:
			diff = append(diff, "table "+name+": only on SQLite")
		default:
			n := map[string]int{} // SQLite's count of a line less PostgreSQL's
			for _, l := range la {
				n[l]++
			}
			for _, l := range lb {
				n[l]--
			}
			for _, l := range slices.Sorted(maps.Keys(n)) {
				switch {
				case n[l] > 0:
					diff = append(diff, fmt.Sprintf("%s: SQLite has %s", name, l))
				case n[l] < 0:
					diff = append(diff, fmt.Sprintf("%s: PostgreSQL has %s", name, l))
				}
			}
		}
	}
	return diff
}

func sortedKeys(a, b schema) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// normalType maps each engine's name for a type to one both share. A type
// not listed fails the test, so a new one is thought about, not guessed.
var normalType = map[string]string{
	"TEXT": "text", "text": "text",
	"INTEGER": "integer", "integer": "integer",
	"BIGINT": "bigint", "bigint": "bigint",
	"BOOLEAN": "boolean", "boolean": "boolean",
	"BLOB": "bytes", "bytea": "bytes",
	"TIMESTAMP": "timestamp", "timestamp with time zone": "timestamp",
}

// castSuffix is the type PostgreSQL appends to a literal default (” is
// shown as ”::text).
var castSuffix = regexp.MustCompile(`::[a-z ]+$`)

func column(t *testing.T, table, name, typ string, notNull bool, def sql.NullString, ord int) string {
	t.Helper()
	nt, ok := normalType[typ]
	if !ok {
		t.Fatalf("%s.%s: type %q has no normal form in this test: add it to normalType", table, name, typ)
	}
	d := "none"
	if def.Valid {
		d = strings.ToLower(castSuffix.ReplaceAllString(def.String, ""))
	}
	return fmt.Sprintf("column %d %s.%s %s notnull=%v default=%s", ord, table, name, nt, notNull, d)
}

func readSchema(t *testing.T, db *sqlstore.DB) schema {
	t.Helper()
	if db.Dialect() == sqlstore.SQLite {
		return readSQLiteSchema(t, db.SQL())
	}
	return readPostgresSchema(t, db.SQL())
}

func readSQLiteSchema(t *testing.T, db *sql.DB) schema {
	t.Helper()
	s := schema{}
	for _, table := range queryStrings(t, db, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`) {
		var lines, pk []string
		rows := query(t, db, `SELECT cid, name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid`, table)
		pkAt := map[int]string{}
		for rows.Next() {
			var cid, pkPos int
			var name, typ string
			var notNull bool
			var def sql.NullString
			scan(t, rows, &cid, &name, &typ, &notNull, &def, &pkPos)
			if pkPos > 0 {
				pkAt[pkPos] = name
				// SQLite lets a non-INTEGER primary key hold NULL unless
				// it says NOT NULL; PostgreSQL never does. Haven never
				// writes a NULL id, so the two are read as one.
				notNull = true
			}
			lines = append(lines, column(t, table, name, typ, notNull, def, cid+1))
		}
		for i := 1; i <= len(pkAt); i++ {
			pk = append(pk, pkAt[i])
		}
		if len(pk) > 0 {
			lines = append(lines, "primary key ("+strings.Join(pk, ", ")+")")
		}

		type fk struct{ table, from, to string }
		fks := map[int]*fk{}
		rows = query(t, db, `SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq`, table)
		for rows.Next() {
			var id int
			var ref, from string
			var to sql.NullString
			scan(t, rows, &id, &ref, &from, &to)
			if !to.Valid {
				t.Fatalf("%s: a foreign key to %s names no column; name it, as every other does", table, ref)
			}
			if f := fks[id]; f != nil {
				f.from += ", " + from
				f.to += ", " + to.String
			} else {
				fks[id] = &fk{ref, from, to.String}
			}
		}
		for _, f := range fks {
			lines = append(lines, fmt.Sprintf("foreign key (%s) references %s (%s)", f.from, f.table, f.to))
		}

		rows = query(t, db, `SELECT name, "unique", origin, partial FROM pragma_index_list(?)`, table)
		type index struct {
			name, origin    string
			unique, partial bool
		}
		var indexes []index
		for rows.Next() {
			var ix index
			scan(t, rows, &ix.name, &ix.unique, &ix.origin, &ix.partial)
			indexes = append(indexes, ix)
		}
		for _, ix := range indexes {
			if ix.origin == "pk" {
				continue // compared as the primary key
			}
			var cols []string
			rows := query(t, db, `SELECT name FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno`, ix.name)
			for rows.Next() {
				var c sql.NullString
				scan(t, rows, &c)
				if c.Valid {
					cols = append(cols, c.String)
				} else {
					cols = append(cols, "<expression>")
				}
			}
			if ix.origin == "c" {
				lines = append(lines, indexLine(ix.name, ix.unique, ix.partial, cols))
			} else {
				lines = append(lines, indexLine("", ix.unique, ix.partial, cols))
			}
		}
		s[table] = lines
	}
	return s
}

func readPostgresSchema(t *testing.T, db *sql.DB) schema {
	t.Helper()
	s := schema{}
	for _, table := range queryStrings(t, db, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`) {
		var lines []string
		rows := query(t, db, `SELECT ordinal_position, column_name, data_type, is_nullable = 'NO', column_default
			FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
		for rows.Next() {
			var ord int
			var name, typ string
			var notNull bool
			var def sql.NullString
			scan(t, rows, &ord, &name, &typ, &notNull, &def)
			lines = append(lines, column(t, table, name, typ, notNull, def, ord))
		}

		// Columns of a key or index in order; 0 in indkey is an expression.
		const cols = `array_to_string(ARRAY(SELECT COALESCE(a.attname, '<expression>') FROM unnest(%s) WITH ORDINALITY k(num, ord)
			LEFT JOIN pg_attribute a ON a.attrelid = %s AND a.attnum = k.num ORDER BY k.ord), ', ')`
		rows = query(t, db, `SELECT ft.relname, `+fmt.Sprintf(cols, "c.conkey", "c.conrelid")+`, `+fmt.Sprintf(cols, "c.confkey", "c.confrelid")+`
			FROM pg_constraint c JOIN pg_class ft ON ft.oid = c.confrelid
			WHERE c.contype = 'f' AND c.conrelid = $1::regclass`, table)
		for rows.Next() {
			var ref, from, to string
			scan(t, rows, &ref, &from, &to)
			lines = append(lines, fmt.Sprintf("foreign key (%s) references %s (%s)", from, ref, to))
		}

		rows = query(t, db, `SELECT i.relname, ix.indisunique, ix.indisprimary, ix.indpred IS NOT NULL,
				EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid),
				`+fmt.Sprintf(cols, "ix.indkey::int2[]", "ix.indrelid")+`
			FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
			WHERE ix.indrelid = $1::regclass`, table)
		for rows.Next() {
			var name, columns string
			var unique, primary, partial, constraint bool
			scan(t, rows, &name, &unique, &primary, &partial, &constraint, &columns)
			cols := strings.Split(columns, ", ")
			switch {
			case primary:
				lines = append(lines, "primary key ("+columns+")")
			case constraint:
				lines = append(lines, indexLine("", unique, partial, cols))
			default:
				lines = append(lines, indexLine(name, unique, partial, cols))
			}
		}
		s[table] = lines
	}
	return s
}

// indexLine describes an index; name is empty for one a constraint implies,
// whose name each engine makes up in its own way.
func indexLine(name string, unique, partial bool, cols []string) string {
	if name == "" {
		name = "(from a constraint)"
	}
	return fmt.Sprintf("index %s unique=%v partial=%v on (%s)", name, unique, partial, strings.Join(cols, ", "))
}

func query(t *testing.T, db *sql.DB, q string, args ...any) *sql.Rows {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	t.Cleanup(func() { rows.Close() })
	return rows
}

func scan(t *testing.T, rows *sql.Rows, dest ...any) {
	t.Helper()
	if err := rows.Scan(dest...); err != nil {
		t.Fatal(err)
	}
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	var out []string
	rows := query(t, db, q)
	for rows.Next() {
		var s string
		scan(t, rows, &s)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

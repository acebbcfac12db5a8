package sqlstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"testing/fstest"
)

// shipped pins the SHA-256 of the SQL each dialect ran for every migration
// that has shipped, as it was when the migrations were still written once
// per dialect. A database that applied one never applies it again, so a
// change to its text would leave old and new databases with different
// schemas under the same version number. Pin a new migration here once it
// ships.
var shipped = []struct {
	name             string
	sqlite, postgres string
}{
	{"0001_practices_users.sql", "35ca27ba70b98d06ebcb4a025b142ab13ac1590724bd614db492a2183bd6fe68", "b444fe695965b677c1cb760c5d3c4ab0cc378c00c052fd994fa63fd7ae6500ff"},
	{"0002_keys.sql", "72cd20e02ef2654064874f0322245e1241e0b3bad685469eae036c654524086f", "2af9e8b8e5fa214ab07ae7704ad7282669bfc72267040e0cfae1d5a7502f3e00"},
	{"0003_chart.sql", "c14fdb025a00c94c5624c776cd689cf22339c35ff5d7ed20aa3adfe71fe4903f", "8c744aed7f3d021bf8a0046c73060e150599d11bf6733a37f1cb4856ddf3f0e0"},
	{"0004_audit.sql", "effee14337e6075d3dc7197394c4df2879cd576aa9b54a8a02671e19c9f86ce7", "84f0be64c3af0674070f4abd4458652ce0bc9ddc2707b040ab985969f12514b5"},
	{"0005_identity.sql", "887312beaa071fe57d8e41a86f5d8ec1b9ef764dc7596512d373abe6e901ebf5", "4cd6b74d7f305b4638b9260413aab7390d9ecf4d885550a7913d4da88e6d1f6b"},
	{"0006_files.sql", "d124049087c9258de47b209d4cfb1b56a235a87af54dfa87b56dfcbcfb709332", "e3166215f46b6110fb55c84077c577e71836fe5a79258d58e2014817aa72854e"},
	{"0007_visits.sql", "3f83c3b25bdf6d3b93d38a6831a12fe1c82cba73bf1f518a74e44309e4feebab", "8782dc7aba0de83c1f9a0faf134dd3a40673e9db4a599a1ed144b29db6a6bfb0"},
	{"0008_video.sql", "a3729b56c4f78f057cabe2ccce56c9b78186227b10c1b28a3967888cfbe7d2eb", "a3729b56c4f78f057cabe2ccce56c9b78186227b10c1b28a3967888cfbe7d2eb"},
	{"0009_webauthn.sql", "5530c3391103b56e870e0d51bf5962e8ef8225fe8415fcd85dcd90f778bf8cca", "0abff80ceaffa8c7577ef741e61273409f4526d208d3a42d7197c20a58aaf8ae"},
	{"0010_visit_reminders_messages.sql", "9b3b0ad3fd8efbaebae5328c643d384a1c78300f35ad27f4d170771af9aeefb6", "10d104b3afb05142e5eff4fafa59ef0b5568a6e2dfa1e68b67ccc3e0a06452f5"},
	{"0011_visit_reminder_index.sql", "0862f3ca837481fcffdaea88173d3c1fd5901294cea16d48a97a5c8847f1cded", "0862f3ca837481fcffdaea88173d3c1fd5901294cea16d48a97a5c8847f1cded"},
}

func TestShippedMigrationsAreUnchanged(t *testing.T) {
	for _, dialect := range []Dialect{SQLite, Postgres} {
		ms, err := loadMigrations(migrationFS, dialect)
		if err != nil {
			t.Fatalf("%s: %v", dialect, err)
		}
		if len(ms) < len(shipped) {
			t.Fatalf("%s: %d migrations, %d have shipped", dialect, len(ms), len(shipped))
		}
		for i, want := range shipped {
			m := ms[i]
			sum := sha256.Sum256([]byte(m.sql))
			pin := want.sqlite
			if dialect == Postgres {
				pin = want.postgres
			}
			if m.version != i+1 || m.name != want.name || hex.EncodeToString(sum[:]) != pin {
				t.Errorf("%s: migration %d is %s with SQL %x, shipped as %s with %s: a shipped migration must never change",
					dialect, m.version, m.name, sum[:6], want.name, pin[:12])
			}
		}
	}
}

func TestPlaceholdersExpandPerDialect(t *testing.T) {
	fsys := fstest.MapFS{"migrations/0001_t.sql": {Data: []byte("CREATE TABLE t (b {{blob}}, at {{timestamp}} NOT NULL, n BIGINT);\n")}}
	for dialect, want := range map[Dialect]string{
		SQLite:   "CREATE TABLE t (b BLOB, at TIMESTAMP NOT NULL, n BIGINT);\n",
		Postgres: "CREATE TABLE t (b BYTEA, at TIMESTAMPTZ NOT NULL, n BIGINT);\n",
	} {
		ms, err := loadMigrations(fsys, dialect)
		if err != nil || len(ms) != 1 || ms[0].sql != want || ms[0].name != "0001_t.sql" || ms[0].version != 1 {
			t.Errorf("%s: got %+v, %v; want %q", dialect, ms, err, want)
		}
	}
}

// TestMigrationInOldPerDialectFolderIsRefused keeps a migration written in
// the old layout (one copy per dialect) from being skipped without a word:
// the schema would silently lack it on every database.
func TestMigrationInOldPerDialectFolderIsRefused(t *testing.T) {
	for _, dir := range []string{"sqlite", "postgres"} {
		fsys := fstest.MapFS{
			"migrations/0001_t.sql":             {Data: []byte("CREATE TABLE t (id TEXT PRIMARY KEY);\n")},
			"migrations/" + dir + "/0002_u.sql": {Data: []byte("CREATE TABLE u (id TEXT PRIMARY KEY);\n")},
		}
		for _, dialect := range []Dialect{SQLite, Postgres} {
			_, err := loadMigrations(fsys, dialect)
			if err == nil || !strings.Contains(err.Error(), "migrations/"+dir+"/") || !strings.Contains(err.Error(), "0002_u.sql") {
				t.Errorf("%s with a file in migrations/%s/: err %v, want a refusal naming the folder and file", dialect, dir, err)
			}
		}
	}
}

func TestMalformedMigrationsAreRefused(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"unknown placeholder": {"migrations/0001_t.sql": "CREATE TABLE t (b {{bytes}});"},
		"unclosed":            {"migrations/0001_t.sql": "CREATE TABLE t (b {{blob);"},
		"stray close":         {"migrations/0001_t.sql": "CREATE TABLE t (b blob}});"},
		"two of one version":  {"migrations/0001_t.sql": "SELECT 1;", "migrations/0001_u.sql": "SELECT 1;"},
		"gap":                 {"migrations/0001_t.sql": "SELECT 1;", "migrations/0003_u.sql": "SELECT 1;"},
		"not NNNN_name.sql":   {"migrations/0001_t.sql": "SELECT 1;", "migrations/notes.txt": "x"},
	} {
		fsys := fstest.MapFS{}
		for p, text := range files {
			fsys[p] = &fstest.MapFile{Data: []byte(text)}
		}
		if ms, err := loadMigrations(fsys, SQLite); err == nil {
			t.Errorf("%s: loaded %+v, want an error", name, ms)
		}
	}
}

package sqlstore_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/internal/testkit"
	"haven/store/sqlstore"
)

// forEachDB runs fn as a subtest on a freshly migrated SQLite database and,
// when available (always in CI), on a fresh PostgreSQL database: one
// conformance suite for both dialects.
func forEachDB(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			db := mustOpen(t, dsn)
			fn(t, db)
		})
	}
}

func mustOpen(t testing.TB, dsn string) *sqlstore.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestMigrateIsIdempotentAndCurrent(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		applied, err := db.Migrate(ctx)
		if err != nil || len(applied) != 0 {
			t.Fatalf("second migrate applied %v, err %v", applied, err)
		}
		cur, latest, err := db.SchemaVersion(ctx)
		if err != nil || cur != latest || cur == 0 {
			t.Fatalf("schema %d/%d err %v", cur, latest, err)
		}
		if err := db.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewerSchemaIsRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		if _, err := db.SQL().ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 'x')`); err != nil {
			t.Fatal(err)
		}
		_, _, err := db.SchemaVersion(ctx)
		if haven.ErrorCode(err) != haven.EINVALID || !strings.Contains(err.Error(), "newer than this haven binary") {
			t.Fatalf("want a clear refusal, got %v", err)
		}
		if _, err := db.Migrate(ctx); err == nil {
			t.Fatal("migrate on a newer schema must fail")
		}
	})
}

func TestPracticeAndUserRoundTrip(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		p := &haven.Practice{ID: haven.NewID(), Name: "Riverside"}
		if err := db.CreatePractice(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := db.CreatePractice(ctx, &haven.Practice{ID: p.ID, Name: "dup"}); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("duplicate practice: %v", err)
		}
		got, err := db.FindPracticeByID(ctx, p.ID)
		if err != nil || got.Name != "Riverside" || got.CreatedAt.Sub(p.CreatedAt).Abs() > time.Millisecond {
			t.Fatalf("got %+v err %v", got, err)
		}
		if _, err := db.FindPracticeByID(ctx, "nope"); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("missing practice: %v", err)
		}
		u := &haven.User{ID: haven.NewID(), PracticeID: p.ID, Role: haven.RoleClinician,
			EmailIndex: []byte{1, 2, 3}, Email: haven.Sealed{9, 9}, Name: haven.Sealed{8}, PasswordHash: "$argon2id$x"}
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		dup := *u
		dup.ID = haven.NewID()
		if err := db.CreateUser(ctx, &dup); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("same email twice in one practice: %v", err)
		}
		gu, err := db.FindUserByID(ctx, u.ID)
		if err != nil || gu.Role != haven.RoleClinician || !bytes.Equal(gu.Email, u.Email) || gu.PracticeID != p.ID {
			t.Fatalf("user round trip %+v err %v", gu, err)
		}
		us, err := db.FindUsersByEmailIndex(ctx, []byte{1, 2, 3})
		if err != nil || len(us) != 1 || us[0].ID != u.ID {
			t.Fatalf("by index %v err %v", us, err)
		}
		op := &haven.User{ID: haven.NewID(), Role: haven.RolePlatformOperator, EmailIndex: []byte{4}, Email: haven.Sealed{1}, PasswordHash: "x"}
		if err := db.CreateUser(ctx, op); err != nil {
			t.Fatalf("platform operator without practice: %v", err)
		}
		bad := &haven.User{ID: haven.NewID(), PracticeID: p.ID, Role: "superuser", EmailIndex: []byte{5}}
		if err := db.CreateUser(ctx, bad); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("unknown role: %v", err)
		}
		list, err := db.ListUsers(ctx, p.ID)
		if err != nil || len(list) != 1 {
			t.Fatalf("list %d err %v", len(list), err)
		}
	})
}

func TestUnreachablePostgresIsAClearError(t *testing.T) {
	_, err := sqlstore.Open(context.Background(), "postgres://haven:secret@127.0.0.1:1/haven?connect_timeout=2")
	if haven.ErrorCode(err) != haven.EUNAVAILABLE {
		t.Fatalf("want EUNAVAILABLE, got %v", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("password leaked into the error: %v", err)
	}
}

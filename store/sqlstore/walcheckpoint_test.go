package sqlstore

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"haven/internal/testkit"
)

// TestSQLiteCheckpointsBesideTheCommits: no connection checkpoints the
// WAL in its commit (wal_autocheckpoint is 0 on every pooled connection),
// and the DB's own checkpoint copies every frame of a quiet log into the
// database, after which the next commit starts the log over instead of
// growing it.
func TestSQLiteCheckpointsBesideTheCommits(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, testkit.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	db := d.SQL()
	db.SetMaxIdleConns(8)
	conns := make([]interface{ Close() error }, 0, 4)
	for range 4 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var n int
		if err := c.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("wal_autocheckpoint = %d, %v; want 0 on every connection", n, err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE pages (b BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err := db.ExecContext(ctx, `INSERT INTO pages (b) VALUES (randomblob(3000))`); err != nil {
			t.Fatal(err)
		}
	}
	frames, copied, err := checkpointOnce(ctx, t, db)
	if err != nil || frames < 50 || copied != frames {
		t.Fatalf("checkpoint: %d of %d frames copied, %v; want all of at least 50", copied, frames, err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO pages (b) VALUES (randomblob(3000))`); err != nil {
		t.Fatal(err)
	}
	after, _, err := checkpointOnce(ctx, t, db)
	if err != nil || after >= frames {
		t.Fatalf("after a commit the log holds %d frames (%v), had %d: it grew instead of starting over", after, err, frames)
	}
}

// checkpointOnce checkpoints through db, trying again while the DB's own
// checkpointer holds the log (SQLite then answers busy, with -1 frames):
// that one runs every checkpointEvery beside the test.
func checkpointOnce(ctx context.Context, t *testing.T, db *sql.DB) (frames, copied int, err error) {
	t.Helper()
	for range 100 {
		frames, copied, err = checkpoint(ctx, db)
		if err != nil || frames >= 0 {
			return frames, copied, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return frames, copied, err
}

package sqlstore

import (
	"context"
	"database/sql"
	"os"
	"sync"
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
		_, frames, copied, err = checkpoint(ctx, db, "PASSIVE")
		if err != nil || frames >= 0 {
			return frames, copied, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return frames, copied, err
}

// TestSQLiteLogStartsOverUnderLoad: commits back to back with readers
// beside them, as the audit log's group commit runs under load. A
// checkpoint running beside the commits never finds the log whole in the
// database (a commit lands while it copies, a reader holds an older
// snapshot), so the log would never start over: it grew by every commit
// for as long as the load lasted (hundreds of megabytes in a benchmark
// row of eight seconds), and every commit appended to the file. So the
// checkpointer copies once more holding the write turn, when nothing can
// land behind it, and waits for the log's readers, and the next commit
// starts the log over.
func TestSQLiteLogStartsOverUnderLoad(t *testing.T) {
	ctx := context.Background()
	path := testkit.SQLite(t)
	d, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	db := d.SQL()
	if _, err := db.ExecContext(ctx, `CREATE TABLE pages (b BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int
				db.QueryRowContext(ctx, `SELECT length(b) FROM pages ORDER BY rowid DESC LIMIT 1`).Scan(&n)
				time.Sleep(100 * time.Microsecond) // a request's other work
			}
		}()
	}
	const page = 4096
	var written, largest int64 // bytes the commits wrote to the log; the log's largest size
	for start := time.Now(); time.Since(start) < 3*time.Second; {
		if _, err := db.ExecContext(ctx, `INSERT INTO pages (b) VALUES (randomblob(3000))`); err != nil {
			t.Fatal(err)
		}
		written += 2 * page // the row's leaf page and the table's root, at least
		if fi, err := os.Stat(path + "-wal"); err == nil {
			largest = max(largest, fi.Size())
		}
	}
	close(stop)
	readers.Wait()
	t.Logf("the log reached %d KiB; the commits wrote at least %d KiB to it", largest>>10, written>>10)
	// Started over, the log stays a fraction of what was written (a tenth
	// to a fifth here); never started over, it holds all of it and more.
	if largest > written/2 {
		t.Errorf("the log reached %d KiB of the %d KiB the commits wrote: it did not start over", largest>>10, written>>10)
	}
}

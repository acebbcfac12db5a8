package blobtest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/blob"
)

// TestSweep checks blob.Sweep over s, which must be a blob.Lister.
// putOld stores a blob that the store reports as written two hours ago
// (each backend has its own way to age one).
//
// The database is a set of keys that rows name; the sweep must remove
// exactly the blobs under its prefix that are older than the cutoff and
// named by no row, and ask the database about nothing else.
func TestSweep(t *testing.T, s blob.Store, putOld func(t *testing.T, key string, b []byte)) {
	ctx := context.Background()
	if _, ok := s.(blob.Lister); !ok {
		t.Fatalf("%T cannot list its blobs: the sweep would never find an orphan", s)
	}
	prefix := "sweeptest/" + haven.NewID() + "/"
	k := func(name string) string { return prefix + "files/" + name }
	var (
		oldWithRow    = k("old-with-row")
		oldOrphan     = k("old-orphan")
		oldOrphan2    = k("old-orphan-2")
		newWithoutRow = k("being-committed") // an upload whose row is not in yet
		outside       = prefix + "other/old-orphan"
	)
	for _, key := range []string{oldWithRow, oldOrphan, oldOrphan2, outside} {
		putOld(t, key, []byte("ciphertext of "+key))
	}
	put(t, s, newWithoutRow, []byte("ciphertext being committed"))

	var mu sync.Mutex
	var asked []string
	rows := map[string]bool{oldWithRow: true}
	inUse := func(_ context.Context, keys []string) (map[string]bool, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, keys...)
		out := map[string]bool{}
		for _, key := range keys {
			if rows[key] {
				out[key] = true
			}
		}
		return out, nil
	}
	cutoff := time.Now().Add(-blob.OrphanAge)

	// A database that cannot answer stops the sweep before any deletion.
	_, err := blob.Sweep(ctx, s, prefix+"files/", func(context.Context, []string) (map[string]bool, error) {
		return nil, errors.New("database down")
	}, cutoff)
	if err == nil {
		t.Fatal("a sweep went on without the database")
	}
	for _, key := range []string{oldOrphan, oldOrphan2} {
		if b := get(t, s, key); !bytes.Equal(b, []byte("ciphertext of "+key)) {
			t.Fatalf("%s changed", key)
		}
	}

	res, err := blob.Sweep(ctx, s, prefix+"files/", inUse, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != 3 || res.Orphans != 2 {
		t.Fatalf("sweep result %+v, want 3 checked and 2 orphans removed", res)
	}
	wantNotFound(t, s, oldOrphan)
	wantNotFound(t, s, oldOrphan2)
	get(t, s, oldWithRow)
	get(t, s, newWithoutRow)
	get(t, s, outside)
	slices.Sort(asked)
	for _, key := range asked {
		if key == newWithoutRow || !strings.HasPrefix(key, prefix+"files/") {
			t.Fatalf("the database was asked about %s, which is not a candidate", key)
		}
	}
	// Sweeping again finds nothing more.
	if res, err := blob.Sweep(ctx, s, prefix+"files/", inUse, cutoff); err != nil || res.Orphans != 0 {
		t.Fatalf("second sweep: %+v %v", res, err)
	}
}

package dir

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/blob"
	"haven/blob/blobtest"
)

func open(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "blobs")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestStoreConformance(t *testing.T) {
	s, _ := open(t)
	blobtest.TestStore(t, s)
}

func TestFilesAndDirectoriesArePrivate(t *testing.T) {
	s, path := open(t)
	for _, k := range []string{"p1/a", "p1/b", "p2/c/d"} {
		if _, err := s.Put(context.Background(), k, strings.NewReader("ciphertext")); err != nil {
			t.Fatal(err)
		}
	}
	files := 0
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != 3 {
		t.Fatalf("found %d files, want 3", files)
	}
}

func TestOpenRefusesDirectoryOthersCanList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blobs")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if _, err := Open(path); haven.ErrorCode(err) != haven.EINVALID {
		t.Fatalf("Open of a 0755 directory = %v, want EINVALID", err)
	}
}

func TestBlobsFanOutAcrossDirectories(t *testing.T) {
	s, path := open(t)
	// Keys sharing one long prefix, as one practice's blobs do.
	for i := range 64 {
		key := "practice/p1/patient/x/file-" + strings.Repeat("a", i%7) + string(rune('a'+i%26)) + string(rune('0'+i/26))
		if _, err := s.Put(context.Background(), key, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			t.Errorf("blob %s stored in the root, not in a fan-out directory", e.Name())
		}
	}
	if len(entries) < 16 {
		t.Fatalf("64 keys with a common prefix landed in only %d directories", len(entries))
	}
}

// blockingReader yields some bytes, signals, then waits before failing: a
// write interrupted half-way, as by a crash.
type blockingReader struct {
	sent    bool
	reached chan struct{}
	release chan struct{}
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		clear(p)
		return len(p), nil
	}
	close(r.reached)
	<-r.release
	return 0, errors.New("connection lost")
}

func TestHalfWrittenBlobNeverAppearsUnderItsKey(t *testing.T) {
	s, path := open(t)
	ctx := context.Background()
	const key = "p1/scan"
	r := &blockingReader{reached: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error)
	go func() {
		_, err := s.Put(ctx, key, r)
		done <- err
	}()
	<-r.reached

	// Mid-write: the key has no blob, and the bytes written so far sit in a
	// temporary file that no key maps to.
	if _, err := s.Stat(ctx, key); haven.ErrorCode(err) != haven.ENOTFOUND {
		t.Fatalf("Stat mid-write = %v, want ENOTFOUND", err)
	}
	fanout, name := locate(key)
	entries, err := os.ReadDir(filepath.Join(path, fanout))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), tempPrefix) {
		t.Fatalf("mid-write the fan-out directory holds %v, want one temporary file", entries)
	}
	if _, err := os.Stat(filepath.Join(path, name)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("final name exists mid-write: %v", err)
	}

	close(r.release)
	if err := <-done; err == nil {
		t.Fatal("Put succeeded although its reader failed")
	}
	if entries, _ := os.ReadDir(filepath.Join(path, fanout)); len(entries) != 0 {
		t.Fatalf("failed Put left %d files behind", len(entries))
	}
}

func TestOpenRemovesTempFilesLeftByACrash(t *testing.T) {
	s, path := open(t)
	if _, err := s.Put(context.Background(), "p1/kept", strings.NewReader("blob")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	fanout, _ := locate("p1/kept")
	stale := filepath.Join(path, fanout, tempPrefix+"crashed")
	fresh := filepath.Join(path, fanout, tempPrefix+"in-progress")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * StaleTempAge)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file survived Open: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("Open removed a recent temporary file that may belong to a write in progress: %v", err)
	}
	if n, err := s2.Stat(context.Background(), "p1/kept"); err != nil || n != 4 {
		t.Errorf("blob after reopen: %d, %v", n, err)
	}
}

// TestPlantedSymlinkCannotRedirectWrites plants a symlink where a fan-out
// directory belongs, pointing outside the store, as an attacker with write
// access to the data directory (but not to the rest of the disk) might.
func TestPlantedSymlinkCannotRedirectWrites(t *testing.T) {
	s, path := open(t)
	outside := t.TempDir()
	const key = "p1/redirected"
	fanout, _ := locate(key)
	if err := os.Symlink(outside, filepath.Join(path, fanout)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Put(context.Background(), key, strings.NewReader("ciphertext"))
	if err == nil {
		t.Fatal("Put followed a symlink out of the store")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("Put wrote %d files outside the store", len(entries))
	}
	if err := os.WriteFile(filepath.Join(outside, "p1.redirected"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rc, err := s.Get(context.Background(), key); err == nil {
		rc.Close()
		t.Fatal("Get read a file outside the store through a symlink")
	}
}

func TestReadsStopWhenContextEnds(t *testing.T) {
	s, _ := open(t)
	if _, err := s.Put(context.Background(), "p1/long", bytes.NewReader(make([]byte, 1<<20))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := s.Get(ctx, "p1/long")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 1024)
	if _, err := rc.Read(buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := rc.Read(buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel = %v, want context.Canceled", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestGigabyteBlobStreamsInFlatMemory puts and gets a 1 GiB blob and checks
// that the heap stays small throughout: an upload must never be buffered
// whole, or a few concurrent large scans would exhaust the server's memory.
// Memory is asserted; time is not.
func TestGigabyteBlobStreamsInFlatMemory(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("writes 1 GiB to disk; runs without -short, and always in CI")
	}
	const size = 1 << 30
	const heapBound = 32 << 20
	const allocBound = 64 << 20
	s, _ := open(t)
	ctx := context.Background()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})

	n, err := s.Put(ctx, "memory/gib", io.LimitReader(zeros{}, size))
	if err != nil || n != size {
		t.Fatalf("Put = %d, %v", n, err)
	}
	rc, err := s.Get(ctx, "memory/gib")
	if err != nil {
		t.Fatal(err)
	}
	m, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil || m != size {
		t.Fatalf("Get read %d bytes, %v", m, err)
	}
	close(stop)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	s.Delete(ctx, "memory/gib")

	growth := int64(peak) - int64(before.HeapInuse)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("1 GiB put+get: heap in use grew by at most %.1f MiB; %.1f MiB allocated in total", float64(growth)/(1<<20), float64(allocated)/(1<<20))
	if growth > heapBound {
		t.Errorf("heap in use grew by %d MiB while streaming 1 GiB, bound %d MiB", growth>>20, heapBound>>20)
	}
	if allocated > allocBound {
		t.Errorf("allocated %d MiB while streaming 1 GiB, bound %d MiB", allocated>>20, allocBound>>20)
	}
}

// FuzzLocateIsOneToOne checks that two different valid keys never share a
// file, and that every file stays one level below a fan-out directory.
func FuzzLocateIsOneToOne(f *testing.F) {
	f.Add("a/b", "a-b")
	f.Add("x/y/z", "x/yz")
	f.Add("p1/scan", "p1.scan")
	f.Fuzz(func(t *testing.T, a, b string) {
		if blob.ValidKey(a) != nil || blob.ValidKey(b) != nil {
			return
		}
		fa, na := locate(a)
		_, nb := locate(b)
		if a != b && na == nb {
			t.Fatalf("keys %q and %q share the file %s", a, b, na)
		}
		dirName, file, ok := strings.Cut(na, "/")
		if !ok || dirName != fa || strings.Contains(file, "/") || strings.HasPrefix(file, ".") || !filepath.IsLocal(na) {
			t.Fatalf("key %q maps to %q, not one file in a fan-out directory", a, na)
		}
	})
}

// TestSweepRemovesOldOrphansAndLeftovers runs the sweep suite, ageing a
// blob by its file's modification time, and checks that the sweep also
// takes old temporary files of writes that died while it leaves young ones
// (a write in progress, perhaps on another node sharing the directory).
func TestSweepRemovesOldOrphansAndLeftovers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blobs")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := time.Now().Add(-2 * time.Hour)
	blobtest.TestSweep(t, s, func(t *testing.T, key string, b []byte) {
		if _, err := s.Put(context.Background(), key, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		_, name := locate(key)
		if err := os.Chtimes(filepath.Join(path, name), old, old); err != nil {
			t.Fatal(err)
		}
	})

	fanout, _ := locate("files/x")
	oldTemp := filepath.Join(path, fanout, tempPrefix+"died")
	youngTemp := filepath.Join(path, fanout, tempPrefix+"writing")
	os.MkdirAll(filepath.Join(path, fanout), 0o700)
	for _, p := range []string{oldTemp, youngTemp} {
		if err := os.WriteFile(p, []byte("half a blob"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Chtimes(oldTemp, old, old)
	res, err := blob.Sweep(context.Background(), s, "files/", func(context.Context, []string) (map[string]bool, error) {
		return map[string]bool{}, nil
	}, time.Now().Add(-blob.OrphanAge))
	if err != nil || res.Leftovers != 1 {
		t.Fatalf("sweep: %+v %v", res, err)
	}
	if _, err := os.Stat(oldTemp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("old temporary file kept: %v", err)
	}
	if _, err := os.Stat(youngTemp); err != nil {
		t.Fatalf("a write in progress lost its temporary file: %v", err)
	}
}

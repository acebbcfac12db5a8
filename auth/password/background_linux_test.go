package password

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// threadNice reads the calling thread's niceness from /proc: field 19 of
// its stat line, counted after the command name's closing parenthesis.
func threadNice(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		t.Fatalf("reading this thread's stat: %v", err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	n, err := strconv.Atoi(fields[16]) // field 19 overall; fields[0] is field 3
	if err != nil {
		t.Fatalf("parsing niceness from %q: %v", s, err)
	}
	return n
}

// The hash runs at hashNice, and the runtime discards its thread after:
// were the thread returned to the pool, ordinary goroutines would later run
// at hashing priority and the whole server would slow down under load.
func TestHashingRunsOnALowPriorityThreadThatIsNotReused(t *testing.T) {
	base := func() int {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		return threadNice(t)
	}()
	for range 20 {
		var got int
		inBackground(func() { got = threadNice(t) })
		if got != base+hashNice {
			t.Fatalf("hashing thread niceness = %d, want %d", got, base+hashNice)
		}
	}
	// Goroutines that lock a thread now get one from the runtime's pool;
	// none may be a former hashing thread.
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if n := threadNice(t); n != base {
				t.Errorf("an ordinary goroutine ran at niceness %d, want %d: a hashing thread was reused", n, base)
			}
		})
	}
	wg.Wait()
}

func TestHasherHashesInTheBackground(t *testing.T) {
	h := NewHasher(HasherConfig{Params: Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	enc, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	ok, _, err := h.Verify(t.Context(), "correct horse battery staple", enc)
	if err != nil || !ok {
		t.Fatalf("Verify = %v, %v; want true", ok, err)
	}
}

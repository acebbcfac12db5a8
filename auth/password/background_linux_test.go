package password

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// threadPriority reads the calling thread's niceness and scheduling
// policy from /proc: fields 19 and 41 of its stat line, counted after the
// command name's closing parenthesis.
func threadPriority(t *testing.T) (nice, policy int) {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		t.Fatalf("reading this thread's stat: %v", err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // fields[0] is field 3
	nice, err1 := strconv.Atoi(fields[16])
	policy, err2 := strconv.Atoi(fields[38])
	if err1 != nil || err2 != nil {
		t.Fatalf("parsing niceness and policy from %q", s)
	}
	return nice, policy
}

// The hash runs in SCHED_IDLE (or at hashNice where that is refused), and
// the runtime discards its thread after:
// were the thread returned to the pool, ordinary goroutines would later run
// at hashing priority and the whole server would slow down under load.
func TestHashingRunsOnALowPriorityThreadThatIsNotReused(t *testing.T) {
	baseNice, basePolicy := func() (int, int) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		return threadPriority(t)
	}()
	for range 20 {
		var nice, policy int
		inBackground(func() { nice, policy = threadPriority(t) })
		if policy != schedIdle && nice != min(baseNice+hashNice, 19) {
			t.Fatalf("hashing thread at policy %d, niceness %d: neither SCHED_IDLE nor niceness %d", policy, nice, hashNice)
		}
	}
	// Goroutines that lock a thread now get one from the runtime's pool;
	// none may be a former hashing thread.
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if nice, policy := threadPriority(t); nice != baseNice || policy != basePolicy {
				t.Errorf("an ordinary goroutine ran at policy %d, niceness %d (want %d, %d): a hashing thread was reused", policy, nice, basePolicy, baseNice)
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

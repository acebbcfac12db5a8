package password

import (
	"runtime"
	"sync"
)

// inBackground runs fn on a fresh OS thread that the kernel schedules
// behind every other thread of the machine (see lowerThreadPriority), and
// waits for it.
//
// An argon2id hash is tens of milliseconds of pure computation that Go's
// scheduler cannot tell apart from a request's work. During a login flood
// the pool keeps hashing a core busy for as long as the flood lasts, and on
// a small machine that halves the CPU left for the patients and clinicians
// already signed in. Putting the hashing thread in the kernel's idle class
// lets the kernel hand its core to request threads whenever they are
// runnable, while an otherwise idle machine still hashes at full speed: a
// sign-in costs no more when nothing else is happening.
//
// The goroutine ends while locked to its thread, so the runtime discards
// the thread instead of returning a low-priority thread to its pool.
func inBackground(fn func()) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		// Deliberately no UnlockOSThread: see above.
		lowerThreadPriority()
		fn()
		close(done)
	}()
	<-done
}

// reserved makes ReserveProcs add to GOMAXPROCS once per process, however
// many Hashers a process builds.
var reserved sync.Once

// ReserveProcs raises GOMAXPROCS by the Hasher's concurrency, once per
// process. A running hash holds one of Go's processors (Ps) for its whole
// tens of milliseconds; without a P of its own, a low-priority hashing
// thread would still take a P from the request goroutines, and while the
// kernel keeps that thread waiting behind them the P does no work at all.
// With the extra Ps, requests always have one P per core and the kernel,
// by thread priority, decides who gets the cores. Call it once, from the
// server's start-up; it also ends the runtime's automatic GOMAXPROCS
// updates from container CPU limits, which Haven does not rely on.
func (h *Hasher) ReserveProcs() {
	reserved.Do(func() {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + h.Concurrency())
	})
}

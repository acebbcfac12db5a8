package password

import (
	"syscall"
	"unsafe"
)

// schedIdle is Linux's SCHED_IDLE scheduling class: for "very low
// priority background jobs". A thread in it runs only on a core no
// ordinary thread wants, and an ordinary thread that wakes (a request's
// bytes arriving) preempts it at once rather than after a time slice.
// Any thread may enter it without privilege; it cannot leave without
// privilege, which is why hashing threads are discarded (inBackground).
const schedIdle = 5

// hashNice is the fallback where SCHED_IDLE is refused (a sandbox's
// system-call filter): the weakest ordinary priority.
const hashNice = 19

// lowerThreadPriority moves the calling thread into SCHED_IDLE, or failing
// that to niceness hashNice. Failure of both leaves the thread at normal
// priority, which is only slower for others, never wrong.
func lowerThreadPriority() {
	var param struct{ priority int32 } // struct sched_param; must be 0 for SCHED_IDLE
	tid := uintptr(syscall.Gettid())
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, tid, schedIdle, uintptr(unsafe.Pointer(&param))); errno == 0 {
		return
	}
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, int(tid), hashNice)
}

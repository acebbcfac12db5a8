package password

import "syscall"

// hashNice is the niceness of a hashing thread. At 10 the kernel gives it
// about a tenth of the weight of an ordinary thread when both want a core:
// enough that sign-ins still finish (slowly) on a machine saturated by
// signed-in traffic, little enough that a flood of them barely slows that
// traffic.
const hashNice = 10

// lowerThreadPriority sets the calling thread's niceness. Linux applies
// setpriority(PRIO_PROCESS, tid) to the one thread; raising niceness needs
// no privilege. Failure leaves the thread at normal priority, which is
// only slower for others, never wrong.
func lowerThreadPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), hashNice)
}

//go:build !linux

package password

// lowerThreadPriority is a no-op where per-thread priority is not
// available portably; hashing then competes with requests on equal terms.
func lowerThreadPriority() {}

package testkit

import (
	"strings"
	"sync"
)

// ServerLog collects what a server we did not write (Vault, LiveKit)
// prints, for the test's failure message: safe to write from the process's
// output goroutines while the test reads it, and kept to its first MiB so
// a chatty server cannot fill the test's memory.
type ServerLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *ServerLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *ServerLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

package web

import (
	"testing"
	"time"

	"haven/identity"
)

// The page must not leave for the sign-in page before the session ends:
// a signed-in /login returns into the app, and that request is activity.
func TestSessionTimersNeverEndThePageEarly(t *testing.T) {
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		warn, end       time.Duration
		wantWarn, wantE int
	}{
		{7900 * time.Millisecond, 15900 * time.Millisecond, 7, 16},
		{8 * time.Second, 16 * time.Second, 8, 16},
		{-time.Second, 100 * time.Millisecond, 0, 1},
		{-2 * time.Second, -time.Second, 0, 0},
	} {
		cur := &identity.Current{At: at, WarnAt: at.Add(c.warn), Expires: at.Add(c.end)}
		w, e := sessionTimers(cur)
		if w != c.wantWarn || e != c.wantE {
			t.Errorf("warn in %v, end in %v: told %d and %d s, want %d and %d", c.warn, c.end, w, e, c.wantWarn, c.wantE)
		}
		if time.Duration(e)*time.Second < c.end {
			t.Errorf("end in %v told as %d s: the page would leave while the session lives", c.end, e)
		}
	}
}

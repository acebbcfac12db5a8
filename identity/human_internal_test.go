package identity

import (
	"testing"
	"time"
)

// TestLinkLifetimesReadAsWords: emails say how long a link lasts as a
// person would, "within 1 day", never "within 1 days".
func TestLinkLifetimesReadAsWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour:          "one hour",
		2 * time.Hour:      "2 hours",
		24 * time.Hour:     "1 day",
		7 * 24 * time.Hour: "7 days",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%s) = %q, want %q", d, got, want)
		}
	}
}

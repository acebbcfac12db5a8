package service

import (
	"testing"
	"time"
)

// TestOutsideHoursReadsThePracticesZone: the working day is the practice's
// own, in its zone, on the first call and on those answered from the
// loaded zones; a zone that does not load counts as UTC.
func TestOutsideHoursReadsThePracticesZone(t *testing.T) {
	now := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC) // 09:00 in Chicago, 00:00 the next day in Tokyo
	ps := DefaultSettings()                              // 07:00-19:00
	for range 2 {
		for zone, outside := range map[string]bool{"America/Chicago": false, "Asia/Tokyo": true, "UTC": false, "Mars/Olympus_Mons": false} {
			ps.TimeZone = zone
			if got := outsideHours(now, ps); got != outside {
				t.Errorf("15:00 UTC in %s: outside hours %v, want %v", zone, got, outside)
			}
		}
	}
	ps.TimeZone, ps.WorkdayStartHour, ps.WorkdayEndHour = "Mars/Olympus_Mons", 16, 20
	if !outsideHours(now, ps) {
		t.Error("a zone that does not load was not read as UTC")
	}
}

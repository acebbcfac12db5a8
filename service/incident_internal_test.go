package service

import (
	"testing"
	"time"
)

// TestBreachNoticeRules: 500 or more affected patients is a media notice
// (164.406) and 499 is not; the patients' deadline is 60 calendar days
// from discovery (164.404(b)), across a month's end and a leap day.
func TestBreachNoticeRules(t *testing.T) {
	for n, want := range map[int]bool{0: false, 1: false, 499: false, 500: true, 501: true, 10000: true} {
		if got := mediaNotice(n); got != want {
			t.Errorf("mediaNotice(%d) = %v, want %v", n, got, want)
		}
	}
	for from, want := range map[string]string{"2026-11-25": "2027-01-24", "2028-01-15": "2028-03-15", "2027-12-31": "2028-02-29"} {
		d, _ := time.Parse(time.DateOnly, from)
		if got := noticeDeadline(d).Format(time.DateOnly); got != want {
			t.Errorf("discovered %s: notify by %s, want %s", from, got, want)
		}
	}
}

package haven

// Availability is one weekly block of a clinician's bookable time as
// storage holds it: minutes from midnight in the clinician's own time
// zone, so "Mondays 9 to 12" stays 9 to 12 across daylight-saving changes.
type Availability struct {
	ID, PracticeID, ClinicianID string
	Weekday                     int // 0 is Sunday, as time.Weekday
	StartMinute, EndMinute      int
	SlotMinutes                 int
	TimeZone                    string // IANA, e.g. "America/Chicago"
}

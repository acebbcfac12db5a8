package haven

import "time"

// Visit states, in the order a visit moves through them.
const (
	VisitBooked    = "booked"
	VisitWaiting   = "waiting" // checked in, in the waiting room
	VisitAdmitted  = "admitted"
	VisitEnded     = "ended"
	VisitCancelled = "cancelled"
)

// Visit is a video visit between a patient and a clinician as storage holds
// it: its reason is sealed under the patient's data key. Policy reads its
// clinician, times and state to decide a booked visit's access window.
type Visit struct {
	ID, PracticeID, PatientID, ClinicianID string
	Start, End                             time.Time
	State                                  string // one of the Visit* states
	Reason                                 Sealed
	BookedBy                               string
	CheckedInAt, AdmittedAt, EndedAt       *time.Time
	Version                                int // raised by every move, for compare-and-swap
	CreatedAt                              time.Time
}

// VisitView is a visit opened for someone policy allowed: its reason in
// the clear, and the names a page shows beside it. The service makes it
// from a Visit; storage never holds one.
type VisitView struct {
	ID          string     `json:"id"`
	PatientID   string     `json:"patient_id"`
	ClinicianID string     `json:"clinician_id"`
	Start       time.Time  `json:"start"`
	End         time.Time  `json:"end"`
	State       string     `json:"state"`
	Reason      string     `json:"reason"`
	CheckedInAt *time.Time `json:"checked_in_at,omitempty"`
	PatientName string     `json:"patient_name,omitempty"`
	// ClinicianName is the clinician's name where a list shows it (the
	// front desk's schedule).
	ClinicianName string `json:"clinician_name,omitempty"`
}

package haven

import "time"

// Incidents and breach notification (HIPAA 164.308(a)(6), 164.402-410).
// The compliance officer opens an incident from an alert or by hand,
// scopes it (accounts, a time window, patients, kinds of access), lists
// the patients the audit log shows were opened in scope, contains it in
// one step, assesses the four factors of 164.402(2), decides whether it is
// a breach and, for a breach, drafts one letter per affected patient and
// tracks each until sent. Incidents, their evidence and decisions are kept
// six years (164.316(b)(2)): there is no path that deletes them.

// BreachNoticeDays is how long a practice has to notify each affected
// patient of a breach: without unreasonable delay and at most 60 days
// from its discovery (164.404(b)).
const BreachNoticeDays = 60

// BreachMediaThreshold is the number of affected residents from which a
// breach must also be told to prominent media outlets (164.406) and to the
// Secretary at once (164.408(b)) rather than in the yearly log.
const BreachMediaThreshold = 500

// IncidentRetentionYears is how long incidents are kept (164.316(b)(2)).
const IncidentRetentionYears = 6

// Incident states, in order.
const (
	IncidentOpen      = "open"      // opened, being scoped
	IncidentContained = "contained" // the scoped accounts are shut out
	IncidentDecided   = "decided"   // breach or not, with its reason
)

// Incident decisions.
const (
	DecisionBreach   = "breach"
	DecisionNoBreach = "no_breach"
)

// Incident is an incident as storage holds it. What it says (title,
// scope, the assessment, the decision's reason, what containment did) is
// sealed under the practice's key in Detail; the clock and the state are
// plain so lists and deadlines need no key.
type Incident struct {
	ID, PracticeID string
	AlertID        string // the alert it was opened from; "" when by hand
	State          string
	Decision       string // "", DecisionBreach or DecisionNoBreach
	Discovered     time.Time
	OpenedBy       string
	ContainedAt    *time.Time
	ContainedBy    string
	DecidedAt      *time.Time
	DecidedBy      string
	Affected       int // patients affected, counted at the decision
	Detail         Sealed
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Letter states.
const (
	LetterDrafted  = "drafted"
	LetterSent     = "sent"
	LetterReturned = "returned" // sent, and came back undelivered
)

// IncidentLetter is one affected patient's notification letter. Its text
// names that patient alone and is sealed under her key like the rest of
// her record.
type IncidentLetter struct {
	ID, IncidentID, PracticeID, PatientID string
	State                                 string
	Body                                  Sealed
	CreatedAt, UpdatedAt                  time.Time
	SentAt, ReturnedAt                    *time.Time
}

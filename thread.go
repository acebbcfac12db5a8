package haven

import "time"

// Who a thread is addressed to on the practice's side. A patient writes to
// her care team (her clinicians) or to the front desk (scheduling, forms,
// billing questions); a visit's waiting-room lines are the visit's own
// thread. The audience says whose work the thread is and whom its
// messages notify; who may read it is policy's, which honours the
// patient's restrictions whatever the audience.
const (
	AudienceCareTeam  = "care_team"
	AudienceFrontDesk = "front_desk"
	AudienceVisit     = "visit"
)

// ValidAudience reports whether a is an audience a patient may write to
// (a visit's thread is made by its visit, never chosen).
func ValidAudience(a string) bool { return a == AudienceCareTeam || a == AudienceFrontDesk }

// Thread is a conversation between a patient and her practice as storage
// holds it: its subject sealed under the patient's data key, and what the
// inbox needs in the clear (whose thread, whose work, whether it is done,
// how many messages). A visit's waiting-room thread has the visit's id as
// its own and no subject.
type Thread struct {
	ID, PracticeID, PatientID string
	VisitID                   string // the visit whose waiting-room thread this is; "" for others
	Audience                  string // one of the Audience* constants
	Subject                   Sealed // nil for a visit's thread
	StartedBy                 string
	AssigneeID                string // the workforce member triage gave it to; "" for nobody
	DoneUS                    int64  // when it was marked done (microseconds, UTC); 0 while open
	DoneBy                    string
	Messages                  int    // how many it holds; a message's Seq is its place, from 1
	LastUS                    int64  // the newest message's time
	LastSender                string // the newest message's sender
	ChangedUS                 int64  // raised by every change (a message, an assignment, done): what watchers compare
	CreatedUS                 int64
}

// Message is one message of a thread as storage holds it: its body sealed
// under the patient's data key, bound to its practice, patient and id.
type Message struct {
	ID, ThreadID, PracticeID, PatientID, SenderID string
	Seq                                           int // its place in the thread, from 1
	Body                                          Sealed
	// SealedAs is the record kind the body's associated data names:
	// "message", or "visit_message" for a waiting-room line written before
	// the waiting room's messages joined the threads (its ciphertext was
	// bound to that kind, and re-sealing it would need the key the
	// migration never holds).
	SealedAs  string
	FileIDs   []string // files of the patient's record attached to it
	CreatedUS int64
}

// ThreadRead is how far one person has read a thread: the Seq of the
// newest message they have seen (or sent).
type ThreadRead struct {
	ThreadID, UserID string
	Seq              int
}

// ThreadView is a thread opened for a reader policy allowed: its subject
// in the clear, names instead of ids, and what the reader has not read.
type ThreadView struct {
	ID          string     `json:"id"`
	PatientID   string     `json:"patient_id"`
	PatientName string     `json:"patient_name,omitempty"`
	VisitID     string     `json:"visit_id,omitempty"`
	VisitStart  *time.Time `json:"visit_start,omitempty"` // a visit's thread: when the visit is
	Audience    string     `json:"audience"`
	Subject     string     `json:"subject"`
	// AssigneeID and AssigneeName are the workforce member triage gave
	// the thread to; shown to the workforce only.
	AssigneeID   string    `json:"assignee_id,omitempty"`
	AssigneeName string    `json:"assignee_name,omitempty"`
	Done         bool      `json:"done"`
	Messages     int       `json:"messages"`
	Unread       int       `json:"unread"` // messages the reader has not seen
	LastAt       time.Time `json:"last_at"`
	// LastFromPatient says the newest message is the patient's: a reply
	// is owed.
	LastFromPatient bool `json:"last_from_patient"`
	// Changed is the thread's change stamp, for a page's watch.
	Changed int64 `json:"changed"`
}

// MessageView is a message opened for a reader policy allowed: its body
// in the clear, and whether the patient or a workforce member (named)
// sent it.
type MessageView struct {
	ID          string           `json:"id"`
	ThreadID    string           `json:"thread_id"`
	SenderID    string           `json:"sender_id"`
	FromPatient bool             `json:"from_patient"`
	SenderName  string           `json:"sender_name,omitempty"` // a workforce sender's name, as the practice's roster shows it
	Body        string           `json:"body"`
	SentAt      time.Time        `json:"sent_at"`
	Attachments []AttachmentView `json:"attachments,omitempty"`
}

// AttachmentView is a file attached to a message, as its reader may see
// it: its name and type only if policy lets the reader open the patient's
// files (file.read); otherwise Hidden, and nothing of the file but that
// there is one.
type AttachmentView struct {
	FileID      string `json:"file_id"`
	Name        string `json:"name,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Thumbnail   bool   `json:"thumbnail,omitempty"` // it has a thumbnail (/api/v1/files/{id}/renditions/thumbnail)
	Hidden      bool   `json:"hidden,omitempty"`
}

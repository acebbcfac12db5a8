package haven

import "time"

// States of a visit note.
const (
	NoteDraft  = "draft"  // the visit's clinician is still writing it; saved as she types
	NoteSigned = "signed" // locked under the practice's signature; changes are addenda
)

// Note is a visit's SOAP note as storage holds it: its four parts sealed
// together under the patient's data key, and in the clear what locking,
// release and verification need. Once signed, nothing of the row changes:
// Hash is SHA-256 of the note's canonical form (the service's noteCanon)
// and Signature is the practice's Ed25519 signature of that form by the
// key KeyID.
type Note struct {
	ID, PracticeID, PatientID, VisitID string
	AuthorID                           string // the visit's clinician
	Body                               Sealed // JSON of the four parts
	State                              string // NoteDraft or NoteSigned
	SignedBy                           string
	SignedUS                           int64
	ReleaseUS                          int64 // when the patient may read it (set at signing)
	Hash, Signature                    []byte
	KeyID                              string
	UpdatedUS, CreatedUS               int64
}

// Addendum is text appended to a signed note, signed like the note: a
// later change (or an accepted amendment) never edits what was signed.
type Addendum struct {
	ID, NoteID, PracticeID, PatientID string
	AuthorID                          string
	Body                              Sealed
	AmendmentID                       string // the amendment it answers; "" for the clinician's own
	Hash, Signature                   []byte
	KeyID                             string
	CreatedUS                         int64
}

// SOAP is a note's content.
type SOAP struct {
	Subjective string `json:"subjective"`
	Objective  string `json:"objective"`
	Assessment string `json:"assessment"`
	Plan       string `json:"plan"`
}

// NoteView is a note opened for a reader policy allowed.
type NoteView struct {
	ID          string    `json:"id"`
	VisitID     string    `json:"visit_id"`
	PatientID   string    `json:"patient_id"`
	PatientName string    `json:"patient_name,omitempty"`
	VisitStart  time.Time `json:"visit_start"`
	AuthorID    string    `json:"author_id"`
	AuthorName  string    `json:"author_name,omitempty"`
	SOAP
	State     string     `json:"state"`
	SignedAt  *time.Time `json:"signed_at,omitempty"`
	ReleaseAt *time.Time `json:"release_at,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
	// Hash (hex) and KeyID identify what was signed; Verified is the
	// check of the signature made while opening it (SignatureCheck).
	Hash      string          `json:"hash,omitempty"`
	KeyID     string          `json:"key_id,omitempty"`
	Signature *SignatureCheck `json:"signature,omitempty"`
	Addenda   []AddendumView  `json:"addenda,omitempty"`
	// Amendments are the patient's requests about this note, with any
	// statement of disagreement: they travel with the note.
	Amendments []AmendmentView `json:"amendments,omitempty"`
	// Editable says the reader is the visit's clinician and the note is a
	// draft; CanSign and CanAmend say what the page may offer.
	Editable bool `json:"editable"`
	CanAmend bool `json:"can_request_amendment,omitempty"`
}

// SignatureCheck is the result of checking a signed record against its
// signature: Valid, or the reason in words.
type SignatureCheck struct {
	Valid   bool   `json:"valid"`
	Message string `json:"message"`
}

// AddendumView is an addendum opened for a reader.
type AddendumView struct {
	ID          string          `json:"id"`
	AuthorName  string          `json:"author_name,omitempty"`
	Text        string          `json:"text"`
	AmendmentID string          `json:"amendment_id,omitempty"`
	At          time.Time       `json:"at"`
	Signature   *SignatureCheck `json:"signature,omitempty"`
}

// Parts of a record an amendment may concern.
const (
	AmendNote  = "note"  // a signed visit note (RecordID is the note's id)
	AmendChart = "chart" // her details: name, date of birth, contact (RecordID is the patient's id)
)

// States of an amendment request.
const (
	AmendmentRequested = "requested"
	AmendmentAccepted  = "accepted"
	AmendmentDenied    = "denied"
)

// Amendment is a patient's request to amend part of her record (HIPAA
// 164.526) as storage holds it: her reason, the practice's answer and her
// statement of disagreement sealed under her data key; in the clear what
// the practice's deadline list needs.
type Amendment struct {
	ID, PracticeID, PatientID string
	Part, RecordID            string // AmendNote or AmendChart, and which
	Reason                    Sealed
	State                     string
	DueUS                     int64  // 60 days after the request, or 30 more once extended
	Extension                 Sealed // the reason for the one extension; nil if none
	DecidedBy                 string
	DecidedUS                 int64
	Response                  Sealed // the denial's reason, or what was accepted
	AddendumID                string
	Disagreement              Sealed // the patient's statement; nil if none
	DisagreedUS               int64
	CreatedUS, ChangedUS      int64
}

// AmendmentView is an amendment opened for a reader policy allowed. On
// the practice's list (the compliance officer's too) the texts are empty:
// only the queue's facts are shown.
type AmendmentView struct {
	ID           string     `json:"id"`
	PatientID    string     `json:"patient_id"`
	PatientName  string     `json:"patient_name,omitempty"`
	Part         string     `json:"part"`
	RecordID     string     `json:"record_id"`
	VisitID      string     `json:"visit_id,omitempty"` // a note's visit, for its page
	PartLabel    string     `json:"part_label"`
	Reason       string     `json:"reason,omitempty"`
	State        string     `json:"state"`
	RequestedAt  time.Time  `json:"requested_at"`
	Due          time.Time  `json:"due"`
	DaysLeft     int        `json:"days_left"`
	Extended     bool       `json:"extended"`
	Extension    string     `json:"extension_reason,omitempty"`
	DecidedAt    *time.Time `json:"decided_at,omitempty"`
	DeciderName  string     `json:"decided_by,omitempty"`
	Response     string     `json:"response,omitempty"`
	AddendumID   string     `json:"addendum_id,omitempty"`
	Disagreement string     `json:"disagreement,omitempty"`
	DisagreedAt  *time.Time `json:"disagreed_at,omitempty"`
	// What the reader may do next, decided by the server.
	CanDecide   bool `json:"can_decide,omitempty"`
	CanExtend   bool `json:"can_extend,omitempty"`
	CanDisagree bool `json:"can_disagree,omitempty"`
}

package haven

import "time"

// Drug is one entry of a practice's formulary: an RxNorm concept the
// practice prescribes from. A formulary is the practice's list, not
// anyone's record: it is stored in the clear. Schedule is the DEA
// schedule ("CII" … "CV") of a controlled substance, "" otherwise;
// Haven prescribes no controlled substance (that needs EPCS
// certification), so such an entry can be listed but never prescribed.
type Drug struct {
	PracticeID, RxNorm, Name, Schedule string
}

// Controlled reports whether d is a controlled substance.
func (d *Drug) Controlled() bool { return d.Schedule != "" }

// Allergy is one entry of a patient's allergy list as storage holds it:
// the substance and reaction sealed under the patient's key.
type Allergy struct {
	ID, PracticeID, PatientID string
	Detail                    Sealed // AllergyView's substance and reaction, as JSON
	AddedBy                   string
	Added                     time.Time
}

// AllergyView is an allergy opened for a reader policy allowed.
type AllergyView struct {
	ID        string    `json:"id"`
	Substance string    `json:"substance"`
	Reaction  string    `json:"reaction,omitempty"`
	AddedBy   string    `json:"added_by"`
	Added     time.Time `json:"added"`
}

// PrescriptionStatus is where a prescription is on its way to the
// pharmacy.
type PrescriptionStatus string

const (
	RxDraft     PrescriptionStatus = "draft"     // written, not signed: nothing leaves
	RxQueued    PrescriptionStatus = "queued"    // signed and waiting in the outbox
	RxSent      PrescriptionStatus = "sent"      // the pharmacy has it and has not answered yet
	RxAccepted  PrescriptionStatus = "accepted"  // the pharmacy accepted it
	RxRejected  PrescriptionStatus = "rejected"  // the pharmacy refused it
	RxCancelled PrescriptionStatus = "cancelled" // cancelled by its prescriber (the pharmacy is told)
)

// Active reports whether a prescription in status s is in force: signed,
// not refused and not cancelled.
func (s PrescriptionStatus) Active() bool {
	return s == RxQueued || s == RxSent || s == RxAccepted
}

// Prescription is a prescription as storage holds it. What it prescribes
// is sealed under the patient's key (Content, a PrescriptionContent as
// JSON); the rest is what the outbox, lists and the lock need. Once
// signed it never changes but for its status: Signature is the
// practice's Ed25519 signature (key SigningKeyID) over the canonical
// content (service.CanonicalPrescription).
type Prescription struct {
	ID, PracticeID, PatientID, PrescriberID string
	VisitID                                 string // the visit it was written in, if any
	PharmacyID                              string // a registered pharmacy vendor
	Replaces                                string // the prescription a renewal continues
	Content                                 Sealed
	Status                                  PrescriptionStatus
	StatusReason                            string // a code from the pharmacy or the outbox, never PHI
	Signature                               []byte
	SigningKeyID                            string
	Signed                                  time.Time
	SignedAuth                              time.Time // the step-up the signature consumed
	Cancelled                               time.Time
	RenewalAsked                            time.Time // the patient asked for a renewal
	Created, Updated                        time.Time
}

// PrescriptionContent is what a prescription prescribes: PHI, sealed.
type PrescriptionContent struct {
	RxNorm       string `json:"rxnorm"`
	Drug         string `json:"drug"`
	Strength     string `json:"strength"`
	Form         string `json:"form"`
	Directions   string `json:"directions"`
	Quantity     int    `json:"quantity"`
	DaysSupply   int    `json:"days_supply"`
	Refills      int    `json:"refills"`
	Substitution bool   `json:"substitution"` // a generic may be dispensed
	// Acknowledged are the warnings the prescriber saw and went on
	// despite (allergy, duplicate), kept with what was signed.
	Acknowledged []string `json:"acknowledged,omitempty"`
}

// PrescriptionView is a prescription opened for a reader policy allowed.
type PrescriptionView struct {
	ID           string             `json:"id"`
	PatientID    string             `json:"patient_id"`
	PatientName  string             `json:"patient_name,omitempty"`
	PrescriberID string             `json:"prescriber_id"`
	Prescriber   string             `json:"prescriber"`
	VisitID      string             `json:"visit_id,omitempty"`
	PharmacyID   string             `json:"pharmacy_id"`
	Pharmacy     string             `json:"pharmacy"`
	Replaces     string             `json:"replaces,omitempty"`
	Status       PrescriptionStatus `json:"status"`
	StatusReason string             `json:"status_reason,omitempty"`
	Signed       *time.Time         `json:"signed,omitempty"`
	Verified     bool               `json:"signature_verified"`
	RenewalAsked *time.Time         `json:"renewal_asked,omitempty"`
	Created      time.Time          `json:"created"`
	PrescriptionContent
	// Warnings are what the prescriber must acknowledge before signing a
	// draft: an allergy on the list, an active prescription of the drug.
	Warnings []string `json:"warnings,omitempty"`
}

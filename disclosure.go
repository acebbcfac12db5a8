package haven

import "time"

// Disclosure is one time a patient's record left the practice for
// someone outside it (HIPAA 164.528, the accounting of disclosures): a
// prescription sent to her pharmacy, later an order to a lab or a record
// sent to another provider. It is read from the audit log, where each
// sending is recorded before anything leaves, so the list cannot miss
// one that happened.
type Disclosure struct {
	Time time.Time `json:"time"`
	// Recipient is who received it: the vendor's registered name.
	Recipient     string `json:"recipient"`
	RecipientKind string `json:"recipient_kind"` // the vendor's kind: pharmacy, lab, provider
	// What is what was sent, in words (PHI: the drug's name).
	What string `json:"what"`
	// Why is the purpose of the disclosure, in words.
	Why string `json:"why"`
	// Seq is the audit event that records the sending; 0 for a copy sent
	// at a written request (its export event is in her access history).
	Seq uint64 `json:"seq"`
}

package haven

import (
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Vendor is an outside system Haven sends something to: a pharmacy, a
// laboratory, a payment processor, the mail relay, the object store, the
// KMS. HIPAA lets PHI leave a practice only to a business associate under
// a current business associate agreement (BAA), so every adapter that
// sends outside asks the registry first (service.CheckEgress): an
// unregistered, retired or expired vendor, or one whose agreement does not
// cover what would be sent, gets nothing.
//
// A vendor belongs to one practice (its pharmacies and labs) or, with an
// empty PracticeID, to the platform: the systems the server itself is
// configured with, which carry every practice's traffic. A vendor record
// is business information, not PHI: it is stored in the clear.
type Vendor struct {
	ID, PracticeID string
	Name           string
	Kind           VendorKind
	Endpoint       string   // where the adapter connects: a URL, or host:port
	PHI            PHILevel // the most the agreement lets it receive
	// BAASigned and BAAExpires are dates (midnight UTC); the agreement
	// covers every day up to and including BAAExpires. Zero: none on file.
	BAASigned, BAAExpires time.Time
	BAADocument           string // where the signed agreement is kept (a reference, not the document)
	Contact               string // the vendor's contact for the agreement
	Retired               time.Time
	Reminded              time.Time // when admins were told the agreement ends soon; zero: not yet
	Created, Updated      time.Time
}

// VendorKind is what an outside system does.
type VendorKind string

const (
	VendorPharmacy      VendorKind = "pharmacy"
	VendorLab           VendorKind = "lab"
	VendorPayment       VendorKind = "payment"
	VendorEmailRelay    VendorKind = "email_relay"
	VendorSMS           VendorKind = "sms"
	VendorObjectStorage VendorKind = "object_storage"
	VendorKMS           VendorKind = "kms"
	VendorVideo         VendorKind = "video"
)

// VendorKinds lists every kind, in the order forms show them.
var VendorKinds = []VendorKind{VendorPharmacy, VendorLab, VendorPayment, VendorEmailRelay, VendorSMS, VendorObjectStorage, VendorKMS, VendorVideo}

// Valid reports whether k is a known kind.
func (k VendorKind) Valid() bool {
	for _, v := range VendorKinds {
		if k == v {
			return true
		}
	}
	return false
}

// Label is the kind in plain words.
func (k VendorKind) Label() string {
	return map[VendorKind]string{VendorPharmacy: "Pharmacy", VendorLab: "Laboratory", VendorPayment: "Payment processor",
		VendorEmailRelay: "Email relay", VendorSMS: "Text messages (SMS)", VendorObjectStorage: "File storage",
		VendorKMS: "Key management (KMS)", VendorVideo: "Video"}[k]
}

// PHILevel is how much PHI a vendor may receive, in increasing order.
type PHILevel string

const (
	PHINone    PHILevel = "none"    // nothing about a patient: an amount and an opaque reference
	PHIMinimum PHILevel = "minimum" // the minimum necessary for the service (HIPAA 164.502(b))
	PHIFull    PHILevel = "full"    // whatever the service needs, the whole record if it must
)

// PHILevels lists every level, least first.
var PHILevels = []PHILevel{PHINone, PHIMinimum, PHIFull}

func (l PHILevel) rank() int {
	for i, v := range PHILevels {
		if l == v {
			return i
		}
	}
	return -1
}

// Valid reports whether l is a known level.
func (l PHILevel) Valid() bool { return l.rank() >= 0 }

// Covers reports whether an agreement allowing l covers sending what.
func (l PHILevel) Covers(what PHILevel) bool {
	return l.Valid() && what.Valid() && l.rank() >= what.rank()
}

// Label is the level in plain words.
func (l PHILevel) Label() string {
	return map[PHILevel]string{PHINone: "None", PHIMinimum: "Minimum necessary", PHIFull: "Full"}[l]
}

// BAAReminderLead is how long before a BAA ends its practice's admins are
// told, once.
const BAAReminderLead = 30 * 24 * time.Hour

// Why a vendor may not receive something: the reasons CheckEgress records.
const (
	EgressUnregistered = "vendor_unregistered"
	EgressRetired      = "vendor_retired"
	EgressNoBAA        = "baa_missing"
	EgressExpired      = "baa_expired"
	EgressNotCovered   = "phi_not_covered"
)

// BAAEnd is the first instant the agreement no longer covers (the day
// after BAAExpires); zero without an agreement.
func (v *Vendor) BAAEnd() time.Time {
	if v.BAAExpires.IsZero() {
		return time.Time{}
	}
	return v.BAAExpires.AddDate(0, 0, 1)
}

// EgressRefusal returns why v may not receive phi at now, or "" when it
// may. Sending PHI needs an agreement in force; sending none needs no
// agreement, but an agreement on file that has ended stops everything
// (a relay whose contract ended gets nothing, PHI or not).
func (v *Vendor) EgressRefusal(phi PHILevel, now time.Time) string {
	switch {
	case v == nil:
		return EgressUnregistered
	case !v.Retired.IsZero():
		return EgressRetired
	case !v.PHI.Covers(phi):
		return EgressNotCovered
	case !v.BAAExpires.IsZero() && !now.Before(v.BAAEnd()):
		return EgressExpired
	case phi != PHINone && v.BAAExpires.IsZero():
		return EgressNoBAA
	}
	return ""
}

// Limits of a vendor's fields.
const (
	MaxVendorName  = 120
	maxVendorField = 500
)

// Check validates v's fields as an admin or operator gave them, with
// messages that name the field, for a form.
func (v *Vendor) Check() error {
	v.Name, v.Endpoint, v.BAADocument, v.Contact = strings.TrimSpace(v.Name), strings.TrimSpace(v.Endpoint),
		strings.TrimSpace(v.BAADocument), strings.TrimSpace(v.Contact)
	switch {
	case v.Name == "" || len(v.Name) > MaxVendorName || !plainLine(v.Name):
		return Errorf(EINVALID, "give the vendor a name of one line, at most %d characters", MaxVendorName)
	case !v.Kind.Valid():
		return Errorf(EINVALID, "choose what kind of vendor this is")
	case !v.PHI.Valid():
		return Errorf(EINVALID, "choose how much patient information the vendor may receive")
	case v.Endpoint == "" || len(v.Endpoint) > maxVendorField || !plainLine(v.Endpoint) || !validEndpoint(v.Endpoint):
		return Errorf(EINVALID, "give the vendor's endpoint: an https:// address, or host:port")
	case len(v.BAADocument) > maxVendorField || !plainLine(v.BAADocument):
		return Errorf(EINVALID, "the agreement's document reference must be one line of at most %d characters", maxVendorField)
	case len(v.Contact) > maxVendorField || !plainLine(v.Contact):
		return Errorf(EINVALID, "the contact must be one line of at most %d characters", maxVendorField)
	case v.PHI != PHINone && !v.BAAExpires.IsZero() && v.BAASigned.IsZero():
		return Errorf(EINVALID, "give the date the agreement was signed")
	case !v.BAASigned.IsZero() && !v.BAAExpires.IsZero() && v.BAAExpires.Before(v.BAASigned):
		return Errorf(EINVALID, "the agreement cannot end before it was signed")
	}
	return nil
}

// validEndpoint accepts an absolute URL with a host, or host:port.
func validEndpoint(e string) bool {
	if u, err := url.Parse(e); err == nil && u.Scheme != "" && u.Host != "" {
		return true
	}
	host, port, ok := strings.Cut(e, ":")
	return ok && host != "" && port != "" && !strings.ContainsAny(e, "/ ")
}

func plainLine(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// ParseDate reads a YYYY-MM-DD date as midnight UTC; "" is the zero time.
func ParseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, Errorf(EINVALID, "a date must be written YYYY-MM-DD")
	}
	return t, nil
}

// A vendor that may receive no PHI (a payment processor) is handed only
// types that cannot carry any: see Charge in payment.go, an amount, a
// currency from a fixed list and a random reference, none with a field a
// caller could fill with a name, an email or a visit's reason.

package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"net/netip"
	"time"

	"haven"

	"github.com/transparency-dev/merkle/rfc6962"
)

// Purposes of use. HIPAA asks why PHI was touched, not only who touched it;
// the purpose is what a compliance officer filters on first.
const (
	PurposeTreatment      = "treatment"
	PurposePayment        = "payment"
	PurposeOperations     = "operations"
	PurposePatientRequest = "patient_request"
	PurposeBreakGlass     = "break_glass"
	PurposeSecurity       = "security"
)

// PlatformLogID is the log of events that belong to no practice (platform
// operators, sign-ins before a practice is known).
const PlatformLogID = "platform"

// Event is one audited action. It records who did what to which record, for
// which patient, why, and what was decided, and never what the record says:
// no PHI content, no free text. Every string field is an identifier or a
// short machine code from a restricted alphabet (see Validate), so an event
// cannot be used to smuggle a note, a name or a diagnosis into the log, which
// is kept for years and shown to auditors and to the patient.
//
// SessionID is a session's identifier, never its bearer token. A break-glass
// justification is text a clinician typed, so it is stored sealed with the
// grant, and the event names the grant in ResourceID.
type Event struct {
	Seq          uint64    // position in the log, from 0; assigned by Log.Append
	Time         time.Time // UTC, microsecond precision; set by Log.Append when zero
	LogID        string    // practice id, or PlatformLogID
	ActorID      string
	ActorRole    string // a haven.Role, or empty when no one is signed in
	SessionID    string
	Action       string // e.g. "chart.read", "auth.login", "breakglass.grant"
	ResourceKind string // e.g. "note", "user", "visit"
	ResourceID   string
	PatientID    string // the patient the event concerns, if any
	Purpose      string // one of the Purpose constants
	Decision     string // haven.DecisionAllow, DecisionDeny or DecisionFail
	Reason       string // a machine code from policy, e.g. "not_on_care_team"
	ClientAddr   string // IP address, optionally with port
	RequestID    string
}

// Limits on event fields. They are generous for identifiers and codes and
// far too small for prose.
const (
	maxLogID  = 64
	maxID     = 128
	maxCode   = 64
	maxAddr   = 64
	timeFloor = 946684800 // 2000-01-01: earlier times are a clock fault
)

// ForActor returns an event for action filled in from the authenticated
// actor: who, in which session, from where, in which request, and which
// practice's log it belongs to.
func ForActor(a haven.Actor, action string) Event {
	logID := a.PracticeID
	if logID == "" {
		logID = PlatformLogID
	}
	return Event{
		LogID:      logID,
		ActorID:    a.UserID,
		ActorRole:  string(a.Role),
		SessionID:  a.SessionID,
		Action:     action,
		ClientAddr: a.ClientAddr,
		RequestID:  a.RequestID,
	}
}

// Validate reports whether e may be appended. Messages name the field, never
// its value: a rejected value may be exactly the PHI that must not spread.
func (e *Event) Validate() error {
	if e.Time.IsZero() {
		return haven.Errorf(haven.EINVALID, "audit event: time required")
	}
	if e.Time.Unix() < timeFloor {
		return haven.Errorf(haven.EINVALID, "audit event: time before the year 2000")
	}
	if !isLogID(e.LogID) {
		return haven.Errorf(haven.EINVALID, "audit event: log id must be 1 to %d characters of a-z, 0-9, - and _", maxLogID)
	}
	if e.Action == "" {
		return haven.Errorf(haven.EINVALID, "audit event: action required")
	}
	if e.Decision == "" {
		return haven.Errorf(haven.EINVALID, "audit event: decision required")
	}
	if e.ActorRole != "" && !haven.Role(e.ActorRole).Valid() {
		return haven.Errorf(haven.EINVALID, "audit event: unknown actor role")
	}
	ids := []struct{ name, v string }{
		{"actor id", e.ActorID}, {"session id", e.SessionID}, {"resource id", e.ResourceID},
		{"patient id", e.PatientID}, {"request id", e.RequestID},
	}
	for _, f := range ids {
		if !isToken(f.v, maxID, idByte) {
			return haven.Errorf(haven.EINVALID, "audit event: %s must be at most %d characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'", f.name, maxID)
		}
	}
	codes := []struct{ name, v string }{
		{"action", e.Action}, {"resource kind", e.ResourceKind}, {"purpose", e.Purpose},
		{"decision", e.Decision}, {"reason", e.Reason},
	}
	for _, f := range codes {
		if !isToken(f.v, maxCode, codeByte) {
			return haven.Errorf(haven.EINVALID, "audit event: %s must be a code of at most %d characters of a-z, 0-9, '.', '_', ':' and '-'", f.name, maxCode)
		}
	}
	if e.ClientAddr != "" {
		if len(e.ClientAddr) > maxAddr || !validAddr(e.ClientAddr) {
			return haven.Errorf(haven.EINVALID, "audit event: client address must be an IP address, optionally with a port")
		}
	}
	return nil
}

func validAddr(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParseAddrPort(s)
	return err == nil
}

func isLogID(s string) bool {
	return s != "" && isToken(s, maxLogID, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	})
}

// isToken reports whether s is at most max bytes, each accepted by ok. The
// alphabets are ASCII without spaces or control characters: no line breaks
// to forge a second entry in an export, no room for a sentence.
func isToken(s string, max int, ok func(byte) bool) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func idByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '-'
}

func codeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
}

// canonicalMagic starts every canonical encoding. It names the format and
// its version, so a future encoding can never be confused with this one and
// no other kind of data hashes to a valid audit leaf.
const canonicalMagic = "haven.audit.event/1\n"

// stringFields lists e's string fields in canonical order. The order is part
// of the format and must never change within a version.
func (e *Event) stringFields() [13]*string {
	return [13]*string{
		&e.LogID, &e.ActorID, &e.ActorRole, &e.SessionID, &e.Action,
		&e.ResourceKind, &e.ResourceID, &e.PatientID, &e.Purpose,
		&e.Decision, &e.Reason, &e.ClientAddr, &e.RequestID,
	}
}

// Canonical returns the deterministic encoding of e that its leaf hash
// commits to. Version 1 is:
//
//	"haven.audit.event/1\n"
//	Seq                    8 bytes, big-endian
//	Time                   8 bytes, big-endian signed microseconds since 1970 UTC
//	13 strings, each       2-byte big-endian length, then the bytes:
//	  LogID ActorID ActorRole SessionID Action ResourceKind ResourceID
//	  PatientID Purpose Decision Reason ClientAddr RequestID
//
// The sequence number is inside the leaf so that a row moved to another
// position (a deletion or insertion that renumbers the rows after it, or a
// swap) is caught on its own, and the verifier can tell where it came from.
// Time below a microsecond is not encoded, because databases keep
// microseconds; Log.Append truncates it before hashing.
func (e *Event) Canonical() []byte {
	n := len(canonicalMagic) + 16
	for _, f := range e.stringFields() {
		n += 2 + len(*f)
	}
	return e.appendCanonical(make([]byte, 0, n))
}

// appendCanonical appends e's canonical encoding to b.
func (e *Event) appendCanonical(b []byte) []byte {
	fields := e.stringFields()
	b = append(b, canonicalMagic...)
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMicro()))
	for _, f := range fields {
		s := *f
		if len(s) > 0xffff { // impossible for a valid event; keep the encoding unambiguous anyway
			s = s[:0xffff]
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return b
}

// ParseCanonical decodes what Canonical encoded, so that an auditor holding
// only the bytes behind a leaf can read the event. It does not validate the
// event's fields.
func ParseCanonical(b []byte) (Event, error) {
	bad := haven.Errorf(haven.EINVALID, "audit event: malformed canonical encoding")
	var e Event
	if len(b) < len(canonicalMagic)+16 || string(b[:len(canonicalMagic)]) != canonicalMagic {
		return e, bad
	}
	b = b[len(canonicalMagic):]
	e.Seq = binary.BigEndian.Uint64(b)
	e.Time = time.UnixMicro(int64(binary.BigEndian.Uint64(b[8:]))).UTC()
	b = b[16:]
	for _, f := range e.stringFields() {
		if len(b) < 2 {
			return Event{}, bad
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return Event{}, bad
		}
		*f = string(b[2 : 2+n])
		b = b[2+n:]
	}
	if len(b) != 0 {
		return Event{}, bad
	}
	return e, nil
}

// hasher is the RFC 6962 hasher over SHA-256 that every tree in this package
// uses: leaves are SHA-256(0x00 || data), interior nodes SHA-256(0x01 || l || r).
var hasher = rfc6962.DefaultHasher

// LeafHash returns the RFC 6962 leaf hash of e's canonical encoding: the
// value the Merkle tree commits to for this event.
func (e *Event) LeafHash() []byte {
	return hasher.HashLeaf(e.Canonical())
}

// leafHasher computes leaf hashes with one reused buffer and digest, for
// the verifier, which hashes every event of a log.
type leafHasher struct {
	buf []byte
	h   hash.Hash
	out [sha256.Size]byte
}

func newLeafHasher() *leafHasher { return &leafHasher{h: sha256.New()} }

// leaf returns e's leaf hash, valid until the next call.
func (lh *leafHasher) leaf(e *Event) []byte {
	lh.buf = append(lh.buf[:0], 0) // RFC 6962 leaf prefix
	lh.buf = e.appendCanonical(lh.buf)
	lh.h.Reset()
	lh.h.Write(lh.buf)
	return lh.h.Sum(lh.out[:0])
}

// HashSize is the size of every hash in the log.
const HashSize = sha256.Size

// normalize prepares an event for appending: UTC, microsecond precision, so
// what the database returns hashes to the same leaf.
func (e *Event) normalize(now time.Time) {
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
}

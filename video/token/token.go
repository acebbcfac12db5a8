// Package token owns the join tokens of video visits: a small, versioned,
// HMAC-SHA-256-authenticated credential that lets one participant join one
// visit's call, once, within a couple of minutes of being admitted.
//
// A token is minted only when a person is admitted (or invited by the
// clinician) and is bound to the visit, the participant and their role. A
// token copied out of a browser, a log or a shoulder-surfed screen is
// therefore worth little: it expires quickly, it opens only that visit for
// that signed-in participant, and it works once (see [Spent]).
//
// This package never logs and never sees PHI: tokens carry only random ids,
// a role and an expiry. Its errors say why a token was refused (for the
// audit log, see [Reason]) without echoing the token.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"time"

	"haven"
)

// Role is what a participant is in a call. It decides what they may do
// there: only a clinician may end the visit or invite a third participant.
type Role string

const (
	Patient   Role = "patient"
	Clinician Role = "clinician"
	// Guest is a third participant (an interpreter, a family member) who
	// may join only at the clinician's invitation.
	Guest Role = "guest"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return roleByte(r) != 0 }

func roleByte(r Role) byte {
	switch r {
	case Patient:
		return 1
	case Clinician:
		return 2
	case Guest:
		return 3
	}
	return 0
}

func byteRole(b byte) Role {
	switch b {
	case 1:
		return Patient
	case 2:
		return Clinician
	case 3:
		return Guest
	}
	return ""
}

const (
	// DefaultTTL is how long a token lives when Claims.Expiry is zero: long
	// enough for a browser to open the call page and its WebSocket, short
	// enough that a leaked token is stale before it can be used elsewhere.
	DefaultTTL = 2 * time.Minute
	// MaxTTL caps Claims.Expiry. A long-lived join token would be a
	// bearer credential to a clinical conversation; Mint refuses one.
	MaxTTL = 10 * time.Minute
	// KeySize is the size of the HMAC key the caller supplies.
	KeySize = 32
	// MaxIDLength bounds visit and participant ids.
	MaxIDLength = haven.MaxIDLength
	// MaxLength bounds the text of a token; longer input is refused before
	// it is decoded.
	MaxLength = 256

	version  = 1
	idSize   = 16
	macSize  = sha256.Size
	fixedLen = 1 + idSize + 8 + 1 // version, token id, expiry, role
	minRaw   = fixedLen + 1 + 1 + 1 + 1 + macSize
)

// macLabel separates this MAC from any other use a careless caller might
// make of the same key.
const macLabel = "haven video join token\x00"

// Claims is what a token says. Ids are random, never PHI.
type Claims struct {
	TokenID       string // 32 lower-case hex digits; Mint draws one when empty
	VisitID       string
	ParticipantID string // the user id of the signed-in participant
	Role          Role
	Expiry        time.Time // whole seconds; Mint uses now+DefaultTTL when zero
}

// NewTokenID returns a fresh random token id, for a caller that wants to
// record the id (in the audit log, say) before minting.
func NewTokenID() string {
	var b [idSize]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("token: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// Mint returns a token for c, authenticated under key. It refuses claims
// that are not bound to a visit, a participant and a known role, and an
// expiry that is past or more than MaxTTL away.
func Mint(key []byte, c Claims, now time.Time) (string, error) {
	if len(key) != KeySize {
		return "", haven.Errorf(haven.EINTERNAL, "join token key must be %d bytes", KeySize)
	}
	if c.TokenID == "" {
		c.TokenID = NewTokenID()
	}
	id, err := hex.DecodeString(c.TokenID)
	if err != nil || len(id) != idSize || hex.EncodeToString(id) != c.TokenID {
		return "", haven.Errorf(haven.EINVALID, "join token id must be %d lower-case hex digits", 2*idSize)
	}
	if !haven.PlausibleID(c.VisitID) || !haven.PlausibleID(c.ParticipantID) {
		return "", haven.Errorf(haven.EINVALID, "join token needs a visit id and a participant id of 1 to %d lower-case letters, digits, '-' or '_'", MaxIDLength)
	}
	rb := roleByte(c.Role)
	if rb == 0 {
		return "", haven.Errorf(haven.EINVALID, "unknown participant role %q", c.Role)
	}
	if c.Expiry.IsZero() {
		c.Expiry = now.Add(DefaultTTL)
	}
	exp := c.Expiry.Unix()
	if exp <= now.Unix() {
		return "", haven.Errorf(haven.EINVALID, "join token expiry must be in the future")
	}
	if c.Expiry.Sub(now) > MaxTTL {
		return "", haven.Errorf(haven.EINVALID, "join token may live at most %s", MaxTTL)
	}

	raw := make([]byte, 0, fixedLen+2+len(c.VisitID)+len(c.ParticipantID)+macSize)
	raw = append(raw, version)
	raw = append(raw, id...)
	raw = binary.BigEndian.AppendUint64(raw, uint64(exp))
	raw = append(raw, rb)
	raw = append(raw, byte(len(c.VisitID)))
	raw = append(raw, c.VisitID...)
	raw = append(raw, byte(len(c.ParticipantID)))
	raw = append(raw, c.ParticipantID...)
	raw = append(raw, sum(key, raw)...)
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// Verify checks tok under key and returns its claims if it is authentic,
// unexpired at now, and bound to visitID and participantID. It does not
// spend the token; [Redeem] does both.
//
// The MAC is checked before any field is believed, so a forged token can
// never reach the comparisons that follow it.
func Verify(key []byte, tok, visitID, participantID string, now time.Time) (Claims, error) {
	if len(key) != KeySize {
		return Claims{}, haven.Errorf(haven.EINTERNAL, "join token key must be %d bytes", KeySize)
	}
	c, err := parse(key, tok)
	if err != nil {
		return Claims{}, err
	}
	if now.Unix() >= c.Expiry.Unix() {
		return Claims{}, refused(ErrExpired)
	}
	if c.VisitID != visitID {
		return Claims{}, refused(ErrOtherVisit)
	}
	if c.ParticipantID != participantID {
		return Claims{}, refused(ErrOtherParticipant)
	}
	return c, nil
}

// parse decodes tok and checks its MAC; it returns the claims only if the
// MAC verifies and the layout is exact.
func parse(key []byte, tok string) (Claims, error) {
	if len(tok) > MaxLength || len(tok) == 0 {
		return Claims{}, refused(ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil || len(raw) < minRaw {
		return Claims{}, refused(ErrMalformed)
	}
	if raw[0] != version {
		return Claims{}, refused(ErrMalformed)
	}
	body, mac := raw[:len(raw)-macSize], raw[len(raw)-macSize:]
	if !hmac.Equal(mac, sum(key, body)) {
		return Claims{}, refused(ErrForged)
	}

	c := Claims{TokenID: hex.EncodeToString(body[1 : 1+idSize])}
	exp := int64(binary.BigEndian.Uint64(body[1+idSize:]))
	c.Expiry = time.Unix(exp, 0)
	c.Role = byteRole(body[fixedLen-1])
	rest := body[fixedLen:]
	var ok bool
	if c.VisitID, rest, ok = lengthPrefixed(rest); !ok {
		return Claims{}, refused(ErrMalformed)
	}
	if c.ParticipantID, rest, ok = lengthPrefixed(rest); !ok {
		return Claims{}, refused(ErrMalformed)
	}
	// Only Mint can produce a verifying MAC, so these hold for every
	// authentic token; they are checked so a key shared by mistake with
	// other code still cannot smuggle in a strange token.
	if len(rest) != 0 || c.Role == "" || exp <= 0 || !haven.PlausibleID(c.VisitID) || !haven.PlausibleID(c.ParticipantID) {
		return Claims{}, refused(ErrMalformed)
	}
	return c, nil
}

func lengthPrefixed(b []byte) (string, []byte, bool) {
	if len(b) < 1 {
		return "", nil, false
	}
	n := int(b[0])
	if len(b) < 1+n {
		return "", nil, false
	}
	return string(b[1 : 1+n]), b[1+n:], true
}

func sum(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macLabel))
	m.Write(body)
	return m.Sum(nil)
}

package token

import (
	"errors"

	"haven"
)

// Why a token was refused. Each refusal is a *haven.Error whose Err is one
// of these, so callers branch with errors.Is and the audit log records
// [Reason]; the client sees only the error's code and message.
var (
	// ErrMalformed: not a token this package could have made.
	ErrMalformed = errors.New("malformed join token")
	// ErrForged: well formed, but the MAC does not verify under our key.
	ErrForged = errors.New("join token MAC does not verify")
	// ErrExpired: authentic, but past its expiry.
	ErrExpired = errors.New("join token expired")
	// ErrReused: authentic and current, but already spent.
	ErrReused = errors.New("join token already used")
	// ErrOtherVisit: authentic, but minted for another visit.
	ErrOtherVisit = errors.New("join token is for another visit")
	// ErrOtherParticipant: authentic, but minted for someone else.
	ErrOtherParticipant = errors.New("join token is for another participant")
)

var refusals = []struct {
	err     error
	code    string
	reason  string
	message string
}{
	{ErrMalformed, haven.EUNAUTHORIZED, "malformed", "The join link is not valid."},
	{ErrForged, haven.EUNAUTHORIZED, "forged", "The join link is not valid."},
	{ErrExpired, haven.EUNAUTHORIZED, "expired", "The join link has expired; ask for a new one."},
	{ErrReused, haven.EUNAUTHORIZED, "reused", "The join link was already used; ask for a new one."},
	{ErrOtherVisit, haven.EFORBIDDEN, "other_visit", "The join link is for another visit."},
	{ErrOtherParticipant, haven.EFORBIDDEN, "other_participant", "The join link is for someone else."},
}

// refused wraps a sentinel in the *haven.Error a client may see. Malformed
// and forged tokens get the same message, so a prober learns nothing about
// how close a guess came.
func refused(sentinel error) error {
	for _, r := range refusals {
		if r.err == sentinel {
			return &haven.Error{Code: r.code, Message: r.message, Err: sentinel}
		}
	}
	return haven.Wrap(haven.EINTERNAL, sentinel, "join token check failed")
}

// Reason names why err refused a token, in a word fit for the audit log
// ("forged", "expired", "reused", "other_visit", ...). It returns "" for
// errors that are not token refusals.
func Reason(err error) string {
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return ""
}

package haven

import (
	"errors"
	"fmt"
)

// Error codes. Callers branch on the code, never on message text; the web
// layer maps each code to one HTTP status in one table.
const (
	ECONFLICT     = "conflict"     // the request clashes with current state
	EINTERNAL     = "internal"     // a fault on our side; details go to the log only
	EINVALID      = "invalid"      // the input is wrong; the message says how
	ENOTFOUND     = "not_found"    // no such thing, or the actor may not know it exists
	EUNAUTHORIZED = "unauthorized" // no valid session or credentials
	EFORBIDDEN    = "forbidden"    // authenticated, but policy says no
	ESTEPUP       = "step_up"      // allowed only after a fresh authentication
	ETOOMANY      = "rate_limited" // throttled; try again later
	EUNAVAILABLE  = "unavailable"  // a dependency (database, audit log, KMS) is down
)

// Error is Haven's one error type. Message is safe to show to the client and
// must never contain PHI: it may name ids and settings, never their contents.
// Err carries the underlying cause for the log.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error that keeps cause for the log and shows message to the client.
func Wrap(code string, cause error, message string) *Error {
	return &Error{Code: code, Message: message, Err: cause}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err. Internal errors
// (code EINTERNAL, and errors that are not *Error) get a generic message
// whatever their text: they describe our side (a key id, a file, a
// query), which belongs in the log, never in a response.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "Internal error."
}

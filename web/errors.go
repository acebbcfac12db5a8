package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"haven"
	"haven/identity"
	"haven/policy"
)

// This file is the one error path. statusOf maps an error to its HTTP
// status; apiError answers the API and the WebSocket with a JSON error,
// pageError answers a page with a page. Both log a server fault once,
// with the request id, and show the client only the error's client-safe
// message; both say when to come back (Retry-After) on a throttled answer.

// statusByCode maps every one of Haven's error codes to its HTTP status;
// TestEveryErrorCodeHasAStatus holds it to the codes error.go declares.
var statusByCode = map[string]int{
	haven.ECONFLICT:     http.StatusConflict,
	haven.EINTERNAL:     http.StatusInternalServerError,
	haven.EINVALID:      http.StatusBadRequest,
	haven.ENOTFOUND:     http.StatusNotFound,
	haven.EUNAUTHORIZED: http.StatusUnauthorized,
	haven.EFORBIDDEN:    http.StatusForbidden,
	haven.ESTEPUP:       http.StatusForbidden,
	haven.ETOOMANY:      http.StatusTooManyRequests,
	haven.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// statusOf is the status an answer to err carries: its code's, and 500
// for anything without a known code.
func statusOf(err error) int {
	if status, ok := statusByCode[haven.ErrorCode(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// DefaultRetryAfter is what a throttled answer asks the client to wait
// when the throttle did not say (a busy password hasher, a full queue).
const DefaultRetryAfter = time.Second

// errorStatus does what every error answer does before its body: log a
// server fault once (the client sees only "Internal error." or the code's
// message) and say when a throttled client may try again. It returns the
// status.
func (s *Server) errorStatus(w http.ResponseWriter, r *http.Request, err error) int {
	status := statusOf(err)
	if status >= 500 {
		s.Logger.Error("request failed", "request_id", RequestID(r.Context()), "route", r.Pattern, "code", haven.ErrorCode(err), "err", err)
	}
	if status == http.StatusTooManyRequests {
		setRetryAfter(w, err)
	}
	return status
}

// setRetryAfter sets Retry-After for a throttled answer: the throttle's
// wait, rounded up to whole seconds, or DefaultRetryAfter.
func setRetryAfter(w http.ResponseWriter, err error) {
	d := identity.RetryAfter(err)
	var rl *rateLimitedError
	if errors.As(err, &rl) {
		d = rl.wait
	}
	if d <= 0 {
		d = DefaultRetryAfter
	}
	w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
}

// apiError answers an API request with err as JSON: its code, its
// client-safe message and the request id.
func (s *Server) apiError(w http.ResponseWriter, r *http.Request, err error) {
	status := s.errorStatus(w, r, err)
	writeError(w, r, status, haven.ErrorCode(err), haven.ErrorMessage(err))
}

// pageError answers a page request with err: a request that needs a
// session is sent to sign in, one that needs a fresh authentication to the
// step-up page (which returns it here); anything else gets the error page
// with its status and message.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	switch haven.ErrorCode(err) {
	case haven.EUNAUTHORIZED:
		http.Redirect(w, r, "/login?next="+url.QueryEscape(returnPath(r)), http.StatusSeeOther)
		return
	case haven.ESTEPUP:
		if s.id != nil {
			http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape(returnPath(r)), http.StatusSeeOther)
			return
		}
	}
	status := s.errorStatus(w, r, err)
	p := s.newPage(r, "Not available")
	p.Error = haven.ErrorMessage(err)
	p.Data = RequestID(r.Context())
	if trainingLapsed(err) {
		p.Next = policy.TrainingPage // the refusal of lapsed training links to it
	}
	s.render(w, r, status, "message.html", p)
}

// signInFirst answers a request that needs a session and has none: 401
// for the API, the sign-in page (returning here) for a page.
func (s *Server) signInFirst(w http.ResponseWriter, r *http.Request, k kind) {
	if k == fhirJSON {
		s.fhirError(w, r, haven.Errorf(haven.EUNAUTHORIZED, "please sign in"))
		return
	}
	if k != html {
		s.apiError(w, r, haven.Errorf(haven.EUNAUTHORIZED, "please sign in"))
		return
	}
	q := url.Values{"next": {returnPath(r)}}
	if ended, _ := r.Context().Value(endedCtxKey).(bool); ended {
		q.Set("ended", "1")
	}
	http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
}

// challenge answers a challenged session's request for anything but its
// step-up: the step-up code for the API, the step-up page for a page.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request, k kind) {
	if k == fhirJSON {
		s.fhirError(w, r, haven.Errorf(haven.ESTEPUP, "this session moved to another network or device; confirm it is you at /api/v1/session/step-up"))
		return
	}
	if k != html {
		s.apiError(w, r, haven.Errorf(haven.ESTEPUP, "this session moved to another network or device; confirm it is you at /api/v1/session/step-up"))
		return
	}
	http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape(returnPath(r)), http.StatusSeeOther)
}

type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// writeError writes a JSON error body. apiError calls it for errors; the
// middleware calls it directly for the few answers that are not about a
// request's error but about the request itself (413 for a body over the
// limit, 403 for a cross-origin post, 500 after a panic); a code left
// empty is named after the status.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	var b errorBody
	b.Error.Code = code
	if code == "" {
		b.Error.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
	}
	b.Error.Message = msg
	b.Error.RequestID = RequestID(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(b); err != nil {
		slog.Debug("write error body", "err", err)
	}
}

// errBadParam is the error for a malformed query parameter.
func errBadParam(name string) error {
	return haven.Errorf(haven.EINVALID, "query parameter %q is malformed", name)
}

package web

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"haven"
)

// statusByCode is the one table mapping Haven's error codes to HTTP statuses.
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

// Error writes err to the client: its code's status and client-safe
// message. Internal errors are logged once, with the request id, and shown
// only as "Internal error." so no detail (or PHI) reaches the client.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	code := haven.ErrorCode(err)
	if code == haven.ESTEPUP && s.StepUpRedirect(w, r) {
		return // a page: fresh authentication first, then back here
	}
	status, ok := statusByCode[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		s.Logger.Error("request failed", "request_id", RequestID(r.Context()), "code", code, "err", err)
	}
	writeError(w, r, &code, status, haven.ErrorMessage(err))
}

type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, r *http.Request, code *string, status int, msg string) {
	var b errorBody
	if code != nil {
		b.Error.Code = *code
	} else {
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

package web

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"haven"
)

// writeJSON writes v as the JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a JSON request body into v strictly: the content type
// must be JSON (so a cross-site HTML form cannot post here), unknown fields
// and trailing data are refused, and the body limit of the middleware
// applies. Errors are EINVALID with a message that never echoes the input.
func decodeJSON(r *http.Request, v any) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		return haven.Errorf(haven.EINVALID, "the request body must be application/json")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return haven.Errorf(haven.EINVALID, "the request body is too large")
		}
		return haven.Errorf(haven.EINVALID, "the request body is not valid JSON for this endpoint")
	}
	if _, err := dec.Token(); err != io.EOF {
		return haven.Errorf(haven.EINVALID, "the request body has trailing data")
	}
	return nil
}

package web

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

// OpenAPIPath is where the JSON API's OpenAPI 3.1 document is served.
const OpenAPIPath = "/api/v1/openapi.yaml"

// openAPIDoc describes every /api/v1 route. TestOpenAPIDescribesEveryRoute
// holds it against the routes the server registers, both ways.
//
//go:embed openapi.yaml
var openAPIDoc []byte

// openAPIETag lets a client revalidate the document instead of fetching it
// again; it changes only when a new build changes the document.
var openAPIETag = func() string {
	sum := sha256.Sum256(openAPIDoc)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}()

// handleOpenAPI serves the document to anyone, signed in or not: it says
// what the API accepts and answers, never anything about a practice or a
// patient. It may be cached but must be revalidated, so a client never
// keeps describing an API the server no longer has.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", openAPIETag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(openAPIDoc))
}

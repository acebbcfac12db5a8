package web

import (
	"net/http/httptest"
	"testing"
)

// TestOnlyTheJSONAPIAnswersAsAnAPI keeps isAPIPath to the prefixes that
// have routes: a signed-out or challenged request under any other path is
// sent to a page, not answered with a JSON error for an API that does not
// exist (there is no /fhir/ API yet).
func TestOnlyTheJSONAPIAnswersAsAnAPI(t *testing.T) {
	for path, want := range map[string]bool{
		"/api/v1/session":  true,
		"/api/v1/visits/x": true,
		"/fhir/R4/Patient": false,
		"/app":             false,
		"/login":           false,
		"/apiary":          false,
	} {
		if got := isAPIPath(httptest.NewRequest("GET", path, nil)); got != want {
			t.Errorf("isAPIPath(%s) = %v, want %v", path, got, want)
		}
	}
}

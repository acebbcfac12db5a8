package sqlstore

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestIncidentsHaveNoDeletePath holds the six-year retention of incidents
// (haven.IncidentRetentionYears): no statement in storage or its
// migrations deletes, truncates or drops incidents or their letters.
func TestIncidentsHaveNoDeletePath(t *testing.T) {
	bad := regexp.MustCompile(`(?i)(delete\s+from|truncate(\s+table)?|drop\s+table(\s+if\s+exists)?)\s+incident`)
	files, _ := filepath.Glob("*.go")
	migs, _ := filepath.Glob("migrations/*.sql")
	files = append(files, migs...)
	found := 0
	for _, f := range files {
		if filepath.Base(f) == "incidents_test.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`CREATE TABLE incident`).Match(b) {
			found++
		}
		if m := bad.Find(b); m != nil {
			t.Errorf("%s: %q would remove what is kept six years", f, m)
		}
	}
	if found == 0 {
		t.Fatal("no migration creates the incidents tables: the search proves nothing")
	}
}

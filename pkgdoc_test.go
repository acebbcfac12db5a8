package haven_test

import (
	"path"
	"strings"
	"testing"
)

// TestEveryPackageSaysWhatItOwns: each package's doc comment is where a
// reader learns what it owns and what it must never do (store never holds
// a key, policy never opens PHI), so none may go without one. go doc's
// form is kept: "Package name ..." for a library, "Command name ..." for a
// program.
func TestEveryPackageSaysWhatItOwns(t *testing.T) {
	ps := goList(t)
	if len(ps) < 20 {
		t.Fatalf("go list reported %d packages", len(ps))
	}
	for _, p := range ps {
		want := "Package " + p.Name + " "
		if p.Name == "main" {
			want = "Command " + path.Base(p.ImportPath) + " "
		}
		if !strings.HasPrefix(p.Doc, want) {
			t.Errorf("%s: the package doc comment must start %q; it reads %q", p.ImportPath, want, p.Doc)
		}
	}
}

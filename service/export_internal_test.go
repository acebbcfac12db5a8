package service

import (
	"strings"
	"testing"
)

// TestZipNamesStayInTheFilesFolder: a file's name, which its uploader
// chose, becomes a path in the export's zip; whatever it holds, the path
// is one plain name inside files/ (no "..", no slash, no control
// character), and two files of one name do not collide.
func TestZipNamesStayInTheFilesFolder(t *testing.T) {
	used := map[string]bool{}
	for _, name := range []string{"../../etc/passwd", "..", "...", "/abs/path.pdf", `C:\win\evil.pdf`, "a\x00b.pdf", "scan.pdf", "scan.pdf",
		"ünïcødé.jpg", strings.Repeat("x", 500) + ".pdf", "", ".hidden"} {
		got := zipName(name, "id123", used)
		if got == "" || strings.ContainsAny(got, "/\\\x00") || strings.HasPrefix(got, ".") || len(got) > 110 {
			t.Errorf("%q became %q", name, got)
		}
	}
	if len(used) != 12 {
		t.Errorf("%d distinct names for 12 files: %v", len(used), used)
	}
}

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

// TestLabValuesAsFHIR: the lab's timestamps and numbers become FHIR's
// dateTime and decimal, or nothing when they are not one.
func TestLabValuesAsFHIR(t *testing.T) {
	for in, want := range map[string]string{"20261205080000": "2026-12-05T08:00:00Z", "20261205080000.123-0500": "2026-12-05T13:00:00Z",
		"202612050800": "2026-12-05T08:00:00Z", "20261205": "2026-12-05", "yesterday": "", "": ""} {
		if got := hl7Time(in); got != want {
			t.Errorf("hl7Time(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"412": "412", "-3.5": "-3.5", "+5": "5", ".5": "0.5", "5.": "5", "007": "7", "1e3": "1000"} {
		if got, ok := fhirNumber(in); !ok || string(got) != want {
			t.Errorf("fhirNumber(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"NaN", "Inf", "1e999", "high", ""} {
		if got, ok := fhirNumber(in); ok {
			t.Errorf("fhirNumber(%q) = %q, want none", in, got)
		}
	}
}

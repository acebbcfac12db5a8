package haven_test

import (
	"strings"
	"testing"

	"haven"
)

// TestPlausibleIDIsTheOneIDCheck holds the id check every layer shares (web
// routes, services, join tokens, signaling, TURN) to one alphabet: what
// NewID makes passes; upper case, control bytes, invalid UTF-8, path
// separators and lengths outside 1..MaxIDLength do not.
func TestPlausibleIDIsTheOneIDCheck(t *testing.T) {
	for name, tc := range map[string]struct {
		id   string
		want bool
	}{
		"NewID":            {haven.NewID(), true},
		"Digits":           {"0123456789", true},
		"DashAndUnderline": {"visit-1_a", true},
		"OneCharacter":     {"a", true},
		"MaxLength":        {strings.Repeat("a", haven.MaxIDLength), true},
		"Empty":            {"", false},
		"TooLong":          {strings.Repeat("a", haven.MaxIDLength+1), false},
		"UpperCase":        {"ABCDEF", false},
		"MixedCase":        {"visitA", false},
		"NUL":              {"abc\x00def", false},
		"OnlyNUL":          {"\x00", false},
		"InvalidUTF8":      {"\xff", false},
		"NonASCIILetter":   {"café", false},
		"Newline":          {"a\nb", false},
		"Space":            {"a b", false},
		"Slash":            {"a/b", false},
		"Backslash":        {`a\b`, false},
		"Dot":              {".", false},
		"DotDot":           {"..", false},
		"Percent":          {"%00", false},
		"Quote":            {`a"b`, false},
		"SQL":              {"1' OR '1'='1", false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := haven.PlausibleID(tc.id); got != tc.want {
				t.Fatalf("PlausibleID(%q) = %v, want %v", tc.id, got, tc.want)
			}
		})
	}
	for range 100 {
		if id := haven.NewID(); !haven.PlausibleID(id) || len(id) != 26 {
			t.Fatalf("NewID made %q, which the check refuses", id)
		}
	}
}

package haven

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// NormalizeEmail is the one form of an email address that is indexed and
// compared: trimmed and lower-cased, so sign-in does not depend on case.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// ValidEmail is a deliberately loose check: one @, something on each side,
// a dot in the domain, at most 254 bytes, and none of what could end up
// somewhere other than one address: no spaces, no control characters (a
// NUL, a line break), no invisible format characters (zero-width spaces,
// bidirectional overrides), no brackets, quotes, commas or semicolons,
// which in a To: header would name more or other recipients.
func ValidEmail(e string) bool {
	if len(e) > 254 || !utf8.ValidString(e) || strings.ContainsAny(e, " <>\",;\\") {
		return false
	}
	for _, r := range e {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) {
			return false
		}
	}
	local, domain, ok := strings.Cut(e, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.Contains(domain, "@") &&
		!strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

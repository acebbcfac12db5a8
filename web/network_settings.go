package web

import "strings"

// networkLines reads the settings page's workforce networks: one a line
// (commas also separate), blanks ignored; the service validates each.
func networkLines(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

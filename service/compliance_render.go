package service

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"time"

	"haven"
)

// The report's three forms: Markdown and a standalone HTML page for an
// auditor, JSON for tools. Each holds only what the report holds.

// ReportFormats are the formats Render writes, the first the default.
var ReportFormats = []string{"html", "md", "json"}

//go:embed compliance_report.html
var reportHTML string

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"date":   reportTime,
	"anchor": ReportAnchor,
}).Parse(reportHTML))

// ReportAnchor is the element id part of a control's citation: letters,
// digits and dashes.
func ReportAnchor(id string) string {
	var b strings.Builder
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '.' || r == '(' || r == '–' || r == '-':
			if s := b.String(); s != "" && !strings.HasSuffix(s, "-") {
				b.WriteByte('-')
			}
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// Render writes the report in format (html, md or json) and returns it
// with its media type and a file name for a download.
func (r *ComplianceReport) Render(format string) (body []byte, contentType, filename string, err error) {
	base := "hipaa-evidence-" + r.Generated.UTC().Format("2006-01-02")
	switch format {
	case "", "html":
		var b bytes.Buffer
		if err := reportTemplate.Execute(&b, r); err != nil {
			return nil, "", "", err
		}
		return b.Bytes(), "text/html; charset=utf-8", base + ".html", nil
	case "md":
		return []byte(r.Markdown()), "text/markdown; charset=utf-8", base + ".md", nil
	case "json":
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return nil, "", "", err
		}
		return append(b, '\n'), "application/json", base + ".json", nil
	}
	return nil, "", "", haven.Errorf(haven.EINVALID, "the report's format is html, md or json")
}

// Markdown is the report as a Markdown document.
func (r *ComplianceReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# HIPAA evidence report: %s\n\n", mdText(r.Practice))
	fmt.Fprintf(&b, "Made %s from this Haven instance's live data. Met: %d. Needs attention: %d. Not met: %d.\n\n",
		r.Generated.UTC().Format(time.RFC3339), r.Met, r.Attention, r.NotMet)
	b.WriteString("| Control | Status | Why |\n|---|---|---|\n")
	for _, c := range r.Controls {
		fmt.Fprintf(&b, "| %s %s | %s | %s |\n", c.ID, mdText(c.Title), c.Status.Label(), mdText(c.Reason))
	}
	for _, c := range r.Controls {
		fmt.Fprintf(&b, "\n## %s %s\n\n**%s:** %s\n\n%s\n\n", c.ID, mdText(c.Title), c.Status.Label(), mdText(c.Reason), mdText(c.Statement))
		for _, f := range c.Evidence {
			fmt.Fprintf(&b, "- %s: %s\n", mdText(f.Label), mdText(f.Value))
		}
		if len(c.Tests) > 0 {
			b.WriteString("\nProved by the tests: `" + strings.Join(c.Tests, "`, `") + "`\n")
		} else {
			b.WriteString("\nNo test proves this control yet.\n")
		}
	}
	return b.String()
}

// mdText keeps a value from being read as Markdown or breaking a table.
func mdText(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|#", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

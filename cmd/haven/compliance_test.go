package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"haven/internal/testkit"
)

// reportControl is the part of a JSON report's control the test reads.
type reportControl struct {
	ID       string
	Status   string
	Reason   string
	Evidence []struct{ Label, Value string }
}

// `haven compliance report` on both databases: without --practice it lists
// the practices; with one (by name, any case) it writes the report in each
// format; the evidence follows the instance (an ended agreement needs
// attention, the renewed one is met; the default witness, a directory on
// the data's disk, is called out); each report is an audited operator
// event and the log still verifies.
func TestComplianceReportCommand(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			flags := []string{"--data-dir", dataDir}
			if name == "postgres" {
				flags = append(flags, "--db", dsn)
			}
			haven := func(args ...string) (int, string, string) {
				return runHaven(t, nil, append(args, flags...)...)
			}
			if code, _, errOut := haven("compliance", "report"); code != 2 || !strings.Contains(errOut, "none: create one") {
				t.Fatalf("with no practice: exit %d\n%s", code, errOut)
			}
			code, out, errOut := haven("practice", "create", "--name", "Lakeside Family Medicine", "--admin-email", "admin@lakeside.example")
			if code != 0 {
				t.Fatalf("practice create: exit %d\n%s%s", code, out, errOut)
			}
			id := regexp.MustCompile(`practice ([a-z0-9]+) created`).FindStringSubmatch(out)[1]
			if code, _, errOut := haven("compliance", "report"); code != 2 || !strings.Contains(errOut, id+"  Lakeside Family Medicine") {
				t.Fatalf("without --practice: exit %d\n%s", code, errOut)
			}
			if code, _, errOut := haven("compliance", "report", "--practice", "Hillside"); code != 2 || !strings.Contains(errOut, `No practice is named "Hillside"`) {
				t.Fatalf("an unknown practice: exit %d\n%s", code, errOut)
			}
			code, out, errOut = haven("vendors", "add", "--practice", id, "--name", "Corner Pharmacy", "--kind", "pharmacy",
				"--endpoint", "https://rx.example/fhir", "--phi", "minimum", "--baa-signed", "2019-01-05", "--baa-expires", "2020-01-31")
			if code != 0 {
				t.Fatalf("vendors add: exit %d\n%s%s", code, out, errOut)
			}
			vendor := regexp.MustCompile(`vendor ([a-z0-9]+) registered`).FindStringSubmatch(out)[1]
			baa := func() reportControl {
				t.Helper()
				code, out, errOut := haven("compliance", "report", "--practice", "lakeside family medicine", "--format", "json")
				if code != 0 {
					t.Fatalf("report: exit %d\n%s", code, errOut)
				}
				var rep struct {
					PracticeID string `json:"practice_id"`
					Controls   []reportControl
				}
				if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.PracticeID != id {
					t.Fatalf("the JSON report: %v\n%s", err, out)
				}
				for _, c := range rep.Controls {
					if c.ID == "164.308(b)" {
						return c
					}
				}
				t.Fatalf("no BAA control:\n%s", out)
				return reportControl{}
			}
			if c := baa(); c.Status != "attention" || !strings.Contains(c.Reason, "ended") {
				t.Fatalf("an ended agreement: %+v", c)
			}
			if code, out, errOut := haven("vendors", "update", "--id", vendor, "--baa-expires", "2099-12-31"); code != 0 {
				t.Fatalf("vendors update: exit %d\n%s%s", code, out, errOut)
			}
			if c := baa(); c.Status != "met" {
				t.Fatalf("a renewed agreement: %+v", c)
			}
			code, out, _ = haven("compliance", "report", "--practice", id)
			if code != 0 || !strings.HasPrefix(out, "# HIPAA evidence report: Lakeside Family Medicine") || !strings.Contains(out, "TestAuditVerifyCatchesTampering") ||
				!strings.Contains(out, "its only witnesses are on the same disk as the data") {
				t.Fatalf("the Markdown report: exit %d\n%s", code, out)
			}
			file := filepath.Join(t.TempDir(), "report.html")
			code, out, errOut = haven("compliance", "report", "--practice", id, "--format", "html", "--out", file)
			if code != 0 || !strings.Contains(out, "written to") {
				t.Fatalf("--out: exit %d\n%s%s", code, out, errOut)
			}
			if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("the report file: %v %v", fi, err)
			}
			if b, _ := os.ReadFile(file); !strings.Contains(string(b), `id="control-164-312-b"`) {
				t.Fatalf("the HTML report:\n%s", b)
			}
			if code, _, errOut := haven("compliance", "report", "--practice", id, "--format", "pdf"); code != 1 || !strings.Contains(errOut, "--format") {
				t.Fatalf("an unknown format: exit %d\n%s", code, errOut)
			}
			code, out, errOut = haven("audit", "export")
			if code != 0 || strings.Count(out, `"compliance.report"`) != 4 {
				t.Fatalf("audit export: %d report events, want 4 (exit %d %s)", strings.Count(out, `"compliance.report"`), code, errOut)
			}
			if code, out, errOut := haven("audit", "verify"); code != 0 {
				t.Fatalf("audit verify: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}

package web_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
)

// TestPatientDownloadsHerRecordThroughTheAPI: a patient signed in just
// now downloads her record: a zip (health-record.zip, never cached) with
// the Bundle, the summary and her photo, holding her details and nothing
// of the other patient of her practice or of the other practice. Her
// accounting of disclosures answers too; both are hers alone (the sweep
// in TestSweepOtherPatientsAndPracticesIDs tries them with every other id).
func TestPatientDownloadsHerRecordThroughTheAPI(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own, other := ts[0], ts[1]
			c := st.client(firefox)
			auth := c.signInAny(own.pEmail[0])
			r := c.apiAs(auth, "GET", "/api/v1/patients/"+own.patient[0]+"/export", "")
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "application/zip" ||
				!strings.Contains(r.Header.Get("Content-Disposition"), "health-record.zip") || r.Header.Get("Cache-Control") != "no-store" ||
				r.Header.Get("X-Record-Size") == "" {
				t.Fatalf("export: %d %v", r.StatusCode, r.Header)
			}
			zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
			if err != nil {
				t.Fatalf("not a zip: %v", err)
			}
			var all []byte
			names := map[string]bool{}
			for _, f := range zr.File {
				rc, err := f.Open()
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(rc)
				rc.Close()
				names[f.Name] = true
				all = append(all, b...)
			}
			if !names["record.json"] || !names["summary.html"] || len(names) != 3 {
				t.Fatalf("the zip holds %v", names)
			}
			for _, want := range []string{"Name" + own.marker + "0", "MRN-" + own.marker + "-0", `"resourceType": "Bundle"`} {
				if !bytes.Contains(all, []byte(want)) {
					t.Errorf("the zip lacks %q", want)
				}
			}
			for _, m := range []string{"Name" + own.marker + "1", "MRN-" + own.marker + "-1", other.marker} {
				if bytes.Contains(all, []byte(m)) {
					t.Errorf("the zip holds another patient's %q", m)
				}
			}
			var n int
			if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE action = 'export.patient' AND patient_id = $1 AND decision = 'allow'`,
				own.patient[0]).Scan(&n); err != nil || n != 1 {
				t.Errorf("%d export events (%v), want 1", n, err)
			}

			r = c.apiAs(auth, "GET", "/api/v1/patients/"+own.patient[0]+"/disclosures", "")
			out := readAll(t, r)
			if r.StatusCode != http.StatusOK || !strings.Contains(out, `"disclosures"`) {
				t.Fatalf("disclosures: %d %s", r.StatusCode, out)
			}
		})
	}
}

// TestWrittenRequestThroughTheAPI: the front desk records a written
// request, the compliance officer lists it with its days left and
// without the recipient, and cannot produce the copy; the front desk
// produces it once (a zip), and a second time is a conflict.
func TestWrittenRequestThroughTheAPI(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			desk := st.client(firefox)
			dAuth := desk.signInAny(own.emails[haven.RoleStaff])
			r := desk.apiAs(dAuth, "POST", "/api/v1/access-requests", `{"patient_id":"`+own.patient[0]+`","received":"2026-11-20","recipient":"Dr. Hill, Northside"}`)
			var made haven.AccessRequestView
			if err := json.NewDecoder(r.Body).Decode(&made); err != nil || r.StatusCode != http.StatusCreated || made.DaysLeft != 24 {
				t.Fatalf("recording: %d %+v %v", r.StatusCode, made, err)
			}
			co := st.client(firefox)
			cAuth := co.signInAny(own.emails[haven.RoleComplianceOfficer])
			r = co.apiAs(cAuth, "GET", "/api/v1/access-requests", "")
			out := readAll(t, r)
			if r.StatusCode != http.StatusOK || !strings.Contains(out, made.ID) || strings.Contains(out, "Northside") || strings.Contains(out, "Recipient"+own.marker) {
				t.Fatalf("the compliance officer's list: %d %s", r.StatusCode, out)
			}
			if r := co.apiAs(cAuth, "GET", "/api/v1/access-requests/"+made.ID+"/export", ""); r.StatusCode != http.StatusForbidden {
				t.Errorf("the compliance officer produced a copy: %d", r.StatusCode)
			}
			r = desk.apiAs(dAuth, "GET", "/api/v1/access-requests/"+made.ID+"/export", "")
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "application/zip" {
				t.Fatalf("the copy: %d %s", r.StatusCode, body)
			}
			if _, err := zip.NewReader(bytes.NewReader(body), int64(len(body))); err != nil {
				t.Fatalf("the copy is not a zip: %v", err)
			}
			if r := desk.apiAs(dAuth, "GET", "/api/v1/access-requests/"+made.ID+"/export", ""); r.StatusCode != http.StatusConflict {
				t.Errorf("a second copy: %d, want 409", r.StatusCode)
			}
		})
	}
}

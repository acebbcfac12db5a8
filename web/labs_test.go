package web_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/demo"
	"haven/internal/testkit"
	"haven/internal/testkit/stack"
	"haven/service"
	"haven/web"
)

// TestLabPostsResultsWithItsToken: a lab posts an ORU^R01 to
// /api/v1/hl7 with the integration token the practice admin made for it
// and is answered AA in ER7; the same message again gets the same ACK; a
// malformed one gets AE; a made-up token gets 401 and an AR, and the
// message is not read.
func TestLabPostsResultsWithItsToken(t *testing.T) {
	stk := stack.New(t, testkit.SQLite(t), stack.WallClock(), stack.NoBlobs())
	svc := stk.Service
	p := stk.Seed("tokenlab", "TKL1")
	ctx := context.Background()
	if err := svc.SeedLabCatalogue(ctx, p.ID, bytes.NewReader(demo.LabCatalogue)); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	lab := &haven.Vendor{Name: "Posting Lab", Kind: haven.VendorLab, Endpoint: "mllps://lab.invalid:2575", PHI: haven.PHIMinimum,
		BAASigned: today.AddDate(0, -1, 0), BAAExpires: today.AddDate(1, 0, 0)}
	if err := svc.AddVendor(stk.As(p.Admin), lab); err != nil {
		t.Fatal(err)
	}
	token, err := svc.SetLabInterface(stk.As(p.Admin), lab.ID, "", true)
	if err != nil {
		t.Fatal(err)
	}
	order, err := svc.OrderLabs(stk.As(p.Clinician), service.NewLabOrder{PatientID: p.ChartA.PatientID, LabID: lab.ID, Tests: []string{"2345-7"}})
	if err != nil {
		t.Fatal(err)
	}
	base, client, _ := startServer(t, newWebServer(t, web.Config{Service: svc}))
	oru := "MSH|^~\\&|LAB|L|HAVEN|P|2026||ORU^R01|POST-1|P|2.5.1\rPID|1||" + p.ChartA.MRN + "^^^P^MR||Doe^Jane||19800203|F\rOBR|1|" + order.Number +
		"||2345-7^Glucose^LN\rOBX|1|NM|2345-7^Glucose^LN||99|mg/dL|70-99|N|||F\r"
	post := func(token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/api/v1/hl7", strings.NewReader(body))
		req.Header.Set("Content-Type", "x-application/hl7-v2+er7")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode < 300 && !strings.HasPrefix(ct, "x-application/hl7-v2+er7") {
			t.Fatalf("answered as %s", ct)
		}
		return resp.StatusCode, string(b)
	}
	code, first := post(token, oru)
	if code != http.StatusOK || !strings.Contains(first, "MSA|AA|POST-1") {
		t.Fatalf("%d %q", code, first)
	}
	if code, again := post(token, oru); code != http.StatusOK || again != first {
		t.Fatalf("again: %d %q, want %q", code, again, first)
	}
	if code, bad := post(token, strings.Replace(strings.Replace(oru, "||99|", "||high|", 1), "POST-1", "POST-3", 1)); code != http.StatusOK || !strings.Contains(bad, "MSA|AE|") {
		t.Fatalf("malformed: %d %q", code, bad)
	}
	for _, wrong := range []string{"", "hl7_madeup", token + "x"} {
		if code, body := post(wrong, strings.Replace(oru, "POST-1", "POST-2", 1)); code != http.StatusUnauthorized || !strings.Contains(body, "MSA|AR|") {
			t.Fatalf("token %q: %d %q", wrong, code, body)
		}
	}
	queue, err := svc.ResultsToReview(stk.As(p.Clinician))
	if err != nil || len(queue) != 1 {
		t.Fatalf("%d results stored (%v)", len(queue), err)
	}
}

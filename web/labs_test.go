package web_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
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

// TestCriticalResultAlertOnTheOrderingCliniciansPages: a critical result
// puts an alert on every page of the clinician who ordered it, saying
// only that a critical result is waiting, with a link to review it; the
// practice's other clinician and another practice's clinician who ordered
// for their own patients see none. The clinician cancels another order
// from the patient's record with its button (the API's cancel answers the
// same order cancelled), and the alert goes once the result is reviewed.
func TestCriticalResultAlertOnTheOrderingCliniciansPages(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			ctx := context.Background()
			doc2 := haven.Actor{UserID: st.users["doc2@riverside.example"], PracticeID: own.id, Role: haven.RoleClinician, MFA: true,
				SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1", AuthTime: st.clock.Now()}
			as := haven.NewContextWithActor(ctx, doc2)
			order, err := st.svc.OrderLabs(as, service.NewLabOrder{PatientID: own.patient[0], LabID: own.lab, Tests: []string{"2345-7"}})
			if err != nil {
				t.Fatal(err)
			}
			st.clock.Advance(time.Hour) // after the seeded result, for the trend
			oru := "MSH|^~\\&|L|F|H|R|2026||ORU^R01|CRIT-1|P|2.5.1\rPID|1||MRN-" + own.marker + "-0^^^R^MR||N||19800101\rOBR|1|" + order.Number +
				"||2345-7^Glucose^LN\rOBX|1|NM|2345-7^Glucose^LN||640|mg/dL|70-99|HH\r"
			if ack := string(st.svc.ReceiveHL7(ctx, own.lab, []byte(oru))); !strings.Contains(ack, "MSA|AA") {
				t.Fatalf("the critical result was answered %q", ack)
			}
			result, err := st.svc.Results(as, own.patient[0])
			if err != nil {
				t.Fatal(err)
			}
			var critical string
			for _, r := range result {
				if r.Critical {
					critical = r.ID
				}
			}

			orderer := st.client(firefox)
			orderer.signIn("doc2@riverside.example", "")
			for _, path := range []string{"/app", "/app/patients", "/account"} {
				page := readAll(t, orderer.get(path))
				if !strings.Contains(page, `id="critical-result-alert"`) || !strings.Contains(page, `href="/app/results/`+critical+`"`) {
					t.Fatalf("%s: the ordering clinician sees no alert:\n%s", path, page)
				}
				alert := page[strings.Index(page, `id="critical-result-alert"`):]
				alert = alert[:strings.Index(alert, "</p>")]
				for _, phi := range []string{own.marker, "Glucose", "640", "Name"} {
					if strings.Contains(alert, phi) {
						t.Fatalf("the alert says %q: %s", phi, alert)
					}
				}
			}
			signedIn := map[string]*client{}
			for _, who := range []string{own.emails[haven.RoleClinician], "doc2@lakeshore.example", own.emails[haven.RoleStaff]} {
				c := st.client(firefox)
				c.signIn(who, "")
				signedIn[who] = c
				if page := readAll(t, c.get("/app")); strings.Contains(page, "critical-result-alert") {
					t.Fatalf("%s sees another clinician's alert", who)
				}
			}

			// A second order, cancelled from the patient's record.
			second, err := st.svc.OrderLabs(as, service.NewLabOrder{PatientID: own.patient[0], LabID: own.lab, Tests: []string{"2345-7"}})
			if err != nil {
				t.Fatal(err)
			}
			chart := readAll(t, orderer.get("/app/patients/"+own.patient[0]))
			if !strings.Contains(chart, `id="cancel-lab-`+second.ID+`"`) || strings.Contains(chart, `id="cancel-lab-`+order.ID+`"`) {
				t.Fatal("the record offers no cancel button for the open order, or offers one for the resulted order")
			}
			expectRedirect(t, orderer.post("/app/lab-orders/"+second.ID+"/cancel", nil), "/app/patients/"+own.patient[0]+"?done=lab-cancel")
			chart = readAll(t, orderer.get("/app/patients/"+own.patient[0]+"?done=lab-cancel"))
			if !strings.Contains(chart, `id="lab-order-`+second.ID+`"`) || !strings.Contains(chart, "The lab order is cancelled") ||
				strings.Contains(chart, `id="cancel-lab-`+second.ID+`"`) {
				t.Fatal("the record does not show the order cancelled")
			}
			if v, err := st.svc.LabOrder(as, second.ID); err != nil || v.Status != haven.LabCancelled {
				t.Fatalf("after the button: %+v %v", v, err)
			}

			// A third, through the API.
			third, err := st.svc.OrderLabs(as, service.NewLabOrder{PatientID: own.patient[0], LabID: own.lab, Tests: []string{"2345-7"}})
			if err != nil {
				t.Fatal(err)
			}
			bearer := map[string]string{"Authorization": "Bearer " + orderer.cookie("__Host-haven_session").Value}
			r := orderer.apiAs(bearer, "POST", "/api/v1/lab-orders/"+third.ID+"/cancel", "")
			if body := readAll(t, r); r.StatusCode != http.StatusOK || !strings.Contains(body, `"status":"cancelled"`) {
				t.Fatalf("the API's cancel: %d %s", r.StatusCode, body)
			}
			r = orderer.apiAs(bearer, "POST", "/api/v1/lab-orders/"+third.ID+"/cancel", "")
			expectStatus(t, r, http.StatusConflict)

			// Another practice's clinician, or the front desk, cannot cancel
			// one through the page.
			fourth, err := st.svc.OrderLabs(as, service.NewLabOrder{PatientID: own.patient[0], LabID: own.lab, Tests: []string{"2345-7"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, who := range []string{"doc2@lakeshore.example", own.emails[haven.RoleStaff]} {
				r := signedIn[who].post("/app/lab-orders/"+fourth.ID+"/cancel", nil)
				if r.StatusCode != http.StatusNotFound && r.StatusCode != http.StatusForbidden {
					t.Fatalf("%s cancelling through the page: %d", who, r.StatusCode)
				}
			}
			if v, err := st.svc.LabOrder(as, fourth.ID); err != nil || v.Status != haven.LabQueued {
				t.Fatalf("after refused cancellations: %+v %v", v, err)
			}

			if _, err := st.svc.ReviewResult(as, critical, "", false); err != nil {
				t.Fatal(err)
			}
			if page := readAll(t, orderer.get("/app")); strings.Contains(page, "critical-result-alert") {
				t.Fatal("the alert stays after the review")
			}

			// Both released, the patient reads the newer with its trend, by
			// the test's name and in its units.
			for _, id := range []string{own.results[0], critical} {
				if _, err := st.svc.ReviewResult(as, id, "", true); err != nil {
					t.Fatal(err)
				}
			}
			pat := st.client(firefox)
			expectRedirect(t, pat.post("/login", url.Values{"email": {own.pEmail[0]}, "password": {stackPassword}}), "/app")
			page := readAll(t, pat.get("/app/results/"+critical))
			i := strings.Index(page, `id="trends"`)
			if i < 0 {
				t.Fatalf("the patient's result shows no trend:\n%s", page)
			}
			trend := page[i:]
			trend = trend[:strings.Index(trend, "</ul>")]
			if !strings.Contains(trend, "Glucose: now 640 mg/dL; earlier 99 mg/dL on ") || strings.Contains(trend, "2345-7") {
				t.Fatalf("the trend reads %q", trend)
			}
		})
	}
}

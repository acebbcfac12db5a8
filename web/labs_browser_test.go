package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"haven"
)

// TestBrowserLabOrderResultReviewRelease: Dr. Rosa Rivera opens Maria
// Lopez's record and orders a glucose test from the practice's lab, by
// name, and a second test she cancels with its button; a result whose record number the lab mistyped waits for the
// front desk, who match it by hand to her order on a phone; the lab's
// result arrives (critical: far above the range); an alert on her next
// page, naming no one, links to it (Dr. Okafor sees none); she finds it
// first in her results to review, comments and releases it;
// Maria, on a phone, sees it on her lab results page with the range, the
// flag in plain words and the comment. Every page is walked by links,
// with axe-core.
func TestBrowserLabOrderResultReviewRelease(t *testing.T) {
	st := newDemoStack(t)
	staff := st.demoActor("Riverside Family Clinic", haven.RoleStaff)

	doc := newWalker(t, st.base)
	doc.start()
	doc.signIn(doctor, "")
	doc.follow("#nav-patients")
	if err := chromedp.Do(doc.ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const a = Array.from(document.querySelectorAll('main a')).find((e) => e.textContent.trim() === 'Maria Lopez');
		if (a) a.id = 'open-maria';
	})()`)); err != nil {
		t.Fatal(err)
	}
	doc.follow("#open-maria")
	doc.follow("#order-labs")
	doc.fill(map[string]string{"test-query": "gluc"})
	doc.press("#find-test")
	if got := doc.text("#lab-form fieldset"); !strings.Contains(got, "Glucose") || strings.Contains(got, "Hemoglobin") {
		t.Fatalf("searching gluc lists %q", got)
	}
	click(t, doc.ctx, "#test-2345-7")
	if got := doc.text("#lab-choice"); !strings.Contains(got, "Riverside Clinical Laboratory") {
		t.Fatalf("the labs offered: %q", got)
	}
	doc.press("#lab-order")
	if !strings.Contains(doc.text(".flash"), "on its way to the lab") {
		t.Fatalf("ordering says %q", doc.text("main"))
	}
	if got := doc.text("#lab-orders"); !strings.Contains(got, "Glucose") || !strings.Contains(got, "Riverside Clinical Laboratory") || !strings.Contains(got, "Waiting to be sent to the lab") {
		t.Fatalf("her record lists the orders %q", got)
	}
	patientID := strings.TrimPrefix(strings.SplitN(doc.at(), "?", 2)[0], "/app/patients/")

	// A second order, for the wrong test: she cancels it from the record
	// with its button before it leaves for the lab.
	doc.follow("#order-labs")
	doc.fill(map[string]string{"test-query": "a1c"})
	doc.press("#find-test")
	click(t, doc.ctx, "#test-4548-4")
	doc.press("#lab-order")
	if err := chromedp.Do(doc.ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const li = Array.from(document.querySelectorAll('#lab-orders li')).find((e) => e.textContent.includes('Hemoglobin A1c'));
		const b = li && li.querySelector('button');
		if (b) b.id = 'cancel-a1c';
	})()`)); err != nil {
		t.Fatal(err)
	}
	doc.press("#cancel-a1c")
	if !strings.Contains(doc.text(".flash"), "The lab order is cancelled") {
		t.Fatalf("cancelling says %q", doc.text("main"))
	}
	if got := doc.text("#lab-orders"); !strings.Contains(got, "Hemoglobin A1c") || !strings.Contains(got, "Cancelled") || !strings.Contains(got, "Waiting to be sent to the lab") {
		t.Fatalf("after cancelling, her record lists %q", got)
	}
	if doc.has("#cancel-a1c") {
		t.Fatal("the cancelled order still offers its cancel button")
	}

	// The lab answers: its result arrives as the MLLP listener hands it on.
	chart, err := st.svc.Chart(staff, patientID)
	if err != nil {
		t.Fatal(err)
	}
	orders, err := st.svc.OpenLabOrders(staff)
	if err != nil || len(orders) != 1 || orders[0].PatientID != patientID {
		t.Fatalf("open orders %v, %v", orders, err)
	}
	dob := strings.ReplaceAll(chart.Demographics.DateOfBirth, "-", "")

	// First a result whose record number the lab mistyped: it waits for
	// the front desk, who match it (on a phone) to the open order, chosen
	// by the patient's name and the test.
	stray := "MSH|^~\\&|LAB|RIVERSIDE LAB|HAVEN|CLINIC|20261206042000||ORU^R01^ORU_R01|BROWSER-0|P|2.5.1\r" +
		"PID|1||" + chart.MRN + "X^^^CLINIC^MR||Lopez^Maria||" + dob + "|F\r" +
		"OBR|1|" + orders[0].Number + "|F0|2345-7^Glucose^LN\r" +
		"OBX|1|NM|2345-7^Glucose^LN||92|mg/dL|70-99|N|||F\r"
	if ack := string(st.svc.ReceiveHL7(context.Background(), orders[0].LabID, []byte(stray))); !strings.Contains(ack, "MSA|AA|BROWSER-0") {
		t.Fatalf("the lab was answered %q", ack)
	}
	fd := newWalker(t, st.base)
	fd.use(phone)
	fd.start()
	fd.signIn(desk, "")
	fd.follow("#nav-lab-unmatched")
	if got := fd.text("#unmatched"); !strings.Contains(got, "Maria Lopez") || !strings.Contains(got, "Glucose") {
		t.Fatalf("the queue shows %q", got)
	}
	if got := fd.text("#unmatched select"); !strings.Contains(got, "Maria Lopez: Glucose") {
		t.Fatalf("the orders offered: %q", got)
	}
	fd.press("#unmatched button")
	if !strings.Contains(fd.text(".flash"), "matched") || !fd.has("#no-unmatched") {
		t.Fatalf("matching says %q", fd.text("main"))
	}

	// Then the lab's own result, critical, matched by itself.
	oru := "MSH|^~\\&|LAB|RIVERSIDE LAB|HAVEN|CLINIC|20261206043000||ORU^R01^ORU_R01|BROWSER-1|P|2.5.1\r" +
		"PID|1||" + chart.MRN + "^^^CLINIC^MR||Lopez^Maria||" + dob + "|F\r" +
		"OBR|1|" + orders[0].Number + "|F1|2345-7^Glucose^LN|||20261205080000|||||||||||||||20261206042500|||F\r" +
		"OBX|1|NM|2345-7^Glucose^LN||412|mg/dL|70-99|HH|||F\r"
	ack := string(st.svc.ReceiveHL7(context.Background(), orders[0].LabID, []byte(oru)))
	if !strings.Contains(ack, "MSA|AA|BROWSER-1") {
		t.Fatalf("the lab was answered %q", ack)
	}

	// The critical result is announced on whatever page she opens next,
	// without saying whose it is; its link opens it.
	doc.follow("#nav-home")
	if got := doc.text("#critical-result-alert"); !strings.Contains(got, "A critical lab result is waiting for your review") || strings.Contains(got, "Maria") || strings.Contains(got, "Glucose") {
		t.Fatalf("the alert reads %q", got)
	}
	doc.follow("#nav-results")
	if got := doc.text("#results"); !strings.Contains(got, "Glucose: Maria Lopez") || !strings.Contains(got, "Critical") {
		t.Fatalf("her results to review: %q", got)
	}
	doc.follow("#critical-result-link")
	if got := doc.text("#observations"); !strings.Contains(got, "412 mg/dL") || !strings.Contains(got, "70-99") {
		t.Fatalf("the result shows %q", got)
	}
	doc.fill(map[string]string{"review-comment": "Please come in this week to repeat it fasting."})
	doc.press("#review-submit")
	if !strings.Contains(doc.text(".flash"), "released to the patient") {
		t.Fatalf("releasing says %q", doc.text("main"))
	}
	if doc.has("#critical-result-alert") {
		t.Fatal("the alert stays after she reviewed the result")
	}
	// The other clinician of the practice never saw it.
	okafor := newWalker(t, st.base)
	okafor.use(phone)
	okafor.start()
	okafor.signIn("okafor@riverside.example", "")
	if okafor.has("#critical-result-alert") {
		t.Fatal("another clinician sees the alert")
	}

	pat := newWalker(t, st.base)
	pat.use(phone)
	pat.start()
	pat.signIn(patientEmail, "")
	pat.follow("#nav-results")
	if got := pat.text("#results"); !strings.Contains(got, "Glucose") {
		t.Fatalf("her lab results: %q", got)
	}
	pat.follow("#results a")
	if got := pat.text("#observations"); !strings.Contains(got, "412 mg/dL") || !strings.Contains(got, "70-99") ||
		!strings.Contains(got, "Far above the normal range (critical)") {
		t.Fatalf("she sees %q", got)
	}
	if got := pat.text("#result-comment"); !strings.Contains(got, "repeat it fasting") {
		t.Fatalf("the comment reads %q", got)
	}
}

package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"haven"
	"haven/service"
)

// TestBrowserPrescribeWithStepUpAndAskForRenewal: Dr. Rosa Rivera opens
// Maria Lopez's record from her patient list, adds an allergy to
// amoxicillin, finds amoxicillin in the formulary by name and writes a
// prescription for the practice's pharmacy, chosen by name. The draft
// warns of the allergy; she acknowledges it and signs, which asks her to
// confirm it is her (her practice keeps step-ups to ten seconds), and
// signs again after. Maria, on a phone, sees the prescription on her
// prescriptions page and asks for a renewal; Dr. Rivera's page then
// offers to approve it. Every page is walked by links, with axe-core.
func TestBrowserPrescribeWithStepUpAndAskForRenewal(t *testing.T) {
	st := newDemoStack(t)
	admin := st.demoActor("Riverside Family Clinic", haven.RolePracticeAdmin)
	settings, err := st.svc.Settings(admin)
	if err != nil {
		t.Fatal(err)
	}
	settings.StepUpMaxAge = service.Duration(10 * time.Second)
	if err := st.svc.UpdateSettings(admin, settings); err != nil {
		t.Fatal(err)
	}

	doc := newWalker(t, st.base)
	doc.start()
	secret := doc.signIn(doctor, "")
	doc.follow("#nav-patients")
	if err := chromedp.Do(doc.ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const a = Array.from(document.querySelectorAll('main a')).find((e) => e.textContent.trim() === 'Maria Lopez');
		if (a) a.id = 'open-maria';
	})()`)); err != nil {
		t.Fatal(err)
	}
	doc.follow("#open-maria")
	doc.fill(map[string]string{"allergy-substance": "Amoxicillin", "allergy-reaction": "rash"})
	doc.press("#add-allergy-submit")
	if got := doc.text("#allergy-list"); !strings.Contains(got, "Amoxicillin (rash)") {
		t.Fatalf("the allergy list shows %q", got)
	}
	doc.follow("#prescribe")
	doc.fill(map[string]string{"drug-query": "amox"})
	doc.press("#find-drug")
	if got := doc.text("#rx-form fieldset"); !strings.Contains(got, "Amoxicillin") || strings.Contains(got, "Lisinopril") {
		t.Fatalf("searching amox lists %q", got)
	}
	click(t, doc.ctx, "#drug-723")
	doc.fill(map[string]string{"rx-strength": "500 mg", "rx-form-field": "capsule", "rx-directions": "One capsule three times a day for ten days",
		"rx-quantity": "30", "rx-days": "10", "rx-refills": "0"})
	if got := doc.text("#rx-pharmacy"); !strings.Contains(got, "Main Street Pharmacy") {
		t.Fatalf("the pharmacies offered: %q", got)
	}
	doc.press("#rx-draft")
	if got := doc.text("#rx-warnings"); !strings.Contains(got, "Allergy on the patient's list: Amoxicillin (rash)") {
		t.Fatalf("the draft warns %q", got)
	}
	time.Sleep(11 * time.Second) // her sign-in is now too old to sign
	click(t, doc.ctx, "#rx-acknowledge")
	doc.press("#rx-sign")
	if !strings.HasPrefix(doc.at(), "/account/step-up") {
		t.Fatalf("signing did not ask for a step-up: at %s", doc.at())
	}
	code, err := appCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	doc.fill(map[string]string{"code": code})
	doc.press("#confirm")
	if !strings.HasPrefix(doc.at(), "/app/prescriptions/") || !strings.Contains(doc.text(".flash"), "Sign it now") {
		t.Fatalf("after the step-up: at %s", doc.at())
	}
	click(t, doc.ctx, "#rx-acknowledge")
	doc.press("#rx-sign")
	if got := doc.text("#rx-status"); !strings.Contains(got, "Signed, waiting to be sent") {
		t.Fatalf("the signed prescription says %q", got)
	}
	if got := doc.text("#rx-signed"); !strings.Contains(got, "signature verified") {
		t.Fatalf("the signature line says %q", got)
	}
	rxPage := doc.at()

	pat := newWalker(t, st.base)
	pat.use(phone)
	pat.start()
	pat.signIn(patientEmail, "")
	pat.follow("#nav-prescriptions")
	if got := pat.text("#rx-active"); !strings.Contains(got, "Amoxicillin 500 mg capsule") {
		t.Fatalf("her active prescriptions: %q", got)
	}
	pat.follow("#rx-active a")
	pat.fill(map[string]string{"renewal-note": "I am travelling next week."})
	pat.press("#ask-renewal")
	if got := pat.text(".flash"); !strings.Contains(got, "sent to your prescriber") {
		t.Fatalf("asking for a renewal says %q", got)
	}
	pat.follow("#nav-messages")
	if got := pat.text("main"); !strings.Contains(got, "Renewal request: Amoxicillin") {
		t.Fatalf("her messages show %q", got)
	}

	doc.follow("#nav-inbox")
	if got := doc.text("main"); !strings.Contains(got, "Renewal request: Amoxicillin") {
		t.Fatalf("the prescriber's inbox shows %q", got)
	}
	if err := chromedp.Do(doc.ctx, chromedp.Navigate(st.base+rxPage)); err != nil {
		t.Fatal(err)
	}
	doc.check()
	doc.press("#rx-renew")
	if got := doc.text("#rx-status"); !strings.Contains(got, "Draft") {
		t.Fatalf("the approved renewal is %q", got)
	}
}

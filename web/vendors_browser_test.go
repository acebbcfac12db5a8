package web_test

import (
	"strings"
	"testing"
	"time"

	"haven"
	"haven/service"
)

// TestBrowserAdminRegistersAPharmacy: Alex, Riverside's administrator, on
// a phone (390×844), reaches the vendors page from her home page, fills
// in a pharmacy and its agreement, and is asked to confirm it is her (her
// practice keeps step-ups to ten seconds); confirmed, she sends the form
// again and the pharmacy is listed with its agreement; she retires it,
// again confirming, and it says it receives nothing. Every page is
// walked by links, at its width, with axe-core.
func TestBrowserAdminRegistersAPharmacy(t *testing.T) {
	st := newDemoStack(t)
	adminCtx := st.demoActor("Riverside Family Clinic", haven.RolePracticeAdmin)
	settings, err := st.svc.Settings(adminCtx)
	if err != nil {
		t.Fatal(err)
	}
	settings.StepUpMaxAge = service.Duration(10 * time.Second)
	if err := st.svc.UpdateSettings(adminCtx, settings); err != nil {
		t.Fatal(err)
	}

	w := newWalker(t, st.base)
	w.use(phone)
	w.start()
	secret := w.signIn("admin@riverside.example", "")
	w.follow("#home-vendors")
	if !strings.Contains(w.text("#vendors"), "Main Street Pharmacy") {
		t.Fatalf("the demo pharmacy is not listed: %q", w.text("main"))
	}
	time.Sleep(11 * time.Second) // her sign-in is now too old to change the registry
	form := map[string]string{"vendor-name": "Harbor Street Pharmacy", "vendor-endpoint": "https://rx.harbor.example/fhir",
		"vendor-signed": "2026-01-15", "vendor-expires": "2027-01-14", "vendor-document": "Contracts binder, tab 4", "vendor-contact": "baa@harbor.example", "vendor-phi": "minimum"}
	w.fill(form)
	w.press("#vendor-submit")
	// Each code is of a later period than the last one used: a code is
	// good once.
	var lastPeriod int64
	stepUp := func() {
		t.Helper()
		if !strings.HasPrefix(w.at(), "/account/step-up") {
			t.Fatalf("a change to the registry did not ask for a step-up: at %s", w.at())
		}
		at := time.Now().Add(30 * time.Second)
		for at.Unix()/30 <= lastPeriod {
			time.Sleep(time.Second)
			at = time.Now().Add(30 * time.Second)
		}
		lastPeriod = at.Unix() / 30
		code, err := appCode(secret, at)
		if err != nil {
			t.Fatal(err)
		}
		w.fill(map[string]string{"code": code})
		w.press("#confirm")
		if !strings.HasPrefix(w.at(), "/app/admin/vendors") {
			t.Fatalf("after the step-up: at %s", w.at())
		}
	}
	stepUp()
	if !strings.Contains(w.text(".flash"), "Send the form again") {
		t.Errorf("back from the step-up, the page says %q", w.text(".flash"))
	}
	w.fill(form)
	w.press("#vendor-submit")
	if !strings.Contains(w.text(".flash"), "registered") {
		t.Fatalf("registering says %q", w.text("main"))
	}
	row := w.text("#vendors tbody tr")
	for _, want := range []string{"Harbor Street Pharmacy", "Pharmacy", "Minimum necessary", "Signed 2026-01-15, until 2027-01-14", "Contracts binder, tab 4"} {
		if !strings.Contains(row, want) {
			t.Errorf("the pharmacy's row lacks %q: %q", want, row)
		}
	}
	time.Sleep(11 * time.Second)
	w.press("#vendors tbody tr button.danger")
	stepUp()
	w.press("#vendors tbody tr button.danger")
	if got := w.text("#vendors tbody tr:last-child .status"); !strings.Contains(got, "Retired: receives nothing") {
		t.Fatalf("the retired pharmacy's row says %q", got)
	}
	// Each change is on record as hers.
	vs, err := st.svc.Vendors(adminCtx)
	if err != nil || len(vs) != 3 || vs[2].Retired.IsZero() { // the demo pharmacy and lab, the retired one last
		t.Fatalf("the registry holds %v (%v)", vs, err)
	}
}

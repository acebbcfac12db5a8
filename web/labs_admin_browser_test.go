package web_test

import (
	"strings"
	"testing"
	"time"

	"haven"
	"haven/service"
)

// TestBrowserAdminRegistersALabsResultsInterface: Alex, Riverside's
// administrator, on a phone (390×844), opens the vendors page from her
// home page and the lab's results interface from its row; nothing is
// registered yet. She pastes the lab's client certificate and asks for a
// token, is asked to confirm it is her (her practice keeps step-ups to ten
// seconds), sends the form again and is shown the token once, with how
// the lab uses it; the page then names the certificate's subject and end
// date and the token's date, and never the token again. Every page is
// walked by links, at its width, with axe-core.
func TestBrowserAdminRegistersALabsResultsInterface(t *testing.T) {
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
	w.follow("#vendors a.lab-interface")
	if got := w.text("h1"); !strings.Contains(got, "Riverside Clinical Laboratory") {
		t.Fatalf("the results interface page is headed %q", got)
	}
	if got := w.text("#interface-state"); !strings.Contains(got, "None registered") || !strings.Contains(got, "None made") {
		t.Fatalf("before anything is registered the page says %q", got)
	}
	send := func() {
		t.Helper()
		w.fill(map[string]string{"certificate": labClientCertPEM(t, "Riverside Lab Gateway")})
		click(t, w.ctx, "#make-token")
		w.press("#interface-submit")
	}
	time.Sleep(11 * time.Second) // her sign-in is now too old to change the interface
	send()
	if !strings.HasPrefix(w.at(), "/account/step-up") {
		t.Fatalf("a change to the interface did not ask for a step-up: at %s", w.at())
	}
	code, err := appCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	w.fill(map[string]string{"code": code})
	w.press("#confirm")
	if !strings.Contains(w.at(), "/interface?confirm=1") || !strings.Contains(w.text(".flash"), "Send the form again") {
		t.Fatalf("after the step-up: at %s, %q", w.at(), w.text("main"))
	}
	send()
	token := w.text("#token")
	if !strings.HasPrefix(token, "hl7_") || !strings.Contains(w.text("#new-token"), "not shown again") || !strings.Contains(w.text("#new-token"), "/api/v1/hl7") {
		t.Fatalf("the token is shown as %q: %q", token, w.text("main"))
	}
	if got := w.text("#cert-state"); !strings.Contains(got, "CN=Riverside Lab Gateway") || !strings.Contains(got, "30 June 2027") {
		t.Fatalf("the certificate is shown as %q", got)
	}
	if got := w.text("#token-state"); !strings.HasPrefix(got, "Made on ") {
		t.Fatalf("the token is described as %q", got)
	}
	if st.svc.LabByToken(t.Context(), token) == "" {
		t.Fatal("the token shown recognises no lab")
	}
	// Back by the link and to the page again: the token is not there.
	w.follow("#back-vendors")
	w.follow("#vendors a.lab-interface")
	if w.has("#token") || !strings.Contains(w.text("#cert-state"), "Riverside Lab Gateway") {
		t.Fatalf("the page again: %q", w.text("main"))
	}
}

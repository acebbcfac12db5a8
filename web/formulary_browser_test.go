package web_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserAdminImportsTheFormulary: the demo practice's administrator
// reaches the formulary from her home, on a phone, and imports a CSV with
// a mistake: the page names the line and nothing changes. She imports a
// good one, which replaces the formulary, and finds a drug of it by name;
// Dr. Rivera then finds that drug on Maria Lopez's prescribe form, reached
// from her record, which names her.
func TestBrowserAdminImportsTheFormulary(t *testing.T) {
	st := newDemoStack(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	good := filepath.Join(dir, "formulary.csv")
	if err := os.WriteFile(bad, []byte("rxnorm,name,schedule\n29046,Lisinopril,\nlisinopril,20 mg,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte("rxnorm,name,schedule\n29046,Lisinopril,\n310965,Ibuprofen 200 MG Oral Tablet,\n3322,Diazepam,CIV\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	upload := func(w *walker, path string) {
		t.Helper()
		if err := chromedp.Do(w.ctx, chromedp.SetUploadFiles(chromedp.CSS("#formulary-file"), []string{path})); err != nil {
			t.Fatal(err)
		}
		w.press("#import-formulary")
	}

	w := newWalker(t, st.base)
	w.use(phone)
	w.start()
	w.signIn(admin, "")
	w.follow("#home-formulary")
	if got := w.text("#formulary tbody"); !strings.Contains(got, "Amoxicillin") {
		t.Fatalf("the demo formulary lists %q", got)
	}
	// The refusal is a 400 page the walker would report; expected here.
	if err := chromedp.Do(w.ctx, chromedp.SetUploadFiles(chromedp.CSS("#formulary-file"), []string{bad})); err != nil {
		t.Fatal(err)
	}
	click(t, w.ctx, "#import-formulary")
	waitFor(t, w.ctx, "the refusal", `(document.querySelector('.error') || {textContent: ''}).textContent.includes('not changed') ? 1 : 0`)
	w.mu.Lock()
	w.refused = nil
	w.mu.Unlock()
	w.check()
	if got := w.text(".error"); !strings.Contains(got, "line 3") {
		t.Errorf("a file with a mistake on line 3 says %q", got)
	}
	if got := w.text("#formulary tbody"); !strings.Contains(got, "Amoxicillin") {
		t.Errorf("a refused file changed the formulary: %q", got)
	}
	upload(w, good)
	if got := w.text(".flash"); !strings.Contains(got, "replaced") {
		t.Errorf("after the import the page says %q", got)
	}
	if got := w.text("#formulary tbody"); strings.Contains(got, "Amoxicillin") || !strings.Contains(got, "Ibuprofen") || !strings.Contains(got, "CIV") {
		t.Errorf("the imported formulary lists %q", got)
	}
	w.fill(map[string]string{"formulary-query": "ibu"})
	w.press("#formulary-find")
	if got := w.text("#formulary tbody"); !strings.Contains(got, "Ibuprofen") || strings.Contains(got, "Lisinopril") {
		t.Errorf("searching ibu lists %q", got)
	}
	w.signOut()

	// The clinician prescribes from it, from Maria's record.
	w.use(desktop)
	w.start()
	w.signIn(doctor, "")
	w.follow("#nav-patients")
	if err := chromedp.Do(w.ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const a = Array.from(document.querySelectorAll('main a')).find((e) => e.textContent.trim() === 'Maria Lopez');
		if (a) a.id = 'open-maria';
	})()`)); err != nil {
		t.Fatal(err)
	}
	w.follow("#open-maria")
	w.follow("#prescribe")
	if got := w.text("h1"); got != "Write a prescription for Maria Lopez" {
		t.Errorf("the prescribe form is headed %q", got)
	}
	w.fill(map[string]string{"drug-query": "ibu"})
	w.press("#find-drug")
	if got := w.text("#rx-form fieldset"); !strings.Contains(got, "Ibuprofen") {
		t.Errorf("the prescribe form finds %q", got)
	}
}

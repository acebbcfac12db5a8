package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserWorkforceNetworks walks, on a phone (390 px), from the
// administrator's home to Settings: a list of networks that leaves out
// her own address is refused, saying she would lock herself out, with
// what she typed still in the field; her own network saves, and the page
// shows it.
func TestBrowserWorkforceNetworks(t *testing.T) {
	st := newDemoStack(t)
	w := newWalker(t, st.base)
	w.use(phone)
	w.start()
	w.signIn(admin, "")
	w.follow("#nav-settings")
	if got := w.text("#settings-form"); !strings.Contains(got, "connected from 127.0.0.1") {
		t.Fatalf("the page does not say where she is connected from: %q", got)
	}
	w.fill(map[string]string{"workforce-networks": "198.51.100.0/24"})
	// The refusal is a 400 page the walker would report; expected here.
	click(t, w.ctx, "#save-settings")
	waitFor(t, w.ctx, "the refusal", `(document.querySelector('.error') || {textContent: ''}).textContent.includes('lock you out') ? 1 : 0`)
	w.mu.Lock()
	w.refused = nil
	w.mu.Unlock()
	w.check()
	if got := networksField(t, w); got != "198.51.100.0/24" {
		t.Errorf("the refused list is not kept to correct: %q", got)
	}
	w.fill(map[string]string{"workforce-networks": "127.0.0.0/8\n203.0.113.0/24"})
	w.press("#save-settings")
	if !strings.Contains(w.text(".flash"), "saved") {
		t.Fatalf("saving the networks says %q", w.text("main"))
	}
	if got := networksField(t, w); !strings.Contains(got, "203.0.113.0/24") {
		t.Errorf("the saved list: %q", got)
	}
}

// networksField is what the networks field holds.
func networksField(t *testing.T, w *walker) string {
	t.Helper()
	v, err := chromedp.Run(w.ctx, chromedp.Evaluate[string](`document.getElementById('workforce-networks').value`))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

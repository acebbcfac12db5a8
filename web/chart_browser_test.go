package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"haven/internal/testkit"
)

// TestBrowserChecksAccessHistoryProofs signs a patient in with Chromium,
// opens "Who accessed my record" and waits for the page's script to check
// every line's inclusion proof and the checkpoint's Ed25519 signature in
// the browser. Then it alters one line's event bytes in the page and runs
// the checker again: that line must now fail.
func TestBrowserChecksAccessHistoryProofs(t *testing.T) {
	ctx := testkit.Browser(t)
	st, ts := newChartStack(t, testkit.SQLite(t))
	p := ts[0]
	if err := chromedp.Do(ctx, chromedp.Navigate(st.base+"/login")); err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, map[string]string{"email": p.pEmail[0], "password": stackPassword}, "sign-in", "#role")
	if err := chromedp.Do(ctx, chromedp.Navigate(st.base+"/app/history"), chromedp.WaitVisible(chromedp.CSS(`#proof-status[data-result]`))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("history page: %v\n%s", err, body)
	}
	status := text(t, ctx, "#proof-status")
	result, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('proof-status').dataset.result`))
	rows, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('table.history td.proof.ok').length`))
	if result != "ok" || rows < 3 || !strings.Contains(status, "checkpoint signature valid") {
		t.Fatalf("proofs not verified in the browser: %q (%s), %d rows", status, result, rows)
	}
	// Alter one event as a lying server would, and check again.
	tamper := `(() => {
		const row = document.querySelector('#history tbody tr');
		const b = Uint8Array.from(atob(row.dataset.canonical), c => c.charCodeAt(0));
		b[b.length - 1] ^= 1;
		row.dataset.canonical = btoa(String.fromCharCode(...b));
		document.querySelectorAll('td.proof').forEach(td => { td.className = 'proof'; });
		delete document.getElementById('proof-status').dataset.result;
		return import('/static/proof.js?again').then(() => true);
	})()`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](tamper, chromedp.EvalAsValue, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("re-running the checker: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('proof-status').dataset.result || ''`))
		if r == "bad" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an altered event still passed the browser's check: %q", text(t, ctx, "#proof-status"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if bad, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('table.history td.proof.bad').length`)); bad != 1 {
		t.Fatalf("%d rows flagged, want exactly the altered one", bad)
	}
}

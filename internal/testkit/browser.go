package testkit

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BrowserTimeout bounds everything one browser test does, so a hung page
// fails the test instead of the whole run. It is generous because CI runs
// every package at once with the race detector on two cores: the video
// visit, two browsers and a call, once took more than 90 s there to reach
// its camera check, and failed a run that had nothing wrong with it.
const BrowserTimeout = 4 * time.Minute

// chromium finds the browser: HAVEN_CHROMIUM if set, else "chromium" on
// the PATH (Debian's package). No test ever downloads a browser.
func chromium() (string, bool) {
	if p := os.Getenv("HAVEN_CHROMIUM"); p != "" {
		return p, true
	}
	p, err := exec.LookPath("chromium")
	return p, err == nil
}

// FakeMedia gives the browser a synthetic camera and microphone and grants
// them without a prompt, for video-visit tests.
var FakeMedia = []chromedp.ExecAllocatorOption{
	chromedp.Flag("use-fake-ui-for-media-stream", true),
	chromedp.Flag("use-fake-device-for-media-stream", true),
}

// Browser starts a headless Chromium with a fresh profile for one test and
// returns a chromedp context for its first tab. The browser trusts the
// test server's self-signed certificate (it ignores certificate errors;
// it only ever talks to loopback servers the test started) and makes no
// connections of its own (no sync, updates, QUIC or background
// networking). Outside CI, a missing Chromium skips the test; in CI it
// fails it, so a green run means the browser tests ran. extra adds
// options, such as FakeMedia.
func Browser(tb testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	tb.Helper()
	path, ok := chromium()
	if !ok {
		if InCI() {
			tb.Fatal("chromium is not installed: CI must run the browser tests")
		}
		tb.Skip("chromium not found; browser tests skipped outside CI")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("ignore-certificate-errors", true),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(tb.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, BrowserTimeout)
	tb.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser now, so a failure to start is clear
		tb.Fatalf("start chromium: %v", err)
	}
	return ctx
}

package web_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"haven/video/livekit"
	"haven/video/livekit/livekittest"
)

// TestBrowserVideoVisitThroughLiveKit: with --video-engine livekit, the
// patient and the clinician, each in their own Chromium at 390 px, meet
// through a real livekit-server: the visit's room exists once the
// clinician admits the patient, both decode the other's camera (a picture
// that is not black) through LiveKit, every frame they receive was
// opened with a key the other sealed for them (LiveKit forwards only
// sealed frames), each tile carries the other's real name (which Haven's
// call channel gave, LiveKit never having it), a screen the patient shares
// reaches the clinician encrypted and decoded, and both show the same
// safety code. The page loads
// livekit-client from Haven itself, under the page's CSP, which names the
// LiveKit server as the only other place it may connect to.
func TestBrowserVideoVisitThroughLiveKit(t *testing.T) {
	if testing.Short() {
		t.Skip("two browsers and a LiveKit call")
	}
	lk := livekittest.Start(t)
	eng, err := livekit.New(livekit.Config{URL: lk.URL, APIKey: lk.APIKey, APISecret: lk.APISecret,
		Allow: func(context.Context) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	st := newVideoStackOn(t, true, eng)
	st.practice = st.seedPractice("Riverside Family Clinic", doctor, desk, patientEmail, "Maria Lopez")
	visit := st.bookNextSlot(patientEmail, doctor)
	if rooms := lk.Rooms(t); len(rooms) != 0 {
		t.Fatalf("rooms before admission: %v", rooms)
	}
	patient, clinician, _ := callInBrowsers(t, st, visit)
	for _, ctx := range []context.Context{patient, clinician} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
			t.Fatal(err)
		}
	}
	// The admit click returns before the admission it sends is done: the
	// room is there once the server has answered it.
	want := []string{eng.Room(visit.ID)}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		rooms := lk.Rooms(t)
		if slices.Equal(rooms, want) {
			break
		}
		if len(rooms) > 0 || time.Now().After(deadline) {
			t.Fatalf("rooms after admission: %v, want the visit's %s", rooms, eng.Room(visit.ID))
		}
	}

	const frames = `Number((document.getElementById('call') || {dataset: {}}).dataset.framesDecoded || 0)`
	const opened = `Number((document.getElementById('call') || {dataset: {}}).dataset.framesOpened || 0)`
	const code = `(document.getElementById('call') || {dataset: {}}).dataset.safetyCode || ''`
	for who, ctx := range map[string]context.Context{"patient": patient, "clinician": clinician} {
		waitFor(t, ctx, who+" joins through LiveKit", `document.getElementById('call').dataset.engine === 'livekit' ? 1 : 0`)
		waitFor(t, ctx, who+" decodes video through LiveKit", frames+` > 30 ? 1 : 0`)
		waitFor(t, ctx, who+" opens sealed frames", opened+` > 30 ? 1 : 0`)
		if luma := pictureLuma(t, ctx); luma < 20 {
			t.Fatalf("the %s sees a dark picture (mean luma %.1f)", who, luma)
		}
		fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= 390`))
		if err != nil || !fits {
			t.Fatalf("the %s's call page scrolls sideways at 390 px (%v)", who, err)
		}
	}
	// Tiles carry the others' real names, which Haven's call channel gave
	// each page keyed by LiveKit pseudonym: LiveKit itself never had them.
	label := `Array.from(document.querySelectorAll('#remote .label')).map(e => e.textContent).join('|')`
	waitFor(t, patient, "the clinician named on the patient's tile", fmt.Sprintf(`(%s).includes('Worker %s') ? 1 : 0`, label, doctor))
	waitFor(t, clinician, "the patient named on the clinician's tile", fmt.Sprintf(`(%s).includes('Maria Lopez') ? 1 : 0`, label))
	for _, p := range lk.ParticipantInfos(t, eng.Room(visit.ID)) {
		if p.Name != "" || p.Metadata != "" || len(p.Attributes) != 0 || !strings.HasPrefix(p.Identity, "p_") {
			t.Fatalf("LiveKit knows a participant as %q (name %q, metadata %q, attributes %v)", p.Identity, p.Name, p.Metadata, p.Attributes)
		}
	}
	// The patient shares their screen: it goes out only once its sender
	// encrypts, and the clinician receives it through a receiver that
	// decrypts and decodes it, on the patient's tile.
	click(t, patient, "#screen")
	waitFor(t, patient, "the screen published, encrypted", `Number(document.getElementById('call').dataset.lkScreenPublished || 0)`)
	waitFor(t, clinician, "the screen received through a decrypting receiver", `Number(document.getElementById('call').dataset.lkScreenReceived || 0)`)
	const shown = `(() => { const v = document.querySelector('#remote video.screen:not([hidden])');
	  return v && v.videoWidth > 0 ? v.getVideoPlaybackQuality().totalVideoFrames : 0; })()`
	waitFor(t, clinician, "the shared screen decoded", shown+` > 10 ? 1 : 0`)
	waitFor(t, clinician, "the patient's tile says they share", fmt.Sprintf(`(%s).includes('Maria Lopez · sharing screen') ? 1 : 0`, label))
	for who, ctx := range map[string]context.Context{"patient": patient, "clinician": clinician} {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('call').dataset.lkUnprotected || '0'`))
		if err != nil || n != "0" {
			t.Fatalf("the %s's page met %s sender(s) it could not encrypt (%v)", who, n, err)
		}
	}
	click(t, patient, "#screen")
	waitFor(t, clinician, "the shared screen gone", `document.querySelector('#remote video.screen:not([hidden])') ? 0 : 1`)

	// What the encryption costs through LiveKit, as the embedded test
	// reports it: the worker's time sealing and opening per frame.
	for who, ctx := range map[string]context.Context{"patient": patient, "clinician": clinician} {
		c, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`(() => { const d = document.getElementById('call').dataset;
		  return {sealed: d.framesSealed, opened: d.framesOpened, dropped: d.framesDropped, sealMs: d.sealMs, openMs: d.openMs}; })()`))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s through LiveKit: sealed %s frames in %s ms, opened %s in %s ms, dropped %s (before their key)",
			who, c["sealed"], c["sealMs"], c["opened"], c["openMs"], c["dropped"])
	}
	if got := lk.Participants(t, eng.Room(visit.ID)); len(got) != 2 {
		t.Fatalf("LiveKit's room holds %v, want the patient and the clinician", got)
	}
	pc, cc := waitCode(t, patient, code, ""), waitCode(t, clinician, code, "")
	if pc == "" || pc != cc {
		t.Fatalf("safety codes: patient %q, clinician %q", pc, cc)
	}
}

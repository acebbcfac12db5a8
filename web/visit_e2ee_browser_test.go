package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"haven"
	"haven/auth/totp"
	"haven/service"
)

// keyless is run in a page before Haven's scripts: the page still joins
// and announces its public key, but it never receives a media key (the
// sealed keys the others send it are dropped on arrival) and its
// receivers hand what arrives from the SFU straight to the decoder,
// untransformed. Its decoder therefore sees exactly the bytes the server
// forwards.
const keyless = `(() => {
  const recv = RTCRtpReceiver.prototype;
  if (Object.getOwnPropertyDescriptor(recv, 'transform')) {
    Object.defineProperty(recv, 'transform', { configurable: true, get() { return null; }, set(v) {} });
  }
  if (recv.createEncodedStreams) {
    const orig = recv.createEncodedStreams;
    recv.createEncodedStreams = function () {
      const s = orig.call(this);
      s.readable.pipeTo(s.writable);
      return { readable: new ReadableStream(), writable: new WritableStream() };
    };
  }
  const d = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage');
  Object.defineProperty(WebSocket.prototype, 'onmessage', { configurable: true, get: d.get, set(fn) {
    d.set.call(this, (ev) => {
      if (typeof ev.data === 'string' && ev.data.includes('"type":"e2ee-wrap"')) { return; }
      fn(ev);
    });
  } });
})();`

// TestBrowserVideoVisitIsEncryptedEndToEnd: the patient and the clinician
// meet in a call whose media their browsers encrypt for each other. Both
// decode the other's camera (a picture that is not black), both pages
// show the same safety code, and every frame either receives was opened
// with a key the other sealed for it, the patient's shared screen too.
// Then the front desk, invited by
// the clinician, joins with a browser that gets no media key and feeds
// what the SFU forwards straight to its decoder: its media arrives, and
// next to nothing decodes, while the others go on seeing each other; the
// safety code changes on every screen, and still agrees. When the guest
// leaves, the two rekey, go on, and their code is again their own.
func TestBrowserVideoVisitIsEncryptedEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("three browsers and a call")
	}
	st := newVisitStack(t, true)
	visit := st.bookNextSlot(patientEmail, doctor)
	patient, clinician, _ := callInBrowsers(t, st, visit)

	const frames = `Number((document.getElementById('call') || {dataset: {}}).dataset.framesDecoded || 0)`
	const opened = `Number((document.getElementById('call') || {dataset: {}}).dataset.framesOpened || 0)`
	const code = `(document.getElementById('call') || {dataset: {}}).dataset.safetyCode || ''`
	for who, ctx := range map[string]context.Context{"patient": patient, "clinician": clinician} {
		waitFor(t, ctx, who+" decodes video", frames+` > 30 ? 1 : 0`)
		waitFor(t, ctx, who+" opens sealed frames", opened)
		mode, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('call').dataset.e2ee || ''`))
		if mode == "" {
			t.Fatalf("the %s's call runs without end-to-end encryption", who)
		}
		// The picture is the other's camera, not a black (or blank) frame.
		if luma := pictureLuma(t, ctx); luma < 20 {
			t.Fatalf("the %s sees a dark picture (mean luma %.1f)", who, luma)
		}
	}
	// What the encryption costs: the worker's time sealing and opening,
	// per frame and per second of call (a share of one core; the wall
	// time of WebCrypto's promises, so an upper bound on its CPU).
	for who, ctx := range map[string]context.Context{"patient": patient, "clinician": clinician} {
		c, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`(() => { const d = document.getElementById('call').dataset;
		  return {sealed: d.framesSealed, opened: d.framesOpened, sealMs: d.sealMs, openMs: d.openMs, since: String(Date.now() - Number(d.atConnected))}; })()`))
		if err != nil {
			t.Fatal(err)
		}
		n := func(k string) float64 { v, _ := strconv.ParseFloat(c[k], 64); return v }
		secs := n("since") / 1000
		t.Logf("%s: sealed %v frames in %.0f ms (%.1f µs each), opened %v in %.0f ms (%.1f µs each); %.2f%% of a core over %.0f s of call",
			who, n("sealed"), n("sealMs"), 1000*n("sealMs")/n("sealed"), n("opened"), n("openMs"), 1000*n("openMs")/n("opened"),
			100*(n("sealMs")+n("openMs"))/1000/secs, secs)
	}
	shape := regexp.MustCompile(`^\d{4} \d{4} \d{4}$`)
	pc, cc := waitCode(t, patient, code, ""), waitCode(t, clinician, code, "")
	if !shape.MatchString(pc) || pc != cc {
		t.Fatalf("safety codes: patient %q, clinician %q", pc, cc)
	}
	if shown := textOf(t, patient, "#safety-code"); shown != pc {
		t.Fatalf("the patient's page shows %q as the safety code, not %q", shown, pc)
	}

	// A shared screen is sealed like the camera: the clinician sees the
	// patient's screen, and every frame still opens.
	click(t, patient, "#screen")
	waitFor(t, clinician, "the clinician sees the patient's screen",
		`Array.from(document.querySelectorAll('#remote video.screen')).some((v) => !v.hidden && v.videoWidth > 0) ? 1 : 0`)
	// Frames that arrive before their key (at the start, at a rekey) are
	// dropped; while the screen is shared, hardly any should be.
	const dropped = `Number(document.getElementById('call').dataset.framesDropped || 0)`
	openedBefore := waitFor(t, clinician, "opened", opened)
	droppedBefore, _ := chromedp.Run(clinician, chromedp.Evaluate[float64](dropped))
	openedAfter := waitFor(t, clinician, "frames still open", fmt.Sprintf(`%s > %v + 100 ? %s : 0`, opened, openedBefore, opened))
	droppedAfter, _ := chromedp.Run(clinician, chromedp.Evaluate[float64](dropped))
	if droppedAfter-droppedBefore > 0.05*(openedAfter-openedBefore) {
		t.Fatalf("during the screen share the clinician dropped %v frames that did not open, and opened %v", droppedAfter-droppedBefore, openedAfter-openedBefore)
	}

	// The front desk joins without the key, as the SFU sees the call.
	if err := chromedp.Do(clinician, chromedp.SetValue(chromedp.ID("invitee"), "frontdesk")); err != nil {
		t.Fatal(err)
	}
	click(t, clinician, "#find-invitee")
	click(t, clinician, "#invitees button[data-invite]")
	guest := mediaBrowser(t)
	if _, err := chromedp.Run(guest, func(ctx context.Context, tg *chromedp.Target) (page.AddScriptToEvaluateOnNewDocumentResult, error) {
		return cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: keyless})
	}); err != nil {
		t.Fatal(err)
	}
	joinInvited(t, st, guest, desk, visit.ID)
	// Its media arrives: many video packets from both others.
	const packets = `Number((document.getElementById('call') || {dataset: {}}).dataset.videoPackets || 0)`
	waitFor(t, guest, "video packets reach the keyless guest", packets+` > 300 ? 1 : 0`)
	// Over the same stretch, the patient decodes a few hundred frames and
	// the guest next to nothing: the VP8 decoder refuses almost every
	// sealed frame, and the rare keyframe it takes (its size is in the
	// clear) comes out as noise, and a few frames after it. Bounded at
	// 10%, not 0, for that reason; without the encryption it would be all.
	guestBefore, _ := chromedp.Run(guest, chromedp.Evaluate[float64](frames))
	before := waitFor(t, patient, "frames", frames)
	after := waitFor(t, patient, "the patient still decodes", fmt.Sprintf(`%s > %v + 300 ? %s : 0`, frames, before, frames))
	guestAfter, err := chromedp.Run(guest, chromedp.Evaluate[float64](frames))
	if err != nil || guestAfter-guestBefore > 0.10*(after-before) {
		t.Fatalf("the guest without the key decoded %v frames of what the SFU forwards while the patient decoded %v (%v)", guestAfter-guestBefore, after-before, err)
	}
	t.Logf("while the patient decoded %v frames, the keyless guest decoded %v (of %v in all)", after-before, guestAfter-guestBefore, guestAfter)
	// The codes now cover three keys: changed, and equal on every screen.
	pc2, cc2, gc := waitCode(t, patient, code, pc), waitCode(t, clinician, code, cc), waitCode(t, guest, code, "")
	if pc2 != cc2 || cc2 != gc || !shape.MatchString(gc) {
		t.Fatalf("safety codes with three in the call: patient %q, clinician %q, guest %q", pc2, cc2, gc)
	}

	// The guest leaves: the others rekey without it, go on seeing each
	// other, and their code is again that of their two keys.
	click(t, guest, "#leave")
	waitFor(t, patient, "the patient's code without the guest", fmt.Sprintf(`(%s) === %q ? 1 : 0`, code, pc))
	waitFor(t, clinician, "the clinician's code without the guest", fmt.Sprintf(`(%s) === %q ? 1 : 0`, code, pc))
	for who, ctx := range map[string]context.Context{"patient": patient, "clinician": clinician} {
		n := waitFor(t, ctx, "frames", opened)
		waitFor(t, ctx, who+" opens frames after the rekey", fmt.Sprintf(`%s > %v + 300 ? 1 : 0`, opened, n))
	}

	// The SFU's own view: an interpreter joins with a client of its own
	// that keeps the VP8 frames the SFU forwards, as the SFU has them.
	// Every one is sealed (the trailer's mark, a key id and a nonce of its
	// own), with no more in the clear than the frame tag and, on a
	// keyframe, the start code and size the packetizer needs.
	obsEmail := "interpreter@riverside.example"
	if _, err := st.svc.CreateUser(context.Background(), service.NewUser{PracticeID: st.practice, Role: haven.RoleStaff, Email: obsEmail, Name: "Sam Interpreter", Password: stackPassword}); err != nil {
		t.Fatal(err)
	}
	observer := st.client(firefox)
	enrolOnWallClock(t, observer, obsEmail)
	if err := chromedp.Do(clinician, chromedp.SetValue(chromedp.ID("invitee"), "Interpreter")); err != nil {
		t.Fatal(err)
	}
	click(t, clinician, "#find-invitee")
	click(t, clinician, "#invitees button[data-invite]")
	// The invitation travels over the clinician's call connection; the
	// interpreter may ask for a join token once it is recorded.
	for deadline := time.Now().Add(20 * time.Second); ; {
		r := observer.api("POST", "/api/v1/visits/"+visit.ID+"/join-token", nil)
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the invited interpreter cannot get a join token: %s", r.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sfuView := joinRelayed(t, observer, visit.ID)
	for _, from := range []string{st.users[patientEmail], st.users[doctor]} {
		deadline := time.Now().Add(30 * time.Second)
		for len(sfuView.framesFrom(from)) < 100 {
			if time.Now().After(deadline) {
				t.Fatalf("the observer got %d frames from %s", len(sfuView.framesFrom(from)), from)
			}
			time.Sleep(50 * time.Millisecond)
		}
		nonces := map[string]bool{}
		keyframes := 0
		for i, f := range sfuView.framesFrom(from) {
			if len(f) < 3+16+17 || f[len(f)-1] != 0x48 {
				t.Fatalf("frame %d from %s as the SFU forwards it is not sealed (%d bytes, last %#x)", i, from, len(f), f[len(f)-1])
			}
			nonce := string(f[len(f)-17 : len(f)-5])
			if nonces[nonce] {
				t.Fatalf("frame %d from %s reuses a nonce", i, from)
			}
			nonces[nonce] = true
			if f[0]&1 == 0 { // a keyframe: its start code stays in the clear
				keyframes++
				if f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
					t.Fatalf("keyframe %d from %s lost its clear header: % x", i, from, f[:10])
				}
			}
		}
		t.Logf("the SFU forwarded %d frames from %s, %d of them keyframes, every one sealed", len(nonces), from, keyframes)
	}

	// The code is readable on a phone: at 390 px it fits on one line
	// and the page does not scroll sideways.
	if err := chromedp.Do(patient, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	fits, err := chromedp.Run(patient, chromedp.Evaluate[bool](`(() => { const r = document.getElementById('safety-code').getBoundingClientRect();
	  return r.left >= 0 && r.right <= 390 && r.height < 40 && document.documentElement.scrollWidth <= 390; })()`))
	if err != nil || !fits {
		t.Fatalf("the safety code does not fit a 390 px screen (%v)", err)
	}
}

// enrolOnWallClock signs a workforce member in for the first time through
// the pages, enrolling TOTP, as client.signIn does, on a stack whose clock
// is the wall clock (which signIn cannot move past the code it used).
func enrolOnWallClock(t *testing.T, c *client, email string) {
	t.Helper()
	expectRedirect(t, c.post("/login", url.Values{"email": {email}, "password": {stackPassword}}), "/login/mfa")
	m := secretRE.FindStringSubmatch(readAll(t, c.get("/login/mfa")))
	if m == nil {
		t.Fatal("no secret on the enrolment page")
	}
	code, _ := totp.Code(strings.ReplaceAll(m[1], " ", ""), time.Now())
	r := c.post("/login/enrol", url.Values{"code": {code}})
	expectStatus(t, r, http.StatusOK)
}

// waitCode waits until the page's safety code is set and differs from
// not, and returns it.
func waitCode(t *testing.T, ctx context.Context, expr, not string) string {
	t.Helper()
	waitFor(t, ctx, "safety code", fmt.Sprintf(`(%s) !== '' && (%s) !== %q ? 1 : 0`, expr, expr, not))
	c, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pictureLuma draws the first remote video into a small canvas and
// returns its mean luma (0 black, 255 white).
func pictureLuma(t *testing.T, ctx context.Context) float64 {
	t.Helper()
	const sample = `(() => { const v = document.querySelector('#remote video'); if (!v || !v.videoWidth) return -1;
	  const c = document.createElement('canvas'); c.width = 64; c.height = 48; const g = c.getContext('2d');
	  g.drawImage(v, 0, 0, 64, 48); const d = g.getImageData(0, 0, 64, 48).data; let s = 0;
	  for (let i = 0; i < d.length; i += 4) s += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
	  return s / (d.length / 4); })()`
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := chromedp.Run(ctx, chromedp.Evaluate[float64](sample))
		if err == nil && l >= 0 || time.Now().After(deadline) {
			return l
		}
		time.Sleep(100 * time.Millisecond)
	}
}

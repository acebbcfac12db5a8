package web_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"haven"
	"haven/service"
)

// BenchmarkBrowserAdmissionToFirstFrame measures, in two headless
// Chromiums with fake cameras on loopback, the time from the clinician's
// click on Admit to video decoded on both sides: the patient's waiting
// page learns of the admission, opens the call page, starts the camera,
// fetches a join token, joins over the WebSocket, negotiates with the SFU
// and decodes the clinician's first frame, while the clinician's page does
// the same. ns/op is admission to both sides decoding (polled every 20ms);
// patient-p50-ms and patient-p95-ms are admission to the patient's first
// decoded frame, from the page's own clock. The baseline is the browser's
// floor for the same thing without Haven: start the camera, connect two
// peer connections inside one page, decode the first frame.
//
// Each iteration is a new visit in the clinician's next free 5-minute
// slot, and admission needs a sign-in under 5 minutes old, so run at most
// six iterations:
//
//	go test -run '^$' -bench BrowserAdmissionToFirstFrame -benchtime 6x ./web
func BenchmarkBrowserAdmissionToFirstFrame(b *testing.B) {
	st := newVisitStack(b, true)
	docCtx := haven.NewContextWithActor(context.Background(), haven.Actor{UserID: st.users[doctor], PracticeID: st.practice,
		Role: haven.RoleClinician, MFA: true, AuthTime: time.Now(), SessionID: "bench", ClientAddr: "127.0.0.1", RequestID: "bench"})
	var blocks []service.AvailabilityBlock
	for d := time.Sunday; d <= time.Saturday; d++ {
		blocks = append(blocks, service.AvailabilityBlock{Weekday: d, Start: "00:00", End: "23:55", SlotMinutes: 5, TimeZone: "UTC"})
	}
	if err := st.svc.SetAvailability(docCtx, blocks); err != nil {
		b.Fatal(err)
	}
	patient, clinician := mediaBrowser(b), mediaBrowser(b)
	signInPatient(b, patient, st.base)
	signInClinician(b, clinician, st.base)

	patientCtx := haven.NewContextWithActor(context.Background(), haven.Actor{UserID: st.users[patientEmail], PracticeID: st.practice,
		Role: haven.RolePatient, SessionID: "bench", ClientAddr: "127.0.0.1", RequestID: "bench", AuthTime: time.Now()})
	frames := `Number((document.getElementById('call') || {dataset: {}}).dataset.framesDecoded || 0)`
	var patientMS []float64
	for b.Loop() {
		b.StopTimer()
		now := time.Now()
		slots, err := st.svc.Slots(patientCtx, st.users[doctor], now, now.Add(service.CheckInWindow))
		if err != nil || len(slots) == 0 {
			b.Fatalf("no free slot within the check-in window (run at most 6 iterations): %v", err)
		}
		v, err := st.svc.BookVisit(patientCtx, st.users[patientEmail], st.users[doctor], slots[0].Start, "benchmark")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.svc.CheckIn(patientCtx, v.ID); err != nil {
			b.Fatal(err)
		}
		if err := chromedp.Do(patient, chromedp.Navigate(st.base+"/app/visits/"+v.ID+"/check-in")); err != nil {
			b.Fatal(err)
		}
		if err := chromedp.Do(clinician, chromedp.Navigate(st.base+"/app/waiting-room"), chromedp.WaitVisible(chromedp.ID("admit-"+v.ID))); err != nil {
			b.Fatal(err)
		}
		waitFor(b, patient, "waiting", `document.getElementById('wait-status').textContent.includes('waiting room') ? 1 : 0`)
		time.Sleep(200 * time.Millisecond) // the long request is in flight
		b.StartTimer()
		admitted := time.Now()
		if err := chromedp.Do(clinician, chromedp.Click(chromedp.ID("admit-"+v.ID))); err != nil {
			b.Fatal(err)
		}
		waitForEvery(b, 20*time.Millisecond, patient, frames)
		waitForEvery(b, 20*time.Millisecond, clinician, frames)
		b.StopTimer()
		first, err := chromedp.Run(patient, chromedp.Evaluate[string](`document.getElementById('call').dataset.firstFrameAt`))
		if ms, perr := strconv.ParseInt(first, 10, 64); err == nil && perr == nil {
			patientMS = append(patientMS, float64(ms-admitted.UnixMilli()))
		}
		click(b, clinician, "#end")
		click(b, clinician, "#end")
		waitFor(b, patient, "ended", `document.getElementById('call').dataset.state === 'ended' ? 1 : 0`)
		b.StartTimer()
	}
	reportMS(b, "patient", patientMS)
}

// BenchmarkBrowserAdmissionToFirstFrameBaseline is the browser's own floor:
// in one page, start the fake camera, connect two peer connections
// directly and wait for the first decoded frame. No server is involved
// after the page loads.
func BenchmarkBrowserAdmissionToFirstFrameBaseline(b *testing.B) {
	st := newVisitStack(b, true)
	page := mediaBrowser(b)
	if err := chromedp.Do(page, chromedp.Navigate(st.base+"/")); err != nil {
		b.Fatal(err)
	}
	var ms []float64
	for b.Loop() {
		v, err := chromedp.Run(page, chromedp.Evaluate[float64](directCallJS, chromedp.EvalAwaitPromise))
		if err != nil {
			b.Fatal(err)
		}
		ms = append(ms, v)
	}
	reportMS(b, "direct", ms)
}

// directCallJS times camera start plus one direct local call to the first
// decoded frame, in ms.
const directCallJS = `(async () => {
  const t0 = performance.now();
  const s = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  const a = new RTCPeerConnection(), z = new RTCPeerConnection();
  a.onicecandidate = (e) => { if (e.candidate) { z.addIceCandidate(e.candidate); } };
  z.onicecandidate = (e) => { if (e.candidate) { a.addIceCandidate(e.candidate); } };
  for (const t of s.getTracks()) { a.addTrack(t, s); }
  const v = document.createElement('video');
  v.muted = true; v.autoplay = true;
  document.body.append(v);
  z.ontrack = (e) => { v.srcObject = e.streams[0]; };
  await a.setLocalDescription();
  await z.setRemoteDescription(a.localDescription);
  await z.setLocalDescription();
  await a.setRemoteDescription(z.localDescription);
  for (;;) {
    let f = 0;
    (await z.getStats()).forEach((x) => { if (x.type === 'inbound-rtp' && x.kind === 'video') { f += x.framesDecoded || 0; } });
    if (f > 0) { break; }
    await new Promise((r) => setTimeout(r, 5));
  }
  const ms = performance.now() - t0;
  a.close(); z.close(); v.remove();
  for (const t of s.getTracks()) { t.stop(); }
  return ms;
})()`

func reportMS(b *testing.B, name string, ms []float64) {
	if len(ms) == 0 {
		return
	}
	slices.Sort(ms)
	b.ReportMetric(ms[len(ms)/2], name+"-p50-ms")
	b.ReportMetric(ms[min(len(ms)-1, (len(ms)*95+99)/100-1)], name+"-p95-ms")
}

func waitForEvery(t testing.TB, every time.Duration, ctx context.Context, expr string) {
	t.Helper()
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](expr))
		if err == nil && v > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no decoded video: %v", err)
		case <-time.After(every):
		}
	}
}

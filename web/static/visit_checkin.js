// visit_checkin.js — the pre-visit page. It tests the camera and the
// microphone (a preview and a level meter; nothing leaves the browser),
// times a few small requests to the server as a network check, keeps the
// check-in button off until the security checklist is ticked, checks in,
// and then waits (one long request at a time) until the clinician admits
// the patient, when it opens the call page.
import { api, sleep, signedOut } from './visit_api.js';

const root = document.getElementById('checkin');
const visitID = root.dataset.visit;
const preview = document.getElementById('preview');
const level = document.getElementById('level');
const deviceResult = document.getElementById('device-result');
const networkResult = document.getElementById('network-result');
const checkInButton = document.getElementById('check-in');
const waitStatus = document.getElementById('wait-status');
const boxes = Array.from(document.querySelectorAll('#checklist input[type=checkbox]'));

let stream = null;
let audio = null;
let meterFrame = 0;

function say(el, text, ok) {
  el.textContent = text;
  el.className = ok === undefined ? '' : (ok ? 'ok' : 'bad');
}

async function testDevices() {
  stopDevices();
  say(deviceResult, 'Asking your browser for the camera and microphone…');
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch (e) {
    say(deviceResult, 'Your browser did not give Haven the camera and microphone (' + e.name + '). Allow them for this site and try again.', false);
    root.dataset.devices = 'failed';
    return;
  }
  preview.srcObject = stream;
  try {
    audio = new AudioContext();
    const analyser = audio.createAnalyser();
    analyser.fftSize = 1024;
    audio.createMediaStreamSource(stream).connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    const tick = () => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) { sum += x * x; }
      level.value = Math.min(1, Math.sqrt(sum / buf.length) * 4);
      meterFrame = requestAnimationFrame(tick);
    };
    tick();
  } catch (e) {
    // The meter is a help, not a requirement.
  }
  const cam = stream.getVideoTracks().length > 0, mic = stream.getAudioTracks().length > 0;
  say(deviceResult, (cam ? 'Camera works. ' : 'No camera found. ') + (mic ? 'Microphone works: speak, and the bar moves.' : 'No microphone found.'), cam && mic);
  root.dataset.devices = cam && mic ? 'ok' : 'partial';
}

function stopDevices() {
  cancelAnimationFrame(meterFrame);
  if (audio) { audio.close(); audio = null; }
  if (stream) { for (const t of stream.getTracks()) { t.stop(); } stream = null; }
  preview.srcObject = null;
}

async function timed(bytes) {
  const t0 = performance.now();
  const r = await fetch('/api/v1/network-check?bytes=' + bytes, { credentials: 'same-origin', cache: 'no-store' });
  if (!r.ok) { throw new Error('status ' + r.status); }
  await r.arrayBuffer();
  return performance.now() - t0;
}

async function testNetwork() {
  say(networkResult, 'Testing…');
  try {
    const rtts = [];
    for (let i = 0; i < 5; i++) { rtts.push(await timed(0)); }
    rtts.sort((a, b) => a - b);
    const rtt = rtts[2];
    const size = 256 * 1024;
    const mbps = (size * 8) / (await timed(size) / 1000) / 1e6;
    const good = rtt < 150 && mbps > 1.5, fair = rtt < 400 && mbps > 0.5;
    const verdict = good ? 'Good for video.' : fair ? 'Fair: video may be less sharp.' : 'Poor: move closer to your router, or use your phone\'s data.';
    say(networkResult, `${verdict} Round trip ${Math.round(rtt)} ms, download ${mbps.toFixed(1)} Mbit/s.`, good || fair);
    root.dataset.network = good ? 'good' : fair ? 'fair' : 'poor';
  } catch (e) {
    say(networkResult, 'The server could not be reached. Check your connection.', false);
    root.dataset.network = 'failed';
  }
}

function checklistDone() {
  checkInButton.disabled = !boxes.every((b) => b.checked) || root.dataset.state !== 'booked';
}

function setState(s) {
  root.dataset.state = s;
  checklistDone();
}

async function checkIn() {
  checkInButton.disabled = true;
  try {
    const r = await api('POST', `/api/v1/visits/${visitID}/check-in`);
    setState(r.state);
    waitForAdmission();
  } catch (e) {
    if (signedOut(e)) { return; }
    say(waitStatus, e.message, false);
    checklistDone();
  }
}

async function waitForAdmission() {
  const since = new Date();
  say(waitStatus, `You are in the waiting room (since ${since.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}). Your clinician will let you in.`);
  let failures = 0;
  for (;;) {
    let r;
    try {
      r = await api('GET', `/api/v1/visits/${visitID}/state?seen=waiting`);
      failures = 0;
    } catch (e) {
      if (signedOut(e)) { return; }
      failures++;
      say(waitStatus, 'Reconnecting to the waiting room…', false);
      await sleep(Math.min(10000, 1000 * failures));
      continue;
    }
    setState(r.state);
    if (r.state === 'admitted') {
      say(waitStatus, 'Your clinician is ready. Opening the call…', true);
      stopDevices();
      window.location.assign(`/app/visits/${visitID}/call`);
      return;
    }
    if (r.state !== 'waiting') {
      say(waitStatus, `The visit is ${r.state}.`, false);
      return;
    }
  }
}

document.getElementById('test-devices').addEventListener('click', testDevices);
document.getElementById('test-network').addEventListener('click', testNetwork);
checkInButton.addEventListener('click', checkIn);
for (const b of boxes) { b.addEventListener('change', checklistDone); }
window.addEventListener('pagehide', stopDevices);

switch (root.dataset.state) {
  case 'waiting':
    waitForAdmission();
    break;
  case 'admitted':
    window.location.assign(`/app/visits/${visitID}/call`);
    break;
  case 'booked':
    checklistDone();
    break;
  default:
    say(waitStatus, `The visit is ${root.dataset.state}.`, false);
}

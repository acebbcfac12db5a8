// visit_checkin.js — the pre-visit page. It tests the camera and the
// microphone (a preview and a level meter; nothing leaves the browser),
// times a few small requests to the server as a network check, keeps the
// check-in button off until the security checklist is ticked, checks in,
// and then waits (one long request at a time) until the clinician admits
// the patient, when it opens the call page. The same long request returns
// when the practice sends a message; the page then reads the visit's
// messages and shows them, as text (textContent), never as HTML.
import { api, messageItem, sleep, signedOut } from './visit_api.js';
import { transformSupport } from './e2ee.js';

const root = document.getElementById('checkin');
const visitID = root.dataset.visit;
const preview = document.getElementById('preview');
const level = document.getElementById('level');
const deviceResult = document.getElementById('device-result');
const networkResult = document.getElementById('network-result');
const checkInButton = document.getElementById('check-in');
const waitStatus = document.getElementById('wait-status');
const boxes = Array.from(document.querySelectorAll('#checklist input[type=checkbox]'));
const messagesBox = document.getElementById('visit-messages');
const messageList = document.getElementById('message-list');
const noMessages = document.getElementById('no-messages');
const replyForm = document.getElementById('reply-form');
const replyInput = document.getElementById('reply');
const replyStatus = document.getElementById('reply-status');
const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
let messageCount = 0;

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
  // The call encrypts media in the browser, end to end; a browser that
  // cannot will not connect, so say so now rather than at the call.
  const e2ee = transformSupport() !== '';
  say(deviceResult, (cam ? 'Camera works. ' : 'No camera found. ') + (mic ? 'Microphone works: speak, and the bar moves.' : 'No microphone found.') +
    (e2ee ? ' Your browser can encrypt the call end to end.' : ' But this browser cannot encrypt the call end to end, so the call will not connect: use a current Chrome, Edge, Firefox or Safari.'), cam && mic && e2ee);
  root.dataset.devices = cam && mic && e2ee ? 'ok' : 'partial';
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

// message renders one message of the thread, the patient's own as "You".
function message(m) {
  return messageItem(m, m.from_patient ? 'You' : (m.sender_name || 'The practice'), clock.format(new Date(m.sent_at)));
}

// loadMessages reads the visit's messages (each read is audited).
async function loadMessages() {
  const r = await api('GET', `/api/v1/threads/${visitID}`);
  messageList.replaceChildren(...r.messages.map(message));
  messageCount = r.messages.length;
  noMessages.hidden = messageCount > 0;
  messagesBox.dataset.count = String(messageCount);
  messageList.scrollTop = messageList.scrollHeight;
}

async function sendReply(ev) {
  ev.preventDefault();
  const text = replyInput.value.trim();
  if (!text) { return; }
  replyForm.querySelector('button').disabled = true;
  try {
    await api('POST', `/api/v1/threads/${visitID}/messages`, { body: text });
    replyInput.value = '';
    say(replyStatus, '');
    await loadMessages();
  } catch (e) {
    if (signedOut(e)) { return; }
    say(replyStatus, e.message, false);
  } finally {
    replyForm.querySelector('button').disabled = false;
  }
}

async function waitForAdmission() {
  const since = new Date();
  say(waitStatus, `You are in the waiting room (since ${since.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}). Your clinician will let you in.`);
  messagesBox.hidden = false;
  let failures = 0;
  let stale = true; // the messages shown may be behind the server's
  for (;;) {
    let r;
    try {
      if (stale) {
        await loadMessages();
        stale = false;
      }
      r = await api('GET', `/api/v1/visits/${visitID}/state?seen=waiting&messages=${messageCount}`);
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
      replyForm.hidden = true;
      if (r.state === 'cancelled') {
        say(waitStatus, 'The practice has taken you out of the waiting room and cancelled this visit. You can book another time from your visits, or message the practice.', false);
      } else {
        say(waitStatus, `The visit is ${r.state}.`, false);
      }
      return;
    }
    // A count of -1 is withheld (a watcher who may not read the thread).
    stale = r.messages >= 0 && r.messages !== messageCount;
  }
}

document.getElementById('test-devices').addEventListener('click', testDevices);
document.getElementById('test-network').addEventListener('click', testNetwork);
checkInButton.addEventListener('click', checkIn);
replyForm.addEventListener('submit', sendReply);
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

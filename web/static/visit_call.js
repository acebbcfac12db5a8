// visit_call.js — the call. It fetches a single-use join token, opens the
// signaling WebSocket on this same origin, sends the token first, and then
// answers the server's offers: the SFU chooses every stream and track id,
// and the page only publishes its camera, microphone and (on request) its
// screen. Mute and camera-off stop the tracks here and tell the server,
// which stops forwarding them too. After a dropped connection it rejoins
// with a fresh token. Nothing is recorded, here or on the server.
//
// Media is encrypted end to end (e2ee.js, e2ee_worker.js): the page seals
// every frame it sends and opens every frame it receives with keys agreed
// with the other participants' browsers, and shows a safety code to read
// aloud. A browser that cannot do so does not join.
//
// For tests and the quality line, the page keeps its state and the number
// of video frames it has decoded in data attributes of #call.
import { api, sleep, signedOut } from './visit_api.js';
import { E2EE } from './e2ee.js';
import { joinLiveKit, publishScreen, unpublishScreen } from './visit_livekit.js';

const root = document.getElementById('call');
const visitID = root.dataset.visit;
const statusEl = document.getElementById('call-status');
const localVideo = document.getElementById('local');
const remoteEl = document.getElementById('remote');
const muteButton = document.getElementById('mute');
const cameraButton = document.getElementById('camera');
const screenButton = document.getElementById('screen');
const leaveButton = document.getElementById('leave');
const endButton = document.getElementById('end'); // the clinician's only
const inviteForm = document.getElementById('invite-form'); // the clinician's only
const controls = document.getElementById('controls');
const safetyEl = document.getElementById('safety-code');
// Participants' names by id, as the server gave them with the page; a
// newcomer's is asked for when they arrive.
let names = {};
try { names = JSON.parse(root.dataset.names || '{}'); } catch (e) { names = {}; }

const MAX_ATTEMPTS = 6;
const roles = { patient: 'Patient', clinician: 'Clinician', guest: 'Guest' };

const call = {
  ws: null,
  pc: null,
  role: '',
  me: '',
  local: new MediaStream(), // camera and microphone, once the browser gives them
  mediaReady: null,
  screen: null, // the shared screen's track, while sharing
  screenSender: null,
  muted: false,
  cameraOff: false,
  over: false, // ended, left or replaced: no reconnect
  attempt: 0,
  peers: new Map(), // participant id -> tile
  soundBlocked: false,
  e2ee: null, // the media encryption, once its keys are made
  room: null, // with --video-engine livekit: the LiveKit room (visit_livekit.js)
  receivers: new Set(), // with LiveKit: the receivers of the others' media
};

// setState shows the call's state to tests and styles, and the wall time
// each state was first reached (for the admission-to-video benchmark).
function setState(s) {
  root.dataset.state = s;
  const key = 'at' + s.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase());
  if (!root.dataset[key]) { root.dataset[key] = String(Date.now()); }
}
function say(text) { statusEl.textContent = text; }

function send(m) {
  // On LiveKit, media state travels with the media; Haven's connection
  // carries only leaving, ending, inviting and asking for names.
  if (call.room && !['leave', 'end', 'invite', 'names'].includes(m.type)) { return; }
  if (call.ws && call.ws.readyState === WebSocket.OPEN) {
    call.ws.send(JSON.stringify(m));
  }
}

// --- tiles -----------------------------------------------------------------

function tile(id, role) {
  let t = call.peers.get(id);
  if (t) {
    if (role) { t.role = role; label(t); }
    return t;
  }
  const el = document.createElement('div');
  el.className = 'tile';
  el.dataset.participant = id;
  const video = document.createElement('video');
  video.autoplay = true;
  video.muted = true; // sound plays from the audio element
  video.playsInline = true;
  video.srcObject = new MediaStream();
  const audio = document.createElement('audio');
  audio.autoplay = true;
  audio.srcObject = new MediaStream();
  const screen = document.createElement('video');
  screen.autoplay = true;
  screen.muted = true;
  screen.playsInline = true;
  screen.hidden = true;
  screen.className = 'screen';
  screen.srcObject = new MediaStream();
  const name = document.createElement('span');
  name.className = 'label';
  el.append(video, audio, screen, name);
  remoteEl.append(el);
  t = { id, role: role || '', el, video, audio, screen, name, peer: null };
  call.peers.set(id, t);
  label(t);
  return t;
}

function label(t) {
  const p = t.peer || {};
  let text = names[t.id] || roles[t.role] || 'Participant';
  if (p.audio === false) { text += ' · muted'; }
  if (p.video === false) { text += ' · camera off'; }
  if (p.screen) { text += ' · sharing screen'; }
  t.name.textContent = text;
  t.screen.hidden = !p.screen;
}

function peerState(p) {
  if (!p || p.participant === call.me) { return; }
  const t = tile(p.participant, p.role);
  t.peer = p;
  label(t);
  if (!names[p.participant]) { refreshNames(); }
}

// refreshNames asks who takes part, by name, once a newcomer arrives
// (a guest the clinician just invited).
let naming = null;
function refreshNames() {
  if (naming) { return; }
  naming = api('GET', `/api/v1/visits/${visitID}/people`)
    .then((seat) => {
      names = Object.assign(names, seat.names || {});
      for (const t of call.peers.values()) { label(t); }
    })
    .catch(() => {})
    .finally(() => { naming = null; });
}

// liveKitTile is a tile for a LiveKit identity; someone the page cannot
// name yet (a guest invited since it joined) makes it ask Haven's call
// connection for the names again, once at a time.
const askedFor = new Set();
function liveKitTile(id) {
  const t = tile(id);
  if (!names[id] && !naming && !askedFor.has(id) && call.ws && call.ws.readyState === WebSocket.OPEN) {
    askedFor.add(id);
    naming = Promise.resolve();
    send({ type: 'names' });
  }
  return t;
}

// sharing notes, on LiveKit (where media state travels with the media),
// that a participant shares their screen or stopped.
function sharing(id, on) {
  const t = call.peers.get(id);
  if (!t) { return; }
  t.peer = Object.assign({}, t.peer || {}, { screen: on });
  label(t);
}

function dropTile(id) {
  const t = call.peers.get(id);
  if (t) {
    t.el.remove();
    call.peers.delete(id);
  }
}

// msid finds the stream and track ids the SFU gave the m= section of mid:
// the stream id is the sender's participant id, and the track id starts
// with its kind ("audio-", "video-", "screen-").
function msid(mid) {
  const sdp = call.pc && call.pc.remoteDescription ? call.pc.remoteDescription.sdp : '';
  let cur = null;
  for (const line of sdp.split('\r\n')) {
    if (line.startsWith('m=')) { cur = null; }
    if (line === 'a=mid:' + mid) { cur = {}; }
    if (cur && line.startsWith('a=msid:')) {
      const [stream, track] = line.slice(7).split(' ');
      return { stream, track: track || '' };
    }
  }
  return { stream: '', track: '' };
}

function onTrack(ev) {
  const ids = msid(ev.transceiver.mid);
  const who = ids.stream || (ev.streams[0] && ev.streams[0].id);
  if (!who) { return; }
  call.e2ee.protectReceiver(ev.receiver, ev.track.kind);
  remoteTrack(who, ev.track, ids.track.startsWith('screen-'));
}

// soundBlocked offers a button when the browser will not play sound
// without a click on this page.
function soundBlocked() {
  if (call.soundBlocked) { return; }
  call.soundBlocked = true;
  const b = document.createElement('button');
  b.type = 'button';
  b.id = 'sound';
  b.textContent = 'Turn on sound';
  b.addEventListener('click', () => {
    for (const t of call.peers.values()) { t.audio.play().catch(() => {}); }
    b.remove();
    call.soundBlocked = false;
  });
  statusEl.after(b);
}

// --- connection --------------------------------------------------------------

// slot adds a sender for track (of kind) and puts the encryption on it
// and on the receiver of its transceiver at once: the browser applies a
// transform only to a sender or receiver that has it before its first
// negotiation, and the SFU sends the others' media back on these same
// transceivers. Every slot — microphone, camera, screen — is made now,
// in that order (the SFU's offers fill them in that order), with a
// stand-in track where there is none yet, so that nothing this page
// will ever send can go out through a sender without encryption: the
// screen shared later replaces the stand-in of a slot already protected.
function slot(pc, track, kind, stream) {
  const t = track || standIn(kind);
  const sender = pc.addTrack(t, stream || new MediaStream([t]));
  const tr = pc.getTransceivers().find((x) => x.sender === sender);
  call.e2ee.protectSender(sender, kind);
  if (tr) { call.e2ee.protectReceiver(tr.receiver, kind); }
  if (!track) {
    sender.replaceTrack(null).catch(() => {});
    t.stop();
  }
  return sender;
}

function standIn(kind) {
  if (kind === 'audio') {
    const ctx = new AudioContext();
    const t = ctx.createMediaStreamDestination().stream.getAudioTracks()[0];
    ctx.close();
    return t;
  }
  return document.createElement('canvas').captureStream(0).getVideoTracks()[0];
}

function newPeerConnection(iceServers) {
  const pc = new RTCPeerConnection(Object.assign({ iceServers: iceServers || [], bundlePolicy: 'max-bundle' }, call.e2ee.peerConnectionConfig()));
  slot(pc, call.local.getAudioTracks()[0], 'audio', call.local);
  slot(pc, call.local.getVideoTracks()[0], 'video', call.local);
  call.screenSender = slot(pc, call.screen, 'video');
  pc.onicecandidate = (ev) => {
    if (!ev.candidate || !ev.candidate.candidate) { return; }
    const c = ev.candidate.toJSON();
    const out = { candidate: c.candidate };
    if (c.sdpMid != null) { out.sdpMid = c.sdpMid; }
    if (c.sdpMLineIndex != null) { out.sdpMLineIndex = c.sdpMLineIndex; }
    if (c.usernameFragment != null) { out.usernameFragment = c.usernameFragment; }
    send({ type: 'candidate', candidate: out });
  };
  pc.ontrack = onTrack;
  let grace = 0;
  pc.onconnectionstatechange = () => {
    if (pc !== call.pc) { return; }
    const s = pc.connectionState;
    if (s === 'connected') {
      clearTimeout(grace);
      call.attempt = 0;
      setState('connected');
      say('Connected.');
    } else if (s === 'failed') {
      drop();
    } else if (s === 'disconnected') {
      // A short gap (a Wi-Fi hiccup) often heals by itself.
      clearTimeout(grace);
      grace = setTimeout(() => { if (pc === call.pc && pc.connectionState !== 'connected') { drop(); } }, 5000);
    }
  };
  return pc;
}

let queue = Promise.resolve();

function onMessage(m) {
  queue = queue.then(() => handle(m)).catch((e) => console.warn('signaling', e));
}

// remoteTrack shows a track of another participant in their tile, on
// either engine; whether a screen shows follows their sharing state
// (label).
function remoteTrack(who, track, isScreen) {
  const t = tile(who);
  let target = track.kind === 'audio' ? t.audio : t.video;
  if (isScreen) { target = t.screen; }
  const stream = target.srcObject;
  for (const old of stream.getTracks()) {
    if (old.kind === track.kind) { stream.removeTrack(old); }
  }
  stream.addTrack(track);
  target.srcObject = stream;
  const played = target.play();
  if (played && target === t.audio) {
    played.catch(() => soundBlocked());
  }
}

async function handle(m) {
  switch (m.type) {
    case 'livekit':
      // The server runs --video-engine livekit: the media goes there.
      await call.mediaReady;
      call.me = m.participant;
      call.role = m.role;
      root.dataset.engine = 'livekit';
      root.dataset.joins = String(Number(root.dataset.joins || 0) + 1);
      naming = Promise.resolve(); // the others' names follow this message
      try {
        call.room = await joinLiveKit(m, {
          e2ee: call.e2ee, local: call.local, tile: liveKitTile, dropTile,
          onRemoteTrack: (id, track, isScreen) => {
            remoteTrack(id, track, isScreen);
            if (isScreen) { sharing(id, true); }
          },
          screenEnded: (id) => sharing(id, false),
          screen: () => call.screen,
          setState, say, receivers: call.receivers,
          switchedOff: (kind) => (kind === 'audio' ? call.muted : call.cameraOff),
          ended: () => finish('The visit has ended. Thank you.', 'ended'),
          lost: () => { if (!call.over) { queue = queue.then(() => drop()); } },
        });
        call.attempt = 0;
      } catch (e) {
        console.warn('livekit', e);
        drop();
      }
      break;
    case 'names':
      // On LiveKit: the others' names by their LiveKit pseudonyms.
      if (m.names && typeof m.names === 'object') {
        for (const [id, name] of Object.entries(m.names)) {
          if (typeof name === 'string') { names[id] = name; }
        }
        for (const t of call.peers.values()) { label(t); }
      }
      naming = null;
      break;
    case 'joined':
      await call.mediaReady;
      call.me = m.participant;
      call.role = m.role;
      call.pc = newPeerConnection(m.ice_servers);
      root.dataset.joins = String(Number(root.dataset.joins || 0) + 1);
      for (const p of m.peers || []) { peerState(p); }
      await call.e2ee.joined(m.participant, m.peers);
      setState('joined');
      say(m.peers && m.peers.length ? 'Joining the call…' : 'Waiting for the others to join…');
      if (call.muted) { send({ type: 'mute' }); }
      if (call.cameraOff) { send({ type: 'camera-off' }); }
      if (call.screen) { send({ type: 'screen-start' }); }
      break;
    case 'offer': {
      const pc = call.pc;
      await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      send({ type: 'answer', sdp: pc.localDescription.sdp });
      break;
    }
    case 'answer':
      await call.pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
      break;
    case 'candidate':
      if (m.candidate && m.candidate.candidate) { await call.pc.addIceCandidate(m.candidate); }
      break;
    case 'peer-joined':
    case 'state':
      peerState(m.peer);
      await call.e2ee.peer(m.peer);
      break;
    case 'e2ee-wrap':
      await call.e2ee.unseal(m.participant, m.key);
      break;
    case 'peer-left':
      dropTile(m.participant);
      call.e2ee.left(m.participant);
      if (call.peers.size === 0) { say('The others have left the call.'); }
      break;
    case 'ended':
      finish('The visit has ended. Thank you.', 'ended');
      break;
    case 'error':
      say(m.message || 'Something went wrong.');
      if (m.code === 'unauthorized') {
        // The server cut the call: this session was signed out, revoked
        // or has expired. Rejoining needs a new sign-in.
        finish('Your session has ended, so you have left the call. Sign in again to rejoin.', 'signed-out');
        window.location.assign('/login?ended=1');
        break;
      }
      if (m.code === 'conflict' && /another connection/.test(m.message || '')) {
        finish('You joined this visit from another window; this one has left the call.', 'replaced');
      }
      break;
    default:
      break;
  }
}

async function connect() {
  if (call.over) { return; }
  setState(call.attempt ? 'reconnecting' : 'connecting');
  let pass;
  try {
    pass = await api('POST', `/api/v1/visits/${visitID}/join-token`);
  } catch (e) {
    if (signedOut(e)) { return; }
    if (e.status === 409 || e.status === 403 || e.status === 404) {
      finish(e.message, 'refused');
      return;
    }
    retry();
    return;
  }
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + root.dataset.signal);
  call.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: 'join', token: pass.token }));
  ws.onmessage = (ev) => {
    if (ws !== call.ws) { return; }
    let m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    onMessage(m);
  };
  ws.onclose = () => {
    if (ws === call.ws) { queue = queue.then(() => drop()); }
  };
}

// teardown closes the connection to the server, keeping the camera.
function teardown() {
  const ws = call.ws, pc = call.pc, room = call.room;
  call.ws = null;
  call.pc = null;
  call.room = null;
  call.receivers.clear();
  if (room) { room.disconnect().catch(() => {}); }
  call.screenSender = null;
  if (ws) { try { ws.close(); } catch (e) { /* closed */ } }
  if (pc) { pc.close(); }
  for (const id of Array.from(call.peers.keys())) { dropTile(id); }
}

function drop() {
  if (call.over) { return; }
  teardown();
  retry();
}

function retry() {
  call.attempt++;
  if (call.attempt > MAX_ATTEMPTS) {
    say('The connection was lost. Check your network, then reload this page to rejoin.');
    setState('failed');
    return;
  }
  say('The connection dropped; rejoining…');
  setState('reconnecting');
  setTimeout(connect, Math.min(8000, 250 * 2 ** call.attempt));
}

function finish(text, state) {
  call.over = true;
  teardown();
  if (call.local) { for (const t of call.local.getTracks()) { t.stop(); } }
  if (call.screen) { call.screen.stop(); call.screen = null; }
  localVideo.srcObject = null;
  say(text);
  setState(state);
  // The call is over: its controls go, and one way back stays.
  const back = document.createElement('a');
  back.className = 'button';
  back.id = 'back';
  back.href = root.dataset.back;
  back.textContent = 'Back';
  controls.replaceChildren(back);
  if (inviteForm) { inviteForm.remove(); }
}

// --- controls ----------------------------------------------------------------


function press(b, on, onText, offText) {
  b.setAttribute('aria-pressed', on ? 'true' : 'false');
  b.textContent = on ? onText : offText;
}

muteButton.addEventListener('click', () => {
  call.muted = !call.muted;
  for (const t of call.local.getAudioTracks()) { t.enabled = !call.muted; }
  send({ type: call.muted ? 'mute' : 'unmute' });
  press(muteButton, call.muted, 'Unmute', 'Mute');
});

cameraButton.addEventListener('click', () => {
  call.cameraOff = !call.cameraOff;
  for (const t of call.local.getVideoTracks()) { t.enabled = !call.cameraOff; }
  send({ type: call.cameraOff ? 'camera-off' : 'camera-on' });
  press(cameraButton, call.cameraOff, 'Turn camera on', 'Turn camera off');
});

screenButton.addEventListener('click', async () => {
  if (call.screen) { stopScreen(); return; }
  let s;
  try {
    s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (e) {
    return; // the person chose not to share
  }
  const track = s.getVideoTracks()[0];
  if (!track) { return; }
  call.screen = track;
  track.addEventListener('ended', stopScreen); // the browser's own "stop sharing"
  if (call.pc) {
    await call.screenSender.replaceTrack(track);
  }
  if (call.room && !(await publishScreen(call.room, track, call.e2ee))) {
    // Not encrypted, so not sent: stop the capture.
    call.screen = null;
    track.stop();
    say('Haven could not share your screen securely.');
    return;
  }
  send({ type: 'screen-start' });
  press(screenButton, true, 'Stop sharing', 'Share screen');
});

function stopScreen() {
  if (!call.screen) { return; }
  const track = call.screen;
  track.stop();
  call.screen = null;
  if (call.screenSender) { call.screenSender.replaceTrack(null); }
  if (call.room) { unpublishScreen(call.room, track); }
  send({ type: 'screen-stop' });
  press(screenButton, false, 'Stop sharing', 'Share screen');
}

leaveButton.addEventListener('click', () => {
  if (!call.over) {
    send({ type: 'leave' });
    finish('You left the call.', 'left');
  }
  window.location.assign(root.dataset.back);
});

if (endButton) endButton.addEventListener('click', () => {
  if (!endButton.dataset.armed) {
    endButton.dataset.armed = '1';
    endButton.textContent = 'Click again to end the visit';
    setTimeout(() => { delete endButton.dataset.armed; endButton.textContent = 'End the visit for everyone'; }, 4000);
    return;
  }
  send({ type: 'end' });
});

// Inviting: the clinician types part of a name, picks the person, and
// the server records the invitation (and audits it, naming the guest).
if (inviteForm) {
  const list = document.getElementById('invitees');
  inviteForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const q = document.getElementById('invitee').value.trim();
    let found;
    try {
      found = await api('GET', `/api/v1/visits/${visitID}/people?q=${encodeURIComponent(q)}`);
    } catch (e) {
      if (signedOut(e)) { return; }
      say(e.message);
      return;
    }
    list.replaceChildren();
    if (!found.people.length) {
      const li = document.createElement('li');
      li.textContent = 'Nobody of the practice has that name.';
      list.append(li);
      return;
    }
    for (const p of found.people) {
      const li = document.createElement('li');
      const who = document.createElement('span');
      who.textContent = p.name;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'secondary';
      b.dataset.invite = p.user_id;
      b.textContent = 'Invite ' + p.name;
      b.addEventListener('click', () => {
        names[p.user_id] = p.name;
        send({ type: 'invite', participant: p.user_id });
        say(`${p.name} is invited: the call is on their Haven home page once they sign in.`);
        list.replaceChildren();
      });
      li.append(who, b);
      list.append(li);
    }
  });
}

window.addEventListener('online', () => {
  if (!call.over && !call.ws) { call.attempt = 0; connect(); }
});

// --- keep-alive and statistics -----------------------------------------------

// A call is activity: the session must not time out under it. If the
// session has ended (signed out elsewhere, revoked), the page leaves.
async function keepAlive() {
  while (!call.over) {
    await sleep(60000);
    if (call.over) { return; }
    try {
      await api('POST', '/api/v1/session/keepalive');
    } catch (e) {
      if (e.status === 401) {
        send({ type: 'leave' });
        finish('Your session has ended, so you have left the call.', 'signed-out');
        signedOut(e);
        return;
      }
    }
  }
}

// framesDecoded counts the video frames this page has decoded, and notes
// how media travels (a "relay" candidate: through the TURN server) and
// how many video packets arrived on this connection.
async function framesDecoded() {
  if (call.room) { return liveKitFrames(); }
  if (!call.pc) { return 0; }
  let frames = 0, packets = 0;
  const report = await call.pc.getStats();
  const byID = new Map();
  report.forEach((s) => byID.set(s.id, s));
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      frames += s.framesDecoded || 0;
      packets += s.packetsReceived || 0;
    }
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      const pair = byID.get(s.selectedCandidatePairId);
      const local = pair && byID.get(pair.localCandidateId);
      if (local) { root.dataset.route = local.candidateType; }
    }
  });
  root.dataset.videoPackets = String(packets);
  return frames;
}

// liveKitFrames counts the video frames decoded from LiveKit's receivers.
async function liveKitFrames() {
  let frames = 0, packets = 0;
  for (const r of call.receivers) {
    if (!r.track || r.track.kind !== 'video') { continue; }
    const report = await r.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        frames += s.framesDecoded || 0;
        packets += s.packetsReceived || 0;
      }
    });
  }
  root.dataset.videoPackets = String(packets);
  return frames;
}

async function statsLoop() {
  let total = 0, last = 0;
  while (!call.over) {
    const n = await framesDecoded().catch(() => 0);
    if (n < last) { last = 0; } // a new peer connection after a reconnect
    total += n - last;
    last = n;
    root.dataset.framesDecoded = String(total);
    const c = call.e2ee.stats();
    root.dataset.framesSealed = String(c.sealed);
    root.dataset.framesOpened = String(c.opened);
    root.dataset.framesDropped = String(c.dropped);
    root.dataset.sealMs = String(Math.round(c.sealMs || 0));
    root.dataset.openMs = String(Math.round(c.openMs || 0));
    if (total > 0 && !root.dataset.firstFrameAt) {
      root.dataset.firstFrameAt = String(Date.now());
    }
    await sleep(root.dataset.firstFrameAt ? 1000 : 50);
  }
}

// rejoin drops the connection and joins again with a fresh token, as
// after a network drop (for a frozen picture, and for tests).
function rejoin() {
  if (call.over || !call.ws) { return; }
  call.attempt = 0;
  queue = queue.then(() => drop());
}

window.havenCall = { framesDecoded, rejoin };

// openMedia asks for the camera and microphone. The call is joined at the
// same time; the answer to the server's first offer waits for the media.
async function openMedia() {
  try {
    call.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  } catch (e) {
    call.local = new MediaStream();
    say('Haven could not use your camera or microphone (' + e.name + '). You can still see and hear the others.');
  }
  localVideo.srcObject = call.local;
  root.dataset.atMedia = String(Date.now());
}

// showSafetyCode puts the code on the page; it changes whenever someone
// joins or leaves.
function showSafetyCode(code) {
  root.dataset.safetyCode = code;
  safetyEl.textContent = code || 'shown when someone else joins';
}

async function start() {
  root.dataset.atNavigation = String(Math.round(performance.timeOrigin));
  root.dataset.atScript = String(Date.now());
  try {
    call.e2ee = await E2EE.create(visitID, send, showSafetyCode);
  } catch (e) {
    call.e2ee = null;
  }
  if (!call.e2ee) {
    // Joining would send the visit to the server in the clear.
    finish('This browser cannot encrypt the call end to end, so Haven will not connect it. Use a current version of Chrome, Edge, Firefox or Safari.', 'refused');
    return;
  }
  root.dataset.e2ee = call.e2ee.mode;
  showSafetyCode('');
  call.mediaReady = openMedia();
  connect();
  keepAlive();
  statsLoop();
}

start();

// e2ee_worker.js — the call's media encryption, off the page's main
// thread. Every encoded audio and video frame this browser sends is sealed
// here with the sender's current media key before it reaches the network,
// and every frame it receives is opened here before it reaches the
// decoder. The SFU (Haven's embedded one or any other) forwards frames it
// cannot read.
//
// A frame on the wire, after SFrame's practice for WebRTC:
//
//   clear header | AES-GCM ciphertext and tag | nonce (12) | key id (4) | 0x48
//
// The clear header is the few bytes the codec's packetizer and the SFU
// need to route and packetize the frame (VP8's frame tag: 10 bytes on a
// keyframe, 3 otherwise; the Opus TOC byte), and it is authenticated as
// associated data, so it cannot be changed either. Keys arrive from the
// page (visit_call.js, through e2ee.js) as non-extractable CryptoKeys,
// each with the 32-bit key id its sender chose. A frame whose key is
// unknown, or that does not open, is dropped: the decoder never sees
// ciphertext, and nothing is ever sent in the clear.
//
// The page attaches this worker with RTCRtpScriptTransform where the
// browser has it, or hands it the streams of Chrome's encoded insertable
// streams (createEncodedStreams) otherwise.
'use strict';

const MAGIC = 0x48; // "H": a Haven-sealed frame
const NONCE = 12;
const TRAILER = NONCE + 4 + 1;
const TAG = 16;
const KEEP = 64; // a bound; the page forgets each sender's old keys (e2ee.js)

let sendKey = null; // {kid, key}
const recvKeys = new Map(); // key id -> CryptoKey, oldest first
// Frames sealed, opened and dropped, and the milliseconds spent sealing
// and opening them: the cost of the encryption, for the quality line and
// for measurement.
const counts = { sealed: 0, opened: 0, dropped: 0, sealMs: 0, openMs: 0 };

function clearBytes(frame, kind) {
  if (kind === 'audio') { return 1; }
  return frame.type === 'key' ? 10 : 3;
}

async function seal(frame, out, kind) {
  const k = sendKey;
  const data = new Uint8Array(frame.data);
  if (data.length === 0) { out.enqueue(frame); return; }
  if (!k) { counts.dropped++; return; } // never in the clear
  const t0 = performance.now();
  const n = Math.min(clearBytes(frame, kind), data.length);
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE));
  const ct = new Uint8Array(await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv: nonce, additionalData: data.subarray(0, n) }, k.key, data.subarray(n)));
  const sealed = new Uint8Array(n + ct.length + TRAILER);
  sealed.set(data.subarray(0, n), 0);
  sealed.set(ct, n);
  sealed.set(nonce, n + ct.length);
  new DataView(sealed.buffer).setUint32(n + ct.length + NONCE, k.kid);
  sealed[sealed.length - 1] = MAGIC;
  frame.data = sealed.buffer;
  counts.sealed++;
  counts.sealMs += performance.now() - t0;
  out.enqueue(frame);
}

async function open(frame, out, kind) {
  const data = new Uint8Array(frame.data);
  if (data.length === 0) { out.enqueue(frame); return; }
  if (data.length < TRAILER + TAG || data[data.length - 1] !== MAGIC) { counts.dropped++; return; }
  const end = data.length - TRAILER;
  const kid = new DataView(data.buffer, data.byteOffset).getUint32(end + NONCE);
  const key = recvKeys.get(kid);
  if (!key) { counts.dropped++; return; }
  const t0 = performance.now();
  const n = Math.min(clearBytes(frame, kind), end - TAG);
  let pt;
  try {
    pt = new Uint8Array(await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: data.subarray(end, end + NONCE), additionalData: data.subarray(0, n) }, key, data.subarray(n, end)));
  } catch (e) {
    counts.dropped++;
    return;
  }
  const plain = new Uint8Array(n + pt.length);
  plain.set(data.subarray(0, n), 0);
  plain.set(pt, n);
  frame.data = plain.buffer;
  counts.opened++;
  counts.openMs += performance.now() - t0;
  out.enqueue(frame);
}

// The video transformers of RTCRtpScriptTransform, by side: at a rekey a
// sender starts its new key with a keyframe, and a receiver that gets a
// new key asks for one, so a picture appears without waiting for the
// next keyframe (frames sealed with a key the receiver lacks are dropped,
// and a decoder can only resume at a keyframe).
const videoTransformers = { send: new Set(), recv: new Set() };

function pipe(readable, writable, side, kind, transformer) {
  const step = side === 'send' ? seal : open;
  const live = transformer && kind === 'video' ? videoTransformers[side] : null;
  if (live) { live.add(transformer); }
  readable
    .pipeThrough(new TransformStream({ transform: (frame, out) => step(frame, out, kind).catch(() => { counts.dropped++; }) }))
    .pipeTo(writable)
    .catch(() => {}) // the connection closed
    .finally(() => { if (live) { live.delete(transformer); } });
}

function keyframes(side) {
  for (const t of videoTransformers[side]) {
    const ask = side === 'send' ? t.generateKeyFrame : t.sendKeyFrameRequest;
    if (typeof ask === 'function') { ask.call(t).catch(() => {}); }
  }
}

self.onrtctransform = (ev) => {
  const t = ev.transformer;
  pipe(t.readable, t.writable, t.options.side, t.options.kind, t);
};

self.onmessage = (ev) => {
  const m = ev.data || {};
  switch (m.op) {
    case 'send-key':
      sendKey = { kid: m.kid, key: m.key };
      keyframes('send');
      break;
    case 'recv-key':
      recvKeys.delete(m.kid);
      recvKeys.set(m.kid, m.key);
      while (recvKeys.size > KEEP) { recvKeys.delete(recvKeys.keys().next().value); }
      keyframes('recv');
      break;
    case 'forget':
      for (const kid of m.kids || []) { recvKeys.delete(kid); }
      break;
    case 'stream':
      pipe(m.readable, m.writable, m.side, m.kind);
      break;
    case 'counts':
      self.postMessage({ op: 'counts', counts });
      break;
    default:
      break;
  }
};

// e2ee.js — end-to-end encryption of a call's media, agreed between the
// participants' browsers. The server relays what they say to each other
// but can open none of it.
//
// Each page makes an ECDH P-256 key pair when it opens (the private half
// never leaves WebCrypto) and announces the public half on the signaling
// channel ("e2ee-key"); the server shows it to the others. For each other
// participant, the page derives a sealing key from their public key with
// ECDH and HKDF (salted with the visit, bound to both public keys), and
// with it seals its own media secret for them alone ("e2ee-wrap"; the
// server relays it, naming the sender). Each sender's media key is
// HKDF(secret, visit); e2ee_worker.js seals every outgoing frame with it.
//
// Rekeying: when someone new arrives, or someone leaves, each sender
// draws a new secret and seals it for those present, and starts using it a
// moment later (at once if no one held the old one): a newcomer cannot
// read what was said before, nor a leaver what is said after.
//
// The server could still hand each side a public key of its own (a man in
// the middle). The safety code — a hash of everyone's public keys — shows
// that: read aloud, it matches on every screen only if nobody is in
// between.
const te = new TextEncoder();

function b64url(bytes) {
  let s = '';
  for (const b of bytes) { s += String.fromCharCode(b); }
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function unb64url(s) {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
  return out;
}

// How the browser lets a page transform encoded frames: the standard
// RTCRtpScriptTransform, Chrome's encoded insertable streams, or neither.
export function transformSupport() {
  if (typeof window.RTCRtpScriptTransform === 'function') { return 'script'; }
  if (window.RTCRtpSender && 'createEncodedStreams' in RTCRtpSender.prototype) { return 'streams'; }
  return '';
}

// How long a sender waits after sealing a new secret for the others before
// using it, so their keys are in place before its frames are.
const SWITCH_DELAY = 400;

export class E2EE {
  // create returns the call's encryption, or null when this browser cannot
  // transform media (the call must not then go ahead in the clear).
  static async create(visitID, send, onChange) {
    const mode = transformSupport();
    if (!mode || !crypto.subtle) { return null; }
    const pair = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
    const pub = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
    const e = new E2EE(visitID, send, onChange, mode, pair, b64url(pub));
    await e.rotate();
    return e;
  }

  constructor(visitID, send, onChange, mode, pair, publicKey) {
    this.visitID = visitID;
    this.send = send;
    this.onChange = onChange;
    this.mode = mode;
    this.pair = pair;
    this.publicKey = publicKey;
    this.me = '';
    this.peers = new Map(); // participant id -> {key, seal (CryptoKey), kids: [their key ids]}
    this.current = null; // {kid, secret, sharedWith}: this page's media secret, and whom it was sealed for
    this.worker = new Worker('/static/e2ee_worker.js');
    this.counts = { sealed: 0, opened: 0, dropped: 0 };
    this.worker.onmessage = (ev) => {
      if (ev.data && ev.data.op === 'counts') { this.counts = ev.data.counts; }
    };
    this.protectedSenders = new WeakSet();
    this.protectedReceivers = new WeakSet();
    this.rotateTimer = 0;
  }

  // peerConnectionConfig is what RTCPeerConnection needs for this mode.
  peerConnectionConfig() {
    return this.mode === 'streams' ? { encodedInsertableStreams: true } : {};
  }

  protectSender(sender, kind) {
    if (this.protectedSenders.has(sender)) { return; }
    this.protectedSenders.add(sender);
    this.attach(sender, 'send', kind);
  }

  protectReceiver(receiver, kind) {
    if (this.protectedReceivers.has(receiver)) { return; }
    this.protectedReceivers.add(receiver);
    this.attach(receiver, 'recv', kind);
  }

  attach(endpoint, side, kind) {
    if (this.mode === 'script') {
      endpoint.transform = new RTCRtpScriptTransform(this.worker, { side, kind });
      return;
    }
    const { readable, writable } = endpoint.createEncodedStreams();
    this.worker.postMessage({ op: 'stream', side, kind, readable, writable }, [readable, writable]);
  }

  // joined: this connection is seated as me, with peers already there.
  async joined(me, peers) {
    this.me = me;
    this.send({ type: 'e2ee-key', key: this.publicKey });
    for (const p of peers || []) { await this.peer(p); }
    this.changed();
  }

  // peer takes a participant as the server shows them. A public key not
  // seen before (a newcomer, or someone back with a new page) rekeys; the
  // same key again (a reconnect) just gets the current secret.
  async peer(p) {
    if (!p || p.participant === this.me) { return; }
    const known = this.peers.get(p.participant);
    if (!p.key) {
      // A reconnect: the new connection has not announced its key yet.
      if (known) { known.stale = true; }
      return;
    }
    if (known && known.key === p.key) {
      if (known.stale) {
        known.stale = false;
        await this.sealFor(p.participant);
      }
      return;
    }
    let theirs;
    try {
      theirs = await crypto.subtle.importKey('raw', unb64url(p.key), { name: 'ECDH', namedCurve: 'P-256' }, false, []);
    } catch (e) {
      return; // not a P-256 point: nobody to seal for
    }
    const bits = await crypto.subtle.deriveBits({ name: 'ECDH', public: theirs }, this.pair.privateKey, 256);
    const base = await crypto.subtle.importKey('raw', bits, 'HKDF', false, ['deriveKey']);
    const seal = await crypto.subtle.deriveKey(
      { name: 'HKDF', hash: 'SHA-256', salt: te.encode('haven e2ee ' + this.visitID), info: te.encode('seal v1|' + [this.publicKey, p.key].sort().join('|')) },
      base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
    if (known) { this.worker.postMessage({ op: 'forget', kids: known.kids }); }
    this.peers.set(p.participant, { key: p.key, seal, kids: [] });
    this.changed();
    this.rotateSoon();
  }

  // left forgets a participant who has gone, and rekeys.
  left(id) {
    const p = this.peers.get(id);
    if (!p) { return; }
    this.peers.delete(id);
    this.worker.postMessage({ op: 'forget', kids: p.kids });
    this.changed();
    this.rotateSoon();
  }

  // rotateSoon rekeys once for a burst of arrivals and departures.
  rotateSoon() {
    clearTimeout(this.rotateTimer);
    this.rotateTimer = setTimeout(() => { this.rotate().catch((e) => console.warn('rekey', e)); }, 50);
  }

  // rotate draws a new media secret, seals it for everyone present, and
  // starts sealing frames with it once they have had time to receive it.
  // The wait matters only to those who could open the old key: with no
  // one (the first to arrive), the new key is used at once.
  async rotate() {
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const kid = crypto.getRandomValues(new Uint32Array(1))[0];
    const key = await this.mediaKey(secret);
    const old = this.current;
    const wait = old && Array.from(old.sharedWith).some((id) => this.peers.has(id));
    this.current = { kid, secret, sharedWith: new Set() };
    const sealing = [];
    for (const id of this.peers.keys()) { sealing.push(this.sealFor(id)); }
    await Promise.all(sealing);
    const use = () => { if (this.current && this.current.kid === kid) { this.worker.postMessage({ op: 'send-key', kid, key }); } };
    if (wait) { setTimeout(use, SWITCH_DELAY); } else { use(); }
  }

  mediaKey(secret) {
    return crypto.subtle.importKey('raw', secret, 'HKDF', false, ['deriveKey']).then((base) => crypto.subtle.deriveKey(
      { name: 'HKDF', hash: 'SHA-256', salt: te.encode('haven e2ee ' + this.visitID), info: te.encode('media v1') },
      base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']));
  }

  // sealFor sends the current secret to one participant, sealed so that
  // only they can open it; the associated data names sender and recipient.
  async sealFor(id) {
    const p = this.peers.get(id);
    const cur = this.current;
    if (!p || !cur || !this.me) { return; }
    const plain = new Uint8Array(36);
    new DataView(plain.buffer).setUint32(0, cur.kid);
    plain.set(cur.secret, 4);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: te.encode(this.me + '>' + id) }, p.seal, plain));
    const out = new Uint8Array(iv.length + ct.length);
    out.set(iv, 0);
    out.set(ct, iv.length);
    cur.sharedWith.add(id);
    this.send({ type: 'e2ee-wrap', participant: id, key: b64url(out) });
  }

  // unseal opens a media secret a participant sealed for this page and
  // gives the worker the key their frames are sealed with.
  async unseal(from, sealed) {
    const p = this.peers.get(from);
    if (!p || !this.me) { return; }
    let plain;
    try {
      const b = unb64url(sealed);
      plain = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: b.subarray(0, 12), additionalData: te.encode(from + '>' + this.me) }, p.seal, b.subarray(12)));
    } catch (e) {
      return; // not sealed for us by them: ignored
    }
    if (plain.length !== 36) { return; }
    const kid = new DataView(plain.buffer).getUint32(0);
    const key = await this.mediaKey(plain.subarray(4));
    this.worker.postMessage({ op: 'recv-key', kid, key });
    p.kids.push(kid);
    // Keep a sender's previous key a little, for frames in flight.
    if (p.kids.length > 2) { this.worker.postMessage({ op: 'forget', kids: p.kids.splice(0, p.kids.length - 2) }); }
  }

  // safetyCode is the same on every screen of the call exactly when
  // everyone holds the same public keys: twelve digits from a hash of the
  // visit and all the keys (this page's included), in groups of four.
  // It is empty while nobody else is there.
  async safetyCode() {
    if (!this.peers.size) { return ''; }
    const keys = [this.publicKey, ...Array.from(this.peers.values(), (p) => p.key)].sort();
    const h = new Uint8Array(await crypto.subtle.digest('SHA-256', te.encode('haven safety code v1\n' + this.visitID + '\n' + keys.join('\n'))));
    let n = 0n;
    for (const b of h.subarray(0, 8)) { n = (n << 8n) | BigInt(b); }
    const digits = (n % 1000000000000n).toString().padStart(12, '0');
    return digits.replace(/(\d{4})(?=\d)/g, '$1 ');
  }

  changed() {
    this.safetyCode().then((c) => this.onChange(c)).catch(() => {});
  }

  // stats asks the worker for its frame counts (shown to tests).
  stats() { this.worker.postMessage({ op: 'counts' }); return this.counts; }
}

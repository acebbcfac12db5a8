// visit_livekit.js — the call's media through LiveKit, when the server runs
// with --video-engine livekit. Haven's call connection still decides the
// join (the single-use join token, the checks, the audit) and stays open:
// Haven cuts from LiveKit whoever it stops allowing. In place of an offer
// it hands the page a LiveKit token for the visit's room, and this module
// joins that room with livekit-client (vendored, served by Haven).
//
// Media stays end to end encrypted with the same code as on the embedded
// SFU (e2ee.js): its transform goes on every sender and receiver that
// livekit-client makes, and the public keys and sealed media keys travel
// over LiveKit's data channel instead of Haven's connection — LiveKit can
// read neither. A camera or microphone is published switched off and
// switched on only once its sender encrypts, so nothing leaves in the
// clear but black frames and silence. A shared screen is published the
// same way (publishScreen): switched off until its sender encrypts.
const LIVEKIT = '/static/vendor/livekit-client/livekit-client.esm.mjs';
const TOPIC = 'haven-e2ee';
const te = new TextEncoder();
const td = new TextDecoder();

// joinLiveKit joins the room m names. h is the call page's side:
// { e2ee, local, tile, dropTile, onRemoteTrack, screenEnded, screen,
// setState, say, ended, lost, receivers, switchedOff }.
export async function joinLiveKit(m, h) {
  protectEveryConnection(h.e2ee);
  const lk = await import(LIVEKIT);
  const room = new lk.Room({
    adaptiveStream: false,
    dynacast: false,
    publishDefaults: { simulcast: false, videoCodec: 'vp8', red: false, dtx: false },
  });
  const e2ee = h.e2ee;
  const publish = (msg, to) => {
    const opts = { reliable: true, topic: TOPIC };
    if (to) { opts.destinationIdentities = [to]; }
    debug('sent');
    return room.localParticipant.publishData(te.encode(JSON.stringify(msg)), opts).catch((e) => { debug('sendFailed', e); });
  };
  // The sealed keys go to their one recipient; the public key to all.
  e2ee.send = (msg) => {
    if (msg.type === 'e2ee-key') { publish({ type: 'e2ee-key', key: msg.key }); }
    if (msg.type === 'e2ee-wrap') { publish({ type: 'e2ee-wrap', key: msg.key }, msg.participant); }
  };
  e2ee.me = m.participant;

  // The sender is named by identity even when its participant is not
  // known here yet (its data can overtake the news of its arrival).
  room.on(lk.RoomEvent.DataReceived, (payload, participant, _kind, topic, _enc, identity) => {
    debug('received');
    const from = participant ? participant.identity : identity;
    if (topic !== TOPIC || !from) { return; }
    let msg;
    try { msg = JSON.parse(td.decode(payload)); } catch (e) { return; }
    if (msg.type === 'e2ee-key' && typeof msg.key === 'string') {
      const known = e2ee.peers.get(from);
      h.tile(from);
      if (known && known.key === msg.key) {
        // They announced again: they may have missed our sealed key.
        e2ee.sealFor(from);
        return;
      }
      // A key not seen before: they may not have ours yet.
      e2ee.peer({ participant: from, key: msg.key }).then(() => publish({ type: 'e2ee-key', key: e2ee.publicKey }, from));
    } else if (msg.type === 'e2ee-wrap' && typeof msg.key === 'string') {
      e2ee.unseal(from, msg.key);
    }
  });
  room.on(lk.RoomEvent.ParticipantConnected, (p) => {
    h.tile(p.identity);
    publish({ type: 'e2ee-key', key: e2ee.publicKey }, p.identity);
  });
  room.on(lk.RoomEvent.ParticipantDisconnected, (p) => {
    h.dropTile(p.identity);
    e2ee.left(p.identity);
  });
  room.on(lk.RoomEvent.TrackSubscribed, (track, _pub, participant) => {
    if (track.receiver) {
      e2ee.protectReceiver(track.receiver, track.kind); // already, as it arrived: see protectEveryConnection
      h.receivers.add(track.receiver);
    }
    const screen = track.source === lk.Track.Source.ScreenShare;
    if (screen && track.receiver && e2ee.protectedReceivers.has(track.receiver)) { debug('screenReceived'); }
    h.onRemoteTrack(participant.identity, track.mediaStreamTrack, screen);
  });
  room.on(lk.RoomEvent.TrackUnsubscribed, (track, _pub, participant) => {
    if (track.receiver) { h.receivers.delete(track.receiver); }
    if (track.source === lk.Track.Source.ScreenShare && participant) { h.screenEnded(participant.identity); }
  });
  room.on(lk.RoomEvent.Disconnected, (reason) => {
    if (reason === lk.DisconnectReason.ROOM_DELETED) {
      h.ended();
    } else if (reason !== lk.DisconnectReason.CLIENT_INITIATED && reason !== lk.DisconnectReason.PARTICIPANT_REMOVED) {
      h.lost(); // LiveKit gave up reconnecting: rejoin through Haven
    }
  });

  await room.connect(m.url, m.token, { autoSubscribe: true, rtcConfig: e2ee.peerConnectionConfig() });
  h.setState('joined');
  for (const p of room.remoteParticipants.values()) { h.tile(p.identity); }
  await e2ee.joined(m.participant, []);

  // Publish switched off; switch on once the sender encrypts.
  const sources = { audio: lk.Track.Source.Microphone, video: lk.Track.Source.Camera };
  for (const t of h.local.getTracks()) {
    const wanted = t.enabled;
    t.enabled = false;
    try {
      const pub = await room.localParticipant.publishTrack(t, { source: sources[t.kind], stream: 'camera' });
      const sender = pub.track && pub.track.sender;
      if (!sender || !e2ee.protectedSenders.has(sender)) { debug('unprotected'); continue; } // never switched on without encryption
      t.enabled = wanted && !h.switchedOff(t.kind);
    } catch (e) {
      debug('publishFailed', e);
    }
  }
  const screen = h.screen();
  if (screen) { await publishScreen(room, screen, e2ee); } // shared before a rejoin
  h.setState('connected');
  h.say('Connected.');
  return room;
}

// publishScreen publishes a shared screen's track on room as the camera
// is: switched off (black frames) until its sender is known to encrypt,
// and taken down again if it is not. It reports whether the screen is
// being shared.
export async function publishScreen(room, track, e2ee) {
  const lk = await import(LIVEKIT);
  track.enabled = false;
  try {
    const pub = await room.localParticipant.publishTrack(track, { source: lk.Track.Source.ScreenShare, stream: 'screen' });
    const sender = pub.track && pub.track.sender;
    if (!sender || !e2ee.protectedSenders.has(sender)) {
      debug('unprotected');
      await room.localParticipant.unpublishTrack(track, false);
      return false;
    }
    track.enabled = true;
    debug('screenPublished');
    return true;
  } catch (e) {
    debug('publishFailed', e);
    return false;
  }
}

// unpublishScreen stops sending a shared screen on room.
export async function unpublishScreen(room, track) {
  try {
    await room.localParticipant.unpublishTrack(track, false);
  } catch (e) {
    debug('unpublishFailed', e);
  }
}

// protectEveryConnection puts the encryption on every sender and receiver
// of the connections livekit-client opens, as each is made: the browser
// applies a transform only to one that has it before its first
// negotiation, and livekit-client tells of its tracks only after.
let protecting = null;
function protectEveryConnection(e2ee) {
  protecting = e2ee;
  if (window.RTCPeerConnection.havenProtected) { return; }
  const Native = window.RTCPeerConnection;
  class Protected extends Native {
    constructor(config) {
      super(config);
      this.addEventListener('track', (ev) => { if (protecting) { protecting.protectReceiver(ev.receiver, ev.track.kind); } });
    }

    addTransceiver(trackOrKind, init) {
      const tr = super.addTransceiver(trackOrKind, init);
      const kind = typeof trackOrKind === 'string' ? trackOrKind : trackOrKind.kind;
      if (protecting) {
        protecting.protectSender(tr.sender, kind);
        protecting.protectReceiver(tr.receiver, kind);
      }
      return tr;
    }

    addTrack(track, ...streams) {
      const sender = super.addTrack(track, ...streams);
      if (protecting) { protecting.protectSender(sender, track.kind); }
      return sender;
    }
  }
  Protected.havenProtected = true;
  window.RTCPeerConnection = Protected;
}

// debug counts what happened, for tests and for a person reading the page.
function debug(what, err) {
  const d = document.getElementById('call').dataset;
  const k = 'lk' + what.charAt(0).toUpperCase() + what.slice(1);
  d[k] = String(Number(d[k] || 0) + 1);
  if (err) { console.warn('livekit', what, err); }
}

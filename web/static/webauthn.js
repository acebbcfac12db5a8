// webauthn.js — passkeys and security keys. The server sends the options
// for navigator.credentials (with binary fields in base64url), the
// browser and the authenticator do the ceremony, and the answer goes back
// in an ordinary same-origin form post, so the rest of the flow (cookies,
// redirects, error pages) is the server's, exactly as with a password.
// The script holds no secret: the private key never leaves the
// authenticator, and each challenge is good for one answer on this site.
//
// Buttons opt in with data-passkey="login" | "mfa" | "step-up" |
// "register" | "enrol" (a first factor at sign-in) and data-next; boxes marked data-passkey-box are shown only
// when the browser supports passkeys.

const flows = {
  login: { options: '/login/passkey/options', action: '/login/passkey', get: true },
  mfa: { options: '/login/mfa/webauthn/options', action: '/login/mfa/webauthn', get: true },
  'step-up': { options: '/account/step-up/webauthn/options', action: '/account/step-up/webauthn', get: true },
  register: { options: '/account/passkeys/options', action: '/account/passkeys', get: false },
  enrol: { options: '/login/enrol/passkey/options', action: '/login/enrol/passkey', get: false },
};

export function toBase64url(buf) {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64url(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
  return out.buffer;
}

function descriptors(list) {
  return (list || []).map((c) => Object.assign({}, c, { id: fromBase64url(c.id) }));
}

// creationOptions and requestOptions turn the server's JSON into what
// navigator.credentials.create and .get take.
export function creationOptions(json) {
  const o = Object.assign({}, json.publicKey);
  o.challenge = fromBase64url(o.challenge);
  o.user = Object.assign({}, o.user, { id: fromBase64url(o.user.id) });
  o.excludeCredentials = descriptors(o.excludeCredentials);
  return o;
}

export function requestOptions(json) {
  const o = Object.assign({}, json.publicKey);
  o.challenge = fromBase64url(o.challenge);
  if (o.allowCredentials) { o.allowCredentials = descriptors(o.allowCredentials); }
  return o;
}

// credentialJSON is the browser's answer in the JSON form the server reads.
export function credentialJSON(cred) {
  const r = cred.response;
  const out = {
    id: cred.id,
    rawId: toBase64url(cred.rawId),
    type: cred.type,
    clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    response: { clientDataJSON: toBase64url(r.clientDataJSON) },
  };
  if (cred.authenticatorAttachment) { out.authenticatorAttachment = cred.authenticatorAttachment; }
  if (r.attestationObject) {
    out.response.attestationObject = toBase64url(r.attestationObject);
    out.response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    out.response.authenticatorData = toBase64url(r.authenticatorData);
    out.response.signature = toBase64url(r.signature);
    if (r.userHandle) { out.response.userHandle = toBase64url(r.userHandle); }
  }
  return JSON.stringify(out);
}

function showError(msg) {
  const el = document.getElementById('passkey-error');
  if (el) {
    el.textContent = msg;
    el.hidden = false;
  } else {
    window.alert(msg);
  }
}

// post submits fields to action as a form, so the server answers with a
// page (or a redirect) as it does for every other sign-in step.
function post(action, fields) {
  const form = document.createElement('form');
  form.method = 'post';
  form.action = action;
  form.hidden = true;
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = name;
    input.value = value;
    form.append(input);
  }
  document.body.append(form);
  form.submit();
}

async function run(button) {
  const flow = flows[button.dataset.passkey];
  if (!flow) { return; }
  const next = button.dataset.next || '';
  const resp = await fetch(flow.options, {
    method: 'POST', credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' },
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const code = body.error && body.error.code;
    if (code === 'step_up') {
      window.location.assign('/account/step-up?next=' + encodeURIComponent(window.location.pathname));
      return;
    }
    if (resp.status === 404) { throw new Error('Passkeys are not available on this server.'); }
    throw new Error((body.error && body.error.message) || 'Something went wrong; please try again.');
  }
  let cred;
  try {
    cred = flow.get
      ? await navigator.credentials.get({ publicKey: requestOptions(body) })
      : await navigator.credentials.create({ publicKey: creationOptions(body) });
  } catch (e) {
    if (e && e.name === 'InvalidStateError') { throw new Error('This passkey is already registered.'); }
    throw new Error('No passkey was used. You can try again.');
  }
  if (!cred) { throw new Error('No passkey was used. You can try again.'); }
  const fields = { credential: credentialJSON(cred), next: next };
  if (button.dataset.passkey === 'register' || button.dataset.passkey === 'enrol') {
    const nick = document.getElementById('passkey-nickname');
    fields.nickname = nick ? nick.value : '';
  }
  if (button.dataset.passkey === 'step-up') {
    const pw = document.getElementById('password');
    if (pw) { fields.password = pw.value; }
  }
  post(flow.action, fields);
}

function init() {
  const supported = typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;
  for (const box of document.querySelectorAll('[data-passkey-box]')) { box.hidden = !supported; }
  for (const button of document.querySelectorAll('button[data-passkey]')) {
    button.addEventListener('click', () => {
      if (button.disabled) { return; }
      button.disabled = true;
      run(button).catch((e) => showError(e.message)).finally(() => { button.disabled = false; });
    });
  }
}

init();

// visit_api.js — the visit pages' calls to Haven's JSON API: same origin,
// the session cookie, no caching. An error carries the API's code and its
// client-safe message, never anything the page did not already know. It
// also holds the one way the pages show a message (as text).

export class APIError extends Error {
  constructor(status, code, message) {
    super(message || 'The request failed.');
    this.status = status;
    this.code = code || '';
  }
}

// api calls path; a body, if given, is sent as JSON.
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    throw new APIError(0, 'network', 'The network is not reachable.');
  }
  let answer = null;
  if (r.status !== 204) {
    try { answer = await r.json(); } catch (e) { answer = null; }
  }
  if (!r.ok) {
    const err = answer && answer.error ? answer.error : {};
    throw new APIError(r.status, err.code, err.message);
  }
  return answer;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// signedOut sends the browser to sign in again when the session has ended.
export function signedOut(err) {
  if (err && err.status === 401) {
    window.location.assign('/login?ended=1');
    return true;
  }
  return false;
}

// messageItem renders one waiting-room message as a list item: who wrote
// it (from, as the page names them), when (the sent time as the page
// shows it) and what. Every part goes in as text: a message is whatever
// someone typed, and must never become markup.
export function messageItem(m, from, when) {
  const li = document.createElement('li');
  li.dataset.message = m.id;
  if (m.from_patient) { li.className = 'mine'; }
  const who = document.createElement('span');
  who.className = 'from';
  who.textContent = from;
  const at = document.createElement('time');
  at.className = 'when';
  at.dateTime = m.sent_at;
  at.textContent = when;
  const body = document.createElement('span');
  body.className = 'body';
  body.textContent = m.body;
  li.append(who, at, body);
  return li;
}

// visit_api.js — the visit pages' calls to Haven's JSON API: same origin,
// the session cookie, no caching. An error carries the API's code and its
// client-safe message, never anything the page did not already know.

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

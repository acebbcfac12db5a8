// visit_waiting.js — the clinician's live queue: who is waiting and since
// when, refreshed every few seconds, with admit, remove (cancel), join and
// end. Admitting needs a fresh sign-in (step-up); the API says so and the
// page goes to the step-up page, which returns here. Names are written
// with textContent, never as HTML.
import { api, signedOut } from './visit_api.js';
import { localTime } from './visit_time.js';

const root = document.getElementById('waiting-room');
const body = document.getElementById('queue');
const empty = document.getElementById('queue-empty');
const status = document.getElementById('queue-status');
const REFRESH_MS = 5000;
let timer = 0;

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

function since(iso, now) {
  if (!iso) { return ''; }
  const mins = Math.max(0, Math.round((now - new Date(iso)) / 60000));
  return `${localTime(iso)} (${mins} min)`;
}

function button(label, id, cls, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.id = id;
  if (cls) { b.className = cls; }
  b.addEventListener('click', onClick);
  return b;
}

// confirmed runs act on the second click, so a slip does not remove a
// patient or end a visit.
function confirmed(b, label, act) {
  return () => {
    if (b.dataset.armed) { act(); return; }
    b.dataset.armed = '1';
    b.textContent = label;
    setTimeout(() => { delete b.dataset.armed; b.textContent = b.dataset.label; }, 4000);
  };
}

async function act(method, path, then) {
  try {
    await api(method, path);
    then();
  } catch (e) {
    if (signedOut(e)) { return; }
    if (e.code === 'step_up') {
      window.location.assign(root.dataset.stepUp);
      return;
    }
    status.textContent = e.message;
    refresh();
  }
}

function row(v, now) {
  const tr = document.createElement('tr');
  tr.dataset.visit = v.id;
  tr.dataset.state = v.state;
  tr.append(cell(v.patient_name), cell(localTime(v.start)), cell(since(v.checked_in_at, now)), cell(v.reason), cell(v.state === 'waiting' ? 'waiting' : 'in call'));
  const actions = document.createElement('td');
  actions.className = 'actions';
  if (v.state === 'waiting') {
    actions.append(button('Admit', 'admit-' + v.id, '', () => act('POST', `/api/v1/visits/${v.id}/admit`, () => window.location.assign(`/app/visits/${v.id}/call`))));
    const rm = button('Remove', 'remove-' + v.id, 'danger', null);
    rm.dataset.label = 'Remove';
    rm.addEventListener('click', confirmed(rm, 'Confirm remove', () => act('POST', `/api/v1/visits/${v.id}/cancel`, refresh)));
    actions.append(rm);
  } else {
    const join = document.createElement('a');
    join.className = 'button';
    join.href = `/app/visits/${v.id}/call`;
    join.id = 'join-' + v.id;
    join.textContent = 'Join the call';
    const end = button('End visit', 'end-' + v.id, 'danger', null);
    end.dataset.label = 'End visit';
    end.addEventListener('click', confirmed(end, 'Confirm end', () => act('POST', `/api/v1/visits/${v.id}/end`, refresh)));
    actions.append(join, ' ', end);
  }
  tr.append(actions);
  return tr;
}

async function refresh() {
  clearTimeout(timer);
  try {
    const r = await api('GET', '/api/v1/waiting-room');
    const now = new Date(r.now);
    body.replaceChildren(...r.visits.map((v) => row(v, now)));
    empty.hidden = r.visits.length > 0;
    root.dataset.count = String(r.visits.length);
    root.dataset.loaded = '1';
  } catch (e) {
    if (signedOut(e)) { return; }
    status.textContent = e.message;
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

refresh();

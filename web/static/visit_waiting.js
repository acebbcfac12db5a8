// visit_waiting.js — the clinician's live queue: who is waiting and since
// when, refreshed every few seconds, with admit, remove (cancel), join and
// end, and a short message to a waiting patient. Admitting needs a fresh
// sign-in (step-up); the API says so and the page goes to the step-up
// page, which returns here. Names, reasons and messages are written with
// textContent, never as HTML. Rows are updated in place, so a refresh
// never takes away a message being typed.
import { api, messageItem, signedOut } from './visit_api.js';
import { localTime } from './visit_time.js';

const root = document.getElementById('waiting-room');
const body = document.getElementById('queue');
const empty = document.getElementById('queue-empty');
const status = document.getElementById('queue-status');
const REFRESH_MS = 5000;
let timer = 0;
const rows = new Map(); // visit id -> { tr, state, cells, thread }

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
  if (onClick) { b.addEventListener('click', onClick); }
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

// --- messages to a waiting patient ---------------------------------------------

// threadItem renders one message of a visit's thread, the patient's under
// their name.
function threadItem(m, patientName) {
  const from = m.from_patient ? (patientName || 'The patient') : (m.sender_name || 'The practice');
  return messageItem(m, from, localTime(m.sent_at));
}

// loadThread shows a visit's messages under its row (the read is audited).
async function loadThread(r) {
  try {
    const answer = await api('GET', `/api/v1/threads/${r.id}`);
    r.thread.list.replaceChildren(...answer.messages.map((m) => threadItem(m, r.name)));
    r.thread.shown = answer.messages.length;
    r.thread.list.hidden = false;
  } catch (e) {
    if (signedOut(e)) { return; }
    r.thread.note.textContent = e.message;
  }
}

function messageCell(r) {
  const td = document.createElement('td');
  td.className = 'message';
  const form = document.createElement('form');
  form.className = 'message';
  form.id = 'message-form-' + r.id;
  const input = document.createElement('input');
  input.type = 'text';
  input.id = 'message-' + r.id;
  input.maxLength = 500;
  input.required = true;
  input.autocomplete = 'off';
  input.placeholder = 'e.g. running 10 minutes late';
  input.setAttribute('aria-label', 'Message to the waiting patient');
  const send = document.createElement('button');
  send.type = 'submit';
  send.id = 'send-' + r.id;
  send.textContent = 'Send';
  form.append(input, send);
  const toggle = button('Messages', 'thread-' + r.id, 'thread', null);
  const note = document.createElement('span');
  note.setAttribute('role', 'status');
  note.id = 'message-status-' + r.id;
  const list = document.createElement('ol');
  list.className = 'messages';
  list.id = 'thread-list-' + r.id;
  list.hidden = true;
  r.thread = { toggle, note, list, count: 0, shown: -1, open: false };
  toggle.addEventListener('click', () => {
    r.thread.open = !r.thread.open;
    if (r.thread.open) { loadThread(r); } else { list.hidden = true; }
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) { return; }
    send.disabled = true;
    try {
      await api('POST', `/api/v1/threads/${r.id}/messages`, { body: text });
      input.value = '';
      note.textContent = 'Sent.';
      setCount(r, r.thread.count + 1);
    } catch (e) {
      if (signedOut(e)) { return; }
      note.textContent = e.message;
    } finally {
      send.disabled = false;
    }
  });
  td.append(form, toggle, ' ', note, list);
  return td;
}

function setCount(r, n) {
  r.thread.count = n;
  r.thread.toggle.textContent = n ? `Messages (${n})` : 'Messages';
  r.tr.dataset.messages = String(n);
  if (r.thread.open && n !== r.thread.shown) { loadThread(r); }
}

// --- the queue -------------------------------------------------------------------

function newRow(v) {
  const tr = document.createElement('tr');
  tr.dataset.visit = v.id;
  tr.dataset.state = v.state;
  const r = { id: v.id, tr, state: v.state, name: v.patient_name, cells: [cell(''), cell(''), cell(''), cell(''), cell('')] };
  tr.append(...r.cells);
  if (v.state === 'waiting') {
    tr.append(messageCell(r));
  } else {
    tr.append(cell(''));
  }
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
  return r;
}

// update writes v's current values into its row's text cells.
function update(r, v, now) {
  r.name = v.patient_name;
  const texts = [v.patient_name, localTime(v.start), since(v.checked_in_at, now), v.reason, v.state === 'waiting' ? 'waiting' : 'in call'];
  texts.forEach((t, i) => { if (r.cells[i].textContent !== t) { r.cells[i].textContent = t; } });
  if (r.thread && r.thread.count !== (v.messages || 0)) { setCount(r, v.messages || 0); }
}

function render(visits, now) {
  const keep = new Set();
  const order = [];
  for (const v of visits) {
    let r = rows.get(v.id);
    if (r && r.state !== v.state) {
      r.tr.remove();
      r = null;
    }
    if (!r) {
      r = newRow(v);
      rows.set(v.id, r);
    }
    update(r, v, now);
    keep.add(v.id);
    order.push(r.tr);
  }
  for (const [id, r] of rows) {
    if (!keep.has(id)) {
      r.tr.remove();
      rows.delete(id);
    }
  }
  // Insert only what is out of place: a row that stays is never moved, so
  // its input keeps focus and what is typed in it.
  order.forEach((tr, i) => {
    if (body.children[i] !== tr) { body.insertBefore(tr, body.children[i] || null); }
  });
}

async function refresh() {
  clearTimeout(timer);
  try {
    const r = await api('GET', '/api/v1/waiting-room');
    const now = new Date(r.now);
    render(r.visits, now);
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

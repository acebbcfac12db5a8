// messages.js — keeps a conversation page, a patient's list of
// conversations and the practice's inbox current while they are open,
// without a reload. One long request at a time asks the server whether
// anything changed since the stamp the page shows (it answers at once
// when something did, or after a while with the same stamp); when
// something did, the page reads the thread or the list again through the
// API (each read is audited, as the first was) and redraws that part
// alone, so a reply being typed is never lost. Everything anyone wrote
// goes in as text (textContent), never as markup.
import { api, sleep, signedOut } from './visit_api.js';

const thread = document.getElementById('thread');
const list = document.getElementById('threads');
const when = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
});

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) { e.textContent = text; }
  if (cls) { e.className = cls; }
  return e;
}

// size says a file's size as the page's server does (pages.go fileSize).
function size(n) {
  if (n >= 1 << 20) { return `${(n / (1 << 20)).toFixed(1)} MB`; }
  if (n >= 1 << 10) { return `${Math.floor((n + 1023) / 1024)} KB`; }
  return `${n} bytes`;
}

function at(iso) {
  return when.format(new Date(iso));
}

// follow watches path from the page's stamp and calls refresh when the
// stamp moves; refresh redraws and returns the stamp of what it drew.
async function follow(root, path, refresh, status) {
  let since = Number(root.dataset.changed || 0);
  let failures = 0;
  for (;;) {
    let r;
    try {
      r = await api('GET', `${path}${path.includes('?') ? '&' : '?'}since=${since}`);
      failures = 0;
    } catch (e) {
      if (signedOut(e)) { return; }
      if (e.status === 403 || e.status === 404) {
        status.textContent = 'This is no longer open to you. Reload the page to see why.';
        return;
      }
      failures++;
      status.textContent = 'Reconnecting…';
      await sleep(Math.min(10000, 1000 * failures));
      continue;
    }
    if (r.changed === since) { continue; }
    try {
      since = await refresh();
      root.dataset.changed = String(since);
      status.textContent = '';
    } catch (e) {
      if (signedOut(e)) { return; }
      status.textContent = e.message;
      since = r.changed;
      await sleep(2000);
    }
  }
}

// --- one conversation -------------------------------------------------------

function fromOf(m, page, me, staff) {
  if (m.sender_id === me) { return 'You'; }
  if (m.from_patient) { return staff ? (page.thread.patient_name || 'The patient') : 'You'; }
  return m.sender_name || 'The practice';
}

function messageLine(m, page, me, staff) {
  const li = el('li');
  li.dataset.message = m.id;
  if (m.sender_id === me) { li.className = 'mine'; }
  const t = el('time', at(m.sent_at), 'when');
  t.dateTime = m.sent_at;
  li.append(el('span', fromOf(m, page, me, staff), 'from'), t, el('span', m.body, 'body'));
  if (m.attachments && m.attachments.length) {
    const ul = el('ul', undefined, 'attachments');
    for (const a of m.attachments) {
      const item = el('li');
      if (a.hidden) {
        item.textContent = 'A file is attached (your role does not open files).';
      } else {
        const link = el('a', undefined, 'attachment');
        link.href = `/app/files/${encodeURIComponent(a.file_id)}`;
        link.dataset.file = a.file_id;
        if (a.thumbnail) {
          const img = el('img', undefined, 'thumb');
          img.src = `/api/v1/files/${encodeURIComponent(a.file_id)}/renditions/thumbnail`;
          img.alt = '';
          link.append(img);
        }
        link.append(a.name);
        item.append(link, ' ', el('span', `(${size(a.size)})`, 'hint'));
      }
      ul.append(item);
    }
    li.append(ul);
  }
  return li;
}

if (thread) {
  const id = thread.dataset.thread;
  const me = thread.dataset.me;
  const staff = thread.dataset.patient !== me;
  const ol = document.getElementById('thread-messages');
  const none = document.getElementById('no-messages');
  const status = document.getElementById('thread-status');
  const state = document.getElementById('thread-state');
  const assignee = document.getElementById('thread-assignee');
  const reply = document.getElementById('reply');
  const redraw = async () => {
    const page = await api('GET', `/api/v1/threads/${encodeURIComponent(id)}`);
    const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    ol.replaceChildren(...page.messages.map((m) => messageLine(m, page, me, staff)));
    none.hidden = page.messages.length > 0;
    if (state) { state.textContent = page.thread.done ? 'Done' : 'Open'; }
    if (assignee) { assignee.textContent = page.thread.assignee_name || 'Nobody yet'; }
    if (reply && !page.can_reply) { reply.hidden = true; }
    thread.dataset.count = String(page.messages.length);
    if (atBottom && page.messages.length) { ol.lastElementChild.scrollIntoView({ block: 'nearest' }); }
    return page.thread.changed;
  };
  thread.dataset.count = String(ol.children.length);
  follow(thread, `/api/v1/threads/${encodeURIComponent(id)}/watch`, redraw, status);
}

// --- a list of conversations ------------------------------------------------

const audience = {
  patient: { care_team: 'your care team', front_desk: 'the front desk', visit: 'your care team, in the waiting room' },
  inbox: { care_team: 'Care team', front_desk: 'Front desk', visit: 'Waiting room' },
};

function cell(label, content) {
  const td = el('td');
  td.dataset.label = label;
  if (content instanceof Node) { td.append(content); } else if (content) { td.textContent = content; }
  return td;
}

function row(t, kind) {
  const tr = el('tr');
  tr.dataset.thread = t.id;
  if (t.unread) { tr.className = 'unread'; }
  const link = el('a');
  link.href = `/app/messages/${encodeURIComponent(t.id)}`;
  link.id = `thread-${t.id}`;
  if (kind === 'inbox') {
    link.textContent = t.visit_id ? 'Waiting room' : t.subject;
    tr.append(cell('Patient', t.patient_name), cell('Conversation', link), cell('To', audience.inbox[t.audience] || ''),
      cell('Given to', t.assignee_name || 'Nobody yet'), cell('Last message', at(t.last_at) + (t.last_from_patient ? ' (the patient)' : '')));
  } else {
    link.textContent = t.visit_id ? `Waiting room: your visit of ${at(t.visit_start)}` : t.subject;
    tr.append(cell('Conversation', link), cell('With', audience.patient[t.audience] || ''),
      cell('Last message', at(t.last_at) + (t.last_from_patient ? ' (you)' : '')));
  }
  tr.append(cell('New', t.unread ? el('span', `${t.unread} new`, 'badge') : ''));
  return tr;
}

if (list) {
  const kind = list.dataset.list;
  const rows = document.getElementById('thread-rows');
  const table = document.getElementById('thread-list');
  const none = document.getElementById('no-threads');
  const status = document.getElementById('threads-status');
  const query = new URLSearchParams();
  if (kind === 'inbox') {
    query.set('view', list.dataset.view || 'open');
    const after = new URLSearchParams(window.location.search).get('after');
    if (after) { query.set('after', after); }
  }
  const redraw = async () => {
    const answer = await api('GET', `/api/v1/threads${kind === 'inbox' ? '?' + query.toString() : ''}`);
    rows.replaceChildren(...answer.threads.map((t) => row(t, kind)));
    table.hidden = answer.threads.length === 0;
    none.hidden = answer.threads.length > 0;
    list.dataset.count = String(answer.threads.length);
    return answer.changed;
  };
  list.dataset.count = String(rows.children.length);
  follow(list, '/api/v1/threads/watch', redraw, status);
}

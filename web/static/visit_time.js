// visit_time.js — shows the server's UTC times in the browser's own time
// zone. The server does not know where the patient is; the page does.
const long = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });

export function localTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : long.format(d);
}

for (const el of document.querySelectorAll('time[datetime]')) {
  el.textContent = localTime(el.getAttribute('datetime'));
}
for (const el of document.querySelectorAll('option[data-time]')) {
  el.textContent = localTime(el.dataset.time);
}

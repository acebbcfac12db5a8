// export.js — "Download my record": fetches the zip as the server streams
// it and shows how far it has come (against the server's estimate of its
// size), then hands it to the browser as a download. When the server asks
// for a fresh sign-in first (step_up), the page goes to the step-up page,
// which brings the patient back here.
const box = document.getElementById('export-box');
const start = document.getElementById('export-start');
const status = document.getElementById('export-status');
const bar = document.getElementById('export-progress');

const mib = (n) => (n / 1048576).toFixed(1) + ' MB';

async function download() {
  start.disabled = true;
  status.textContent = 'Preparing your record…';
  let r;
  try {
    r = await fetch('/api/v1/patients/' + encodeURIComponent(box.dataset.patient) + '/export',
      { credentials: 'same-origin', cache: 'no-store' });
  } catch (e) {
    status.textContent = 'The network is not reachable. Try again.';
    start.disabled = false;
    return;
  }
  if (!r.ok) {
    let code = '', message = 'The download did not start. Try again.';
    try {
      const a = await r.json();
      code = a.error.code;
      message = a.error.message || message;
    } catch (e) { /* not JSON */ }
    if (code === 'step_up') {
      location.assign('/account/step-up?next=' + encodeURIComponent('/app/export'));
      return;
    }
    if (r.status === 401) {
      location.assign('/login?next=' + encodeURIComponent('/app/export'));
      return;
    }
    status.textContent = message;
    start.disabled = false;
    return;
  }
  const size = Number(r.headers.get('X-Record-Size')) || 0;
  const reader = r.body.getReader();
  const chunks = [];
  let got = 0;
  bar.hidden = false;
  for (;;) {
    let part;
    try {
      part = await reader.read();
    } catch (e) {
      status.textContent = 'The download was cut short. Try again.';
      start.disabled = false;
      return;
    }
    if (part.done) break;
    chunks.push(part.value);
    got += part.value.length;
    const pct = size > 0 ? Math.min(99, Math.floor((got * 100) / size)) : 0;
    bar.value = pct;
    bar.textContent = pct + '%';
    status.textContent = 'Downloading: ' + mib(got) + (size > 0 ? ' of about ' + mib(size) : '') + '…';
  }
  bar.value = 100;
  bar.textContent = '100%';
  const url = URL.createObjectURL(new Blob(chunks, { type: 'application/zip' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = 'health-record.zip';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  status.textContent = 'Your record is downloaded (' + mib(got) + '): health-record.zip.';
  start.disabled = false;
}

if (box && start) start.addEventListener('click', download);

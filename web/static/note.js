// note.js — saves a visit note's draft as its clinician types: a
// moment after she stops (and when she leaves the field), the form's
// four parts go to the API as JSON. The form still works without it (its
// Save button posts the page). The status line says what happened, in
// words; the note's text is never put anywhere but the API call.

import { api, signedOut } from '/static/visit_api.js';

const quiet = 800; // ms after the last keystroke

function start(form) {
  const path = form.dataset.autosave;
  const status = form.querySelector('[role=status]');
  const fields = ['subjective', 'objective', 'assessment', 'plan'];
  let timer = 0;
  let saving = Promise.resolve();
  let last = '';
  const body = () => Object.fromEntries(fields.map((f) => [f, form.elements[f].value]));
  const say = (text) => { if (status) { status.textContent = text; } };

  async function save() {
    clearTimeout(timer);
    const b = body();
    const key = JSON.stringify(b);
    if (key === last) { return; }
    say('Saving…');
    try {
      await api('PUT', path, b);
      last = key;
      const t = new Date();
      say('Saved at ' + t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) + '.');
      form.dataset.saved = String(Number(form.dataset.saved || 0) + 1);
    } catch (err) {
      if (signedOut(err)) { return; }
      say('Not saved: ' + err.message);
    }
  }
  last = JSON.stringify(body());
  form.addEventListener('input', () => {
    clearTimeout(timer);
    say('Changes not saved yet…');
    timer = setTimeout(() => { saving = saving.then(save); }, quiet);
  });
  form.addEventListener('focusout', () => { saving = saving.then(save); });
}

document.querySelectorAll('form[data-autosave]').forEach(start);

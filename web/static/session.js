// session.js — the idle warning. Shortly before the server will end an
// idle session, it removes the page's content (so no health information
// stays on an unattended screen), says the session is about to end, and
// offers to stay signed in. The server enforces the timeout whatever this
// script does; the script only makes the ending visible and private.
(function () {
  'use strict';
  var body = document.body;
  var warnTimer = null, endTimer = null, tick = null;

  function clearTimers() {
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    clearInterval(tick);
  }

  function ended() {
    clearTimers();
    var main = document.querySelector('main');
    if (main) { main.replaceChildren(); }
    window.location.assign('/login?ended=1');
  }

  // schedule arms the timers from seconds-until-warning and -end.
  function schedule(warnIn, endIn) {
    clearTimers();
    if (!(endIn > 0)) { ended(); return; }
    warnTimer = setTimeout(check, Math.max(0, warnIn) * 1000);
    endTimer = setTimeout(ended, endIn * 1000);
  }

  // check asks the server (without counting as activity) how long is
  // left: another tab may have kept the session alive.
  function check() {
    fetch('/api/v1/session/status', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { if (!r.ok) { throw new Error('ended'); } return r.json(); })
      .then(function (s) {
        if (s.warn_in > 5) { schedule(s.warn_in, s.expires_in); return; }
        warn(s.expires_in);
      })
      .catch(ended);
  }

  function warn(endIn) {
    var main = document.querySelector('main');
    if (main) { main.replaceChildren(); }
    document.title = 'Your session is about to end · Haven';
    var box = document.createElement('section');
    box.className = 'card session-warning';
    box.setAttribute('role', 'alertdialog');
    box.setAttribute('aria-labelledby', 'session-warning-title');
    var h = document.createElement('h1');
    h.id = 'session-warning-title';
    h.textContent = 'Your session is about to end';
    var p = document.createElement('p');
    p.id = 'session-warning-countdown';
    var left = endIn;
    function show() { p.textContent = 'For your privacy, this page was cleared. You will be signed out in ' + left + ' seconds.'; }
    show();
    tick = setInterval(function () { left = Math.max(0, left - 1); show(); }, 1000);
    var b = document.createElement('button');
    b.type = 'button';
    b.id = 'stay-signed-in';
    b.textContent = 'Stay signed in';
    b.addEventListener('click', function () {
      b.disabled = true;
      fetch('/api/v1/session/keepalive', { method: 'POST', credentials: 'same-origin', cache: 'no-store' })
        .then(function (r) { if (!r.ok) { throw new Error('ended'); } window.location.reload(); })
        .catch(ended);
    });
    box.append(h, p, b);
    if (main) { main.append(box); } else { body.append(box); }
    clearTimeout(endTimer);
    endTimer = setTimeout(ended, endIn * 1000);
    b.focus();
  }

  var warnIn = parseInt(body.dataset.sessionWarn, 10);
  var endIn = parseInt(body.dataset.sessionEnd, 10);
  if (isNaN(endIn)) {
    // A page that did not say: ask.
    fetch('/api/v1/session/status', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) { schedule(s.warn_in, s.expires_in); } });
  } else {
    schedule(warnIn, endIn);
  }
}());

// haven.js — on every page. It tells the server the browser's own time
// zone, in a cookie that holds only the zone's name (__Host-tz), so the
// pages show times where the reader is, with the zone named. Nothing else
// is sent, and a page works without it: times are then shown in UTC,
// still named.
(function () {
  'use strict';
  var tz = '';
  try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { return; }
  if (!/^[A-Za-z0-9_\/+-]{1,64}$/.test(tz)) { return; }
  var have = document.cookie.split('; ').some(function (c) { return c === '__Host-tz=' + tz; });
  if (!have) {
    document.cookie = '__Host-tz=' + tz + '; Path=/; Secure; SameSite=Lax; Max-Age=31536000';
  }
}());

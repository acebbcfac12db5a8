// codes.js — the recovery codes page's print button. It is shown only
// where this script runs; the download link and the list work without it.
const print = document.getElementById('print-codes');
if (print) {
  print.hidden = false;
  print.addEventListener('click', () => window.print());
}

// disclosures.js — the accounting page's print button. It is shown only
// where this script runs; the page prints from the browser's menu too.
const print = document.getElementById('print-disclosures');
if (print) {
  print.hidden = false;
  print.addEventListener('click', () => window.print());
}

// Checks, in the patient's own browser, that every line of their access
// history is in the practice's audit log: the RFC 6962 inclusion proof of
// each event leads to the root hash of a checkpoint signed with the log's
// Ed25519 key. The server cannot show a patient a history that differs from
// the log everyone else (auditors, the witness) sees without failing here.

const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
};
const sha256 = async (b) => new Uint8Array(await crypto.subtle.digest("SHA-256", b));
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// RFC 9162 section 2.1.3.2: verify an inclusion proof.
async function rootFromProof(leaf, index, size, proof) {
  if (index >= size) return null;
  let fn = index, sn = size - 1, r = leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if ((fn & 1) === 1 || fn === sn) {
      r = await sha256(concat([1], p, r));
      if ((fn & 1) === 0) {
        while ((fn & 1) === 0 && fn !== 0) { fn >>= 1; sn >>= 1; }
      }
    } else {
      r = await sha256(concat([1], r, p));
    }
    fn >>= 1; sn >>= 1;
  }
  return sn === 0 ? r : null;
}

// Verifies the signed note's Ed25519 signature with the verifier key
// "name+hash+base64(0x01||publickey)". Returns true, false, or null when
// this browser cannot verify Ed25519.
async function signatureOK(note, vkey) {
  const [body, sigs] = note.split("\n\n");
  // name+hash+base64(key): the name has no "+", but the base64 may.
  const i = vkey.indexOf("+"), j = vkey.indexOf("+", i + 1);
  if (i < 0 || j < 0 || !sigs) return false;
  const parts = [vkey.slice(0, i), vkey.slice(i + 1, j), vkey.slice(j + 1)];
  const key = b64(parts[2]);
  if (key[0] !== 1) return false;
  const line = sigs.split("\n").find((l) => l.startsWith("\u2014 " + parts[0] + " "));
  if (!line) return false;
  const sig = b64(line.split(" ")[2]).slice(4);
  try {
    const pub = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, pub, sig, new TextEncoder().encode(body + "\n"));
  } catch (e) {
    return null;
  }
}

async function check() {
  const box = document.getElementById("history-box");
  const status = document.getElementById("proof-status");
  const note = document.getElementById("checkpoint").textContent;
  const size = Number(box.dataset.size);
  const root = b64(note.split("\n")[2]);
  const sig = await signatureOK(note, box.dataset.key);
  let good = 0, bad = 0;
  for (const row of document.querySelectorAll("table.history tbody tr")) {
    const cell = row.querySelector(".proof");
    const leaf = await sha256(concat([0], b64(row.dataset.canonical)));
    const proof = row.dataset.proof ? row.dataset.proof.split(",").map(b64) : [];
    const got = await rootFromProof(leaf, Number(row.dataset.seq), size, proof);
    const ok = got !== null && equal(got, root);
    cell.textContent = ok ? "\u2713 in log" : "\u2717 NOT in log";
    cell.classList.add(ok ? "ok" : "bad");
    ok ? good++ : bad++;
  }
  const sigText = sig === true ? "checkpoint signature valid" : sig === false ? "CHECKPOINT SIGNATURE INVALID" : "signature not checkable in this browser";
  status.textContent = `${good} of ${good + bad} entries proven in the log of size ${size}; ${sigText}.`;
  status.dataset.result = bad === 0 && sig !== false ? "ok" : "bad";
}

check();

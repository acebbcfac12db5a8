package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"haven"

	"golang.org/x/mod/sumdb/note"
)

// Signed-note key algorithms (c2sp.org/signed-note): a plain Ed25519
// signature over the note text, and a timestamped witness cosignature
// (c2sp.org/tlog-cosignature).
const (
	algEd25519     = 1
	algCosignature = 4
)

// keyHash is the signed-note key id: the first four bytes of
// SHA-256(name || "\n" || algorithm || public key).
func keyHash(name string, alg byte, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', alg})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// edKey signs or verifies under one signed-note key name. One audit key
// signs every log's checkpoints, each under a name equal to that log's
// origin (c2sp.org/tlog-checkpoint: "the log's key name SHOULD match the
// origin line", and witnesses such as litewitness require it), so the same
// Ed25519 key appears under one name per log.
type edKey struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey // nil for a verifier
}

func newEdKey(name string, pub ed25519.PublicKey, priv ed25519.PrivateKey) *edKey {
	return &edKey{name: name, hash: keyHash(name, algEd25519, pub), pub: pub, priv: priv}
}

func (k *edKey) Name() string                    { return k.name }
func (k *edKey) KeyHash() uint32                 { return k.hash }
func (k *edKey) Verify(msg, sig []byte) bool     { return ed25519.Verify(k.pub, msg, sig) }
func (k *edKey) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

// cosignatureKey verifies a witness's cosignature/v1: an Ed25519 signature
// over "cosignature/v1\ntime <unix seconds>\n" followed by the checkpoint,
// encoded as the 8-byte timestamp then the signature.
type cosignatureKey struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

func (k *cosignatureKey) Name() string    { return k.name }
func (k *cosignatureKey) KeyHash() uint32 { return k.hash }
func (k *cosignatureKey) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n", binary.BigEndian.Uint64(sig))
	return ed25519.Verify(k.pub, append(m, msg...), sig[8:])
}

// parseVKey splits a signed-note verifier key "name+hash+base64(alg||key)"
// and checks its hash.
func parseVKey(vkey string) (name string, alg byte, pub []byte, err error) {
	bad := haven.Errorf(haven.EINVALID, "malformed verifier key")
	name, rest, ok1 := strings.Cut(strings.TrimSpace(vkey), "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	hash, err1 := strconv.ParseUint(hash16, 16, 32)
	raw, err2 := base64.StdEncoding.DecodeString(key64)
	if !ok1 || !ok2 || len(hash16) != 8 || err1 != nil || err2 != nil || len(raw) < 2 || !validKeyName(name) {
		return "", 0, nil, bad
	}
	if uint32(hash) != keyHash(name, raw[0], raw[1:]) {
		return "", 0, nil, bad
	}
	return name, raw[0], raw[1:], nil
}

// ParseWitnessKey reads a witness's verifier key: a cosignature/v1 key (as
// litewitness and the public witness network use) or a plain Ed25519 note
// key.
func ParseWitnessKey(vkey string) (note.Verifier, error) {
	name, alg, pub, err := parseVKey(vkey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, haven.Errorf(haven.EINVALID, "malformed witness verifier key")
	}
	switch alg {
	case algEd25519:
		return newEdKey(name, pub, nil), nil
	case algCosignature:
		return &cosignatureKey{name: name, hash: keyHash(name, algCosignature, pub), pub: pub}, nil
	}
	return nil, haven.Errorf(haven.EINVALID, "witness verifier key of unknown algorithm %d", alg)
}

// publicKey is one Ed25519 audit key as its verifier key names it: name is
// the deployment's key name, the prefix of every origin it signs.
type publicKey struct {
	name string
	pub  ed25519.PublicKey
}

func parseAuditVKey(vkey string) (publicKey, error) {
	name, alg, pub, err := parseVKey(vkey)
	if err != nil || alg != algEd25519 || len(pub) != ed25519.PublicKeySize {
		return publicKey{}, haven.Errorf(haven.EINVALID, "malformed audit verifier key")
	}
	return publicKey{name: name, pub: pub}, nil
}

func (k publicKey) vkey() string {
	s, _ := note.NewEd25519VerifierKey(k.name, k.pub)
	return s
}

// ID is a short, stable name for the key in messages and logs: its note key
// hash under its own name.
func (k publicKey) id() string {
	return fmt.Sprintf("%s+%08x", k.name, keyHash(k.name, algEd25519, k.pub))
}

// LogVerifierKey returns the verifier key under which verifierKey signs
// logID's checkpoints: the same Ed25519 key named after the log's origin.
// It is what a witness is configured with for that log, and what a
// patient's browser checks a checkpoint against.
func LogVerifierKey(verifierKey, logID string) (string, error) {
	k, err := parseAuditVKey(verifierKey)
	if err != nil {
		return "", err
	}
	if !isLogID(logID) {
		return "", haven.Errorf(haven.EINVALID, "audit: bad log id")
	}
	return note.NewEd25519VerifierKey(origin(k.name, logID), k.pub)
}

// Trust is the set of audit keys whose signatures vouch for a deployment's
// logs: the verifier keys an auditor holds (audit.pub) and the keys reached
// from them through recorded key hand-overs. A key that was handed over is
// retired: its signatures count only for the trees it could have signed
// before the hand-over (each log up to the size the hand-over names), so a
// stolen old key cannot vouch for anything appended since.
//
// Trust holds public keys only: checking the log needs nothing secret.
type Trust struct {
	mu    sync.Mutex
	keys  []*trustedKey
	cache map[string]note.Verifiers // per log id
}

type trustedKey struct {
	publicKey
	retired bool
	limits  map[string]uint64 // when retired: the largest size of each log it signed
}

// NewTrust returns the trust anchored in verifierKeys: one or more audit
// verifier keys, one per line (blank lines and lines starting with '#' are
// skipped).
func NewTrust(verifierKeys string) (*Trust, error) {
	t := &Trust{}
	for _, line := range strings.Split(verifierKeys, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := parseAuditVKey(line)
		if err != nil {
			return nil, err
		}
		if t.find(k.pub) == nil {
			t.keys = append(t.keys, &trustedKey{publicKey: k})
		}
	}
	if len(t.keys) == 0 {
		return nil, haven.Errorf(haven.EINVALID, "no audit verifier key given")
	}
	return t, nil
}

func (t *Trust) find(pub ed25519.PublicKey) *trustedKey {
	for _, k := range t.keys {
		if k.pub.Equal(pub) {
			return k
		}
	}
	return nil
}

// VerifierKeys returns every trusted key, one per line, current ones first.
func (t *Trust) VerifierKeys() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var cur, old []string
	for _, k := range t.keys {
		if k.retired {
			old = append(old, k.vkey())
		} else {
			cur = append(cur, k.vkey())
		}
	}
	return strings.Join(append(cur, old...), "\n")
}

// names returns the distinct key names of the trusted keys: the origin
// prefixes their checkpoints may carry.
func (t *Trust) names() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, k := range t.keys {
		if !slices.Contains(out, k.name) {
			out = append(out, k.name)
		}
	}
	return out
}

// Current reports whether the key verifying vkey is trusted and not
// retired: the only kind of key that may sign new entries.
func (t *Trust) Current(vkey string) error {
	k, err := parseAuditVKey(vkey)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tk := t.find(k.pub)
	switch {
	case tk == nil:
		return haven.Errorf(haven.EFORBIDDEN, "audit key %s is not the verifier key given nor handed over from it", k.id())
	case tk.retired:
		return haven.Errorf(haven.EFORBIDDEN, "audit key %s was retired by a key rotation", k.id())
	}
	return nil
}

// verifiers returns the note verifiers of every trusted key for logID's
// checkpoints: each key under the log's origin, and under its bare name as
// checkpoints were signed before origins named their keys.
func (t *Trust) verifiers(logID string) note.Verifiers {
	t.mu.Lock()
	defer t.mu.Unlock()
	if vs, ok := t.cache[logID]; ok {
		return vs
	}
	var list []note.Verifier
	for _, k := range t.keys {
		list = append(list, newEdKey(origin(k.name, logID), k.pub, nil), newEdKey(k.name, k.pub, nil))
	}
	vs := note.VerifierList(list...)
	if t.cache == nil {
		t.cache = map[string]note.Verifiers{}
	}
	t.cache[logID] = vs
	return vs
}

// open checks a signed checkpoint of logID and returns its tree head. One
// of its signatures must be by a trusted key, under the log's origin (or
// the key's bare name with the origin "<name>/<logID>"), and a retired key
// counts only up to the size it was retired at.
func (t *Trust) open(signed []byte, logID string) (TreeHead, error) {
	n, err := note.Open(signed, t.verifiers(logID))
	if err != nil {
		if t.otherLog(signed, logID) {
			return TreeHead{}, haven.Errorf(haven.EINVALID, "audit checkpoint is for another log")
		}
		return TreeHead{}, haven.Wrap(haven.EINVALID, err, "audit checkpoint signature does not verify")
	}
	h, err := ParseTreeHead(n.Text)
	if err != nil {
		return TreeHead{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	otherLog, tooLate := false, false
	for _, sig := range n.Sigs {
		for _, k := range t.keys {
			if sig.Hash != keyHash(sig.Name, algEd25519, k.pub) {
				continue
			}
			if h.Origin != origin(k.name, logID) || (sig.Name != h.Origin && sig.Name != k.name) {
				otherLog = true
				continue
			}
			if k.retired {
				if limit, ok := k.limits[logID]; !ok || h.Size > limit {
					tooLate = true
					continue
				}
			}
			return h, nil
		}
	}
	if tooLate {
		return TreeHead{}, haven.Errorf(haven.EINVALID, "audit checkpoint is signed by a retired key beyond the size it was retired at")
	}
	if otherLog {
		return TreeHead{}, haven.Errorf(haven.EINVALID, "audit checkpoint is for another log")
	}
	return TreeHead{}, haven.Errorf(haven.EINVALID, "audit checkpoint is not signed by a trusted key")
}

// otherLog reports whether signed is a valid checkpoint of a log other
// than logID, so the verifier can say so rather than "does not verify".
func (t *Trust) otherLog(signed []byte, logID string) bool {
	h, err := noteHead(signed)
	if err != nil {
		return false
	}
	for _, name := range t.names() {
		other, ok := strings.CutPrefix(h.Origin, name+"/")
		if ok && other != logID && isLogID(other) {
			if _, err := note.Open(signed, t.verifiers(other)); err == nil {
				return true
			}
		}
	}
	return false
}

// handoverMagic starts every key hand-over note.
const handoverMagic = "haven.audit.key-handover/1"

// Handover is a key rotation as recorded: the retiring key hands the log
// over to its successor at the size each log had reached. Both keys sign
// it, so it can neither be forged by someone holding only the new key nor
// used to retire a key without its successor's consent.
type Handover struct {
	From, To string            // verifier keys
	Sizes    map[string]uint64 // log id -> size at the hand-over
}

func (h Handover) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nfrom %s\nto %s\n", handoverMagic, h.From, h.To)
	ids := make([]string, 0, len(h.Sizes))
	for id := range h.Sizes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Fprintf(&b, "log %s %d\n", id, h.Sizes[id])
	}
	return b.String()
}

// SignHandover returns the hand-over from `from` to `to`, signed by both.
func SignHandover(from, to *Signer, sizes map[string]uint64) ([]byte, error) {
	for id := range sizes {
		if !isLogID(id) {
			return nil, haven.Errorf(haven.EINVALID, "audit: bad log id in hand-over")
		}
	}
	if from.pub.Equal(to.pub) {
		return nil, haven.Errorf(haven.EINVALID, "audit: a key cannot be handed over to itself")
	}
	h := Handover{From: from.VerifierKey(), To: to.VerifierKey(), Sizes: sizes}
	return note.Sign(&note.Note{Text: h.text()}, newEdKey(from.name, from.pub, from.priv), newEdKey(to.name, to.pub, to.priv))
}

// ParseHandover checks a hand-over note's two signatures and returns it.
func ParseHandover(signed []byte) (Handover, error) {
	bad := haven.Errorf(haven.EINVALID, "malformed audit key hand-over")
	text, _, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return Handover{}, bad
	}
	lines := strings.Split(string(text), "\n")
	if len(lines) < 3 || lines[0] != handoverMagic {
		return Handover{}, bad
	}
	from, ok1 := strings.CutPrefix(lines[1], "from ")
	to, ok2 := strings.CutPrefix(lines[2], "to ")
	if !ok1 || !ok2 {
		return Handover{}, bad
	}
	fk, err1 := parseAuditVKey(from)
	tk, err2 := parseAuditVKey(to)
	if err1 != nil || err2 != nil || fk.pub.Equal(tk.pub) {
		return Handover{}, bad
	}
	h := Handover{From: from, To: to, Sizes: map[string]uint64{}}
	for _, l := range lines[3:] {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "log" || !isLogID(f[1]) {
			return Handover{}, bad
		}
		n, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return Handover{}, bad
		}
		h.Sizes[f[1]] = n
	}
	if h.text() != string(text)+"\n" {
		return Handover{}, bad // one meaning, one spelling
	}
	n, err := note.Open(signed, note.VerifierList(newEdKey(fk.name, fk.pub, nil), newEdKey(tk.name, tk.pub, nil)))
	if err != nil || len(n.Sigs) != 2 {
		return Handover{}, haven.Errorf(haven.EINVALID, "audit key hand-over is not signed by both keys")
	}
	return h, nil
}

// AddHandovers extends the trust along recorded hand-overs, in either
// direction: from a trusted key to its successor, and from a trusted key
// back to the key it succeeded (which is then trusted as retired). A
// hand-over that does not verify extends nothing and is skipped. Two
// hand-overs from one key to different successors are a fork of the
// deployment's identity and an error.
func (t *Trust) AddHandovers(notes [][]byte) error {
	var hs []Handover
	for _, b := range notes {
		if h, err := ParseHandover(b); err == nil {
			hs = append(hs, h)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cache = nil
	for _, a := range hs {
		for _, b := range hs {
			if a.From == b.From && a.To != b.To {
				fk, _ := parseAuditVKey(a.From)
				return haven.Errorf(haven.ECONFLICT, "audit key %s was handed over to two different keys", fk.id())
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, h := range hs {
			fk, _ := parseAuditVKey(h.From)
			tk, _ := parseAuditVKey(h.To)
			from, to := t.find(fk.pub), t.find(tk.pub)
			if from == nil && to == nil {
				continue
			}
			if from == nil {
				from = &trustedKey{publicKey: fk}
				t.keys = append(t.keys, from)
				changed = true
			}
			if !from.retired {
				from.retired, from.limits = true, h.Sizes
				changed = true
			}
			if to == nil {
				t.keys = append(t.keys, &trustedKey{publicKey: tk})
				changed = true
			}
		}
	}
	return nil
}

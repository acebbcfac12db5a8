package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"haven"

	"golang.org/x/mod/sumdb/note"
)

// Signer signs checkpoints with an Ed25519 key in the signed-note format
// that transparency logs and their witnesses speak (c2sp.org/tlog-checkpoint).
// Its name is the prefix of every checkpoint's origin line, "<name>/<logID>",
// and each log's checkpoints are signed under that origin as key name.
type Signer struct {
	name string
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	vkey string

	mu     sync.Mutex
	perLog map[string]*edKey
}

// GenerateKey returns a new signing key and its verifier key, both in the
// signed-note text encoding. name identifies the deployment (for example
// "clinic.example.org/haven-audit"); it may not contain spaces or '+'. The
// private key must be kept secret (WriteKeyFile); the verifier key is
// public and goes to auditors and witnesses.
func GenerateKey(name string) (privateKey, verifierKey string, err error) {
	if !validKeyName(name) {
		return "", "", haven.Errorf(haven.EINVALID, "audit key name must be 1 to 100 printable ASCII characters without spaces or '+'")
	}
	return note.GenerateKey(rand.Reader, name)
}

func validKeyName(name string) bool {
	if name == "" || len(name) > 100 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == '+' {
			return false
		}
	}
	return true
}

// NewSigner returns a Signer for a private key made by GenerateKey.
func NewSigner(privateKey string) (*Signer, error) {
	privateKey = strings.TrimSpace(privateKey)
	s, err := note.NewSigner(privateKey)
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "malformed audit signing key")
	}
	if !validKeyName(s.Name()) {
		return nil, haven.Errorf(haven.EINVALID, "audit signing key has an unusable name")
	}
	// The note package hides the key; read the seed from the encoding,
	// then check it names the same key.
	// Layout: PRIVATE+KEY+<name>+<hash>+<base64>; the base64 may hold '+'.
	rest := strings.TrimPrefix(privateKey, "PRIVATE+KEY+")
	_, rest, _ = strings.Cut(rest, "+")
	_, key64, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algEd25519 {
		return nil, haven.Errorf(haven.EINVALID, "malformed audit signing key")
	}
	priv := ed25519.NewKeyFromSeed(raw[1:])
	pub := priv.Public().(ed25519.PublicKey)
	if keyHash(s.Name(), algEd25519, pub) != s.KeyHash() {
		return nil, haven.Errorf(haven.EINVALID, "malformed audit signing key")
	}
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "malformed audit signing key")
	}
	return &Signer{name: s.Name(), pub: pub, priv: priv, vkey: vkey}, nil
}

// logKey returns the signer for logID's checkpoints: the key under the
// log's origin as key name.
func (s *Signer) logKey(logID string) *edKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.perLog[logID]
	if k == nil {
		k = newEdKey(origin(s.name, logID), s.pub, s.priv)
		if s.perLog == nil {
			s.perLog = map[string]*edKey{}
		}
		s.perLog[logID] = k
	}
	return k
}

// ID names the key in messages and logs (its name and key hash), never its
// material.
func (s *Signer) ID() string { return publicKey{s.name, s.pub}.id() }

// Name returns the key's name.
func (s *Signer) Name() string { return s.name }

// VerifierKey returns the public key that verifies this signer's
// checkpoints, in the signed-note text encoding.
func (s *Signer) VerifierKey() string { return s.vkey }

// WriteKeyFile writes a private key to a new file readable by its owner
// only. It refuses to replace an existing file: overwriting the audit key
// would make every earlier checkpoint unverifiable with the key on disk.
func WriteKeyFile(path, privateKey string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return haven.Wrap(haven.ECONFLICT, err, "audit key file already exists")
		}
		return haven.Wrap(haven.EINTERNAL, err, "cannot create audit key file")
	}
	_, err = f.WriteString(privateKey + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return haven.Wrap(haven.EINTERNAL, err, "cannot write audit key file")
	}
	return nil
}

// LoadSigner reads a private key written by WriteKeyFile. It refuses a file
// that its group or others may read or write: a signing key anyone on the
// machine can copy lets them forge the checkpoints that catch them.
func LoadSigner(path string) (*Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "cannot open audit key file")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "cannot stat audit key file")
	}
	if !fi.Mode().IsRegular() {
		return nil, haven.Errorf(haven.EINVALID, "audit key file is not a regular file")
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, haven.Errorf(haven.EINVALID, "audit key file is accessible to group or others (mode %04o); make it 0600", fi.Mode().Perm())
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, 4096)); err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "cannot read audit key file")
	}
	return NewSigner(buf.String())
}

// TreeHead is a checkpoint's body: which log, how many entries, and the
// RFC 6962 root hash over them.
type TreeHead struct {
	Origin string
	Size   uint64
	Root   []byte
}

// Text returns the checkpoint body in the transparency-log checkpoint
// format: the origin line, the decimal tree size, and the base64 root hash,
// each ending in a newline.
func (h TreeHead) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", h.Origin, h.Size, base64.StdEncoding.EncodeToString(h.Root))
}

// ParseTreeHead parses a checkpoint body. It is strict (no extension lines,
// no leading zeros, a 32-byte root) because the body is what gets signed,
// and one meaning must have one spelling.
func ParseTreeHead(text string) (TreeHead, error) {
	bad := haven.Errorf(haven.EINVALID, "malformed audit checkpoint")
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return TreeHead{}, bad
	}
	origin, sizeText, rootText := lines[0], lines[1], lines[2]
	if origin == "" || len(origin) > 256 || strings.ContainsAny(origin, " \t\r") {
		return TreeHead{}, bad
	}
	size, err := strconv.ParseUint(sizeText, 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != sizeText {
		return TreeHead{}, bad
	}
	root, err := base64.StdEncoding.Strict().DecodeString(rootText)
	if err != nil || len(root) != HashSize || base64.StdEncoding.EncodeToString(root) != rootText {
		return TreeHead{}, bad
	}
	return TreeHead{Origin: origin, Size: size, Root: root}, nil
}

// origin is the origin line of logID's checkpoints under a key name.
func origin(keyName, logID string) string { return keyName + "/" + logID }

// OpenCheckpoint checks a signed checkpoint of logID against verifierKeys
// (one or more verifier keys, one per line) and returns its tree head. The
// origin must be "<key name>/<logID>" for a key that signed it, so a
// checkpoint of one practice's log cannot stand in for another's.
func OpenCheckpoint(signed []byte, logID, verifierKeys string) (TreeHead, error) {
	t, err := NewTrust(verifierKeys)
	if err != nil {
		return TreeHead{}, err
	}
	return t.open(signed, logID)
}

// sign returns the signed note of h, a tree head of logID.
func (s *Signer) sign(h TreeHead, logID string) ([]byte, error) {
	return note.Sign(&note.Note{Text: h.Text()}, s.logKey(logID))
}

// Checkpoint signs the log's current size and root, stores the checkpoint
// and publishes it to every witness. If nothing was appended since the last
// stored checkpoint, that one is returned and nothing is signed or
// published. Call it on a timer, on demand and at shutdown.
//
// If a witness fails or refuses, the checkpoint is still stored and
// returned, together with an error saying publication failed (a
// *WitnessError in its chain says why); the next checkpoint publishes
// everything a witness needs, so a failed one need not be retried. A
// witness that does not know the log and never acknowledged it is skipped
// without an error: Check warns of it when the server starts.
func (l *Log) Checkpoint(ctx context.Context, logID string) (Checkpoint, error) {
	if l.opts.Signer == nil {
		return Checkpoint{}, haven.Errorf(haven.EINTERNAL, "audit: no checkpoint signing key configured")
	}
	if !isLogID(logID) {
		return Checkpoint{}, haven.Errorf(haven.EINVALID, "audit: bad log id")
	}
	ls := l.state(logID)
	cp, fresh, err := l.signCheckpoint(ctx, ls, true)
	if err != nil || !fresh {
		return cp, err
	}
	var errs []error
	for _, err := range l.publish(ctx, ls, cp) {
		// A witness that never knew the log witnesses nothing for it;
		// Check says so at start. Not an error for every checkpoint.
		var we *WitnessError
		if errors.As(err, &we) && we.Reason == WitnessUnknownLog && we.Acknowledged == 0 {
			continue
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return cp, haven.Wrap(haven.EUNAVAILABLE, errors.Join(errs...), "audit checkpoint stored but not published to every witness")
	}
	return cp, nil
}

// signCheckpoint signs the current tree unless a trusted checkpoint of it is
// stored already. A stored checkpoint of the same size with another root
// means the key signed two histories: nothing more is signed.
//
// With store false the new checkpoint is only signed: Check stores it once
// the witnesses have taken it, so a start that is refused writes nothing.
func (l *Log) signCheckpoint(ctx context.Context, ls *logState, store bool) (cp Checkpoint, fresh bool, err error) {
	ls.writeMu.Lock()
	defer ls.writeMu.Unlock()
	if err := l.catchUp(ctx, ls); err != nil {
		return Checkpoint{}, false, err
	}
	size := ls.tree.size()
	root := ls.tree.root()
	if last := ls.lastCP; last != nil {
		if last.Size > size {
			return Checkpoint{}, false, haven.Errorf(haven.EINTERNAL, "audit log %s: a checkpoint is stored for size %d but the log holds %d entries", ls.id, last.Size, size)
		}
		if last.Size == size {
			if h, err := l.opts.Trust.open(last.Note, ls.id); err == nil {
				if !bytes.Equal(h.Root, root) {
					return Checkpoint{}, false, haven.Errorf(haven.EINTERNAL, "audit log %s: the checkpoint stored at size %d has another root than the log", ls.id, size)
				}
				return *last, false, nil
			}
			// Not trusted (forged): sign our own; the store will refuse it
			// if a different note holds this size.
		}
	}
	signed, err := l.opts.Signer.sign(TreeHead{Origin: origin(l.opts.Signer.Name(), ls.id), Size: size, Root: root}, ls.id)
	if err != nil {
		return Checkpoint{}, false, haven.Wrap(haven.EINTERNAL, err, "cannot sign audit checkpoint")
	}
	cp = Checkpoint{Size: size, Note: signed}
	if !store {
		return cp, true, nil
	}
	return cp, true, l.storeCheckpoint(ctx, ls, cp)
}

// storeCheckpoint stores cp as the log's newest. ls.writeMu is held.
func (l *Log) storeCheckpoint(ctx context.Context, ls *logState, cp Checkpoint) error {
	if err := l.st.PutCheckpoint(ctx, ls.id, cp); err != nil {
		if haven.ErrorCode(err) == haven.ECONFLICT {
			return haven.Wrap(haven.ECONFLICT, err, "a different audit checkpoint is stored for this size")
		}
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot store audit checkpoint")
	}
	ls.lastCP = &cp
	return nil
}

// publish gives cp to every witness and records what each acknowledged.
// It returns one error per witness that refused it, could not be asked, or
// acknowledged less than it had before.
func (l *Log) publish(ctx context.Context, ls *logState, cp Checkpoint) []error {
	h, err := noteHead(cp.Note)
	if err != nil {
		return []error{err}
	}
	// Always the current key's own signature under the log's origin (the
	// stored note may predate origin-named keys), which a witness that
	// follows the checkpoint spec requires. Ed25519 is deterministic: for
	// a checkpoint this key signed, these are the stored bytes.
	signed, err := l.opts.Signer.sign(h, ls.id)
	if err != nil {
		return []error{haven.Wrap(haven.EINTERNAL, err, "cannot sign audit checkpoint")}
	}
	prove := func(ctx context.Context, from uint64) ([][]byte, error) {
		return ls.consistency(ctx, l.st, from, cp.Size)
	}
	var errs []error
	for _, w := range l.opts.Witnesses {
		name := w.Name()
		ls.writeMu.Lock()
		known := ls.acked[name]
		ls.writeMu.Unlock()
		ack, err := w.Publish(ctx, ls.id, signed, known, prove)
		if err != nil {
			var we *WitnessError
			if errors.As(err, &we) && we.Reason == WitnessUnknownLog && known > 0 {
				c := *we
				c.Acknowledged = known
				err = &c
			}
			errs = append(errs, err)
			continue
		}
		if ack.Held < known {
			errs = append(errs, &WitnessError{Witness: name, LogID: ls.id, Reason: WitnessBackwards, Size: ack.Held, Have: known})
		}
		if err := l.st.PutWitnessed(ctx, ls.id, name, Checkpoint{Size: cp.Size, Note: ack.Note}); err != nil {
			errs = append(errs, haven.Wrap(haven.EUNAVAILABLE, err, "cannot record the witness's acknowledgement"))
			continue
		}
		ls.writeMu.Lock()
		if cp.Size > ls.acked[name] {
			ls.acked[name] = cp.Size
		}
		ls.writeMu.Unlock()
	}
	return errs
}

// LatestCheckpoint returns the newest checkpoint this Log has stored or
// found in the store, for pages that show a proof against it.
func (l *Log) LatestCheckpoint(ctx context.Context, logID string) (Checkpoint, error) {
	if !isLogID(logID) {
		return Checkpoint{}, haven.Errorf(haven.EINVALID, "audit: bad log id")
	}
	ls := l.state(logID)
	if err := l.sync(ctx, ls, 0); err != nil {
		return Checkpoint{}, err
	}
	ls.writeMu.Lock()
	defer ls.writeMu.Unlock()
	if ls.lastCP == nil {
		return Checkpoint{}, haven.Errorf(haven.ENOTFOUND, "audit log %s has no checkpoint yet", logID)
	}
	return *ls.lastCP, nil
}

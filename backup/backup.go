// Package backup owns the format of Haven's backups: one file, encrypted
// with age to a backup recipient kept apart from the root key, holding the
// database snapshot, the blobs and a manifest, signed with Ed25519 in the
// signed-note format, that lists every part with its size and SHA-256.
// It also keeps the erasure ledger, the record of crypto-shredded patients
// that lives outside every backup so a restore can never revive one.
//
// It never holds the root key or any key of the hierarchy: the parts it
// carries are ciphertext already (sealed fields, sealed blobs, wrapped
// keys), and age adds a second layer so a stolen backup file shows
// nothing, not even which patients or files exist.
package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"haven"
	"haven/blob"
)

// Format is the first line of every manifest. A reader refuses any other.
const Format = "haven backup v1"

// SigningKeyName names the manifest signing key in its signed-note keys.
const SigningKeyName = "haven-backup"

// manifestName is the archive entry holding the signed manifest. It comes
// last, after every part, because it carries their hashes.
const manifestName = "MANIFEST"

// Database parts: exactly one per backup.
const (
	PartSQLite   = "db/haven.sqlite" // a consistent SQLite snapshot (VACUUM INTO)
	PartPostgres = "db/postgres.sql" // pg_dump's plain SQL of the database
)

// DatabasePart names the database part of a backup of database.
func DatabasePart(database string) string {
	if database == "postgres" {
		return PartPostgres
	}
	return PartSQLite
}

// BlobPrefix starts the name of every blob part; the rest is the blob key.
const BlobPrefix = "blobs/"

// Part is one entry of a backup: its name, size and SHA-256.
type Part struct {
	Name   string
	Size   int64
	SHA256 [sha256.Size]byte
}

// Manifest lists what a backup holds. Its text is what the signing key
// signs.
type Manifest struct {
	Created  time.Time
	Database string // "sqlite" or "postgres"
	Parts    []Part
}

// text renders the manifest as signed-note text: one line each, the parts
// in the order they were written.
func (m Manifest) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\ncreated %s\ndatabase %s\n", Format, m.Created.UTC().Format(time.RFC3339Nano), m.Database)
	for _, p := range m.Parts {
		fmt.Fprintf(&b, "part %s %d %s\n", p.Name, p.Size, hex.EncodeToString(p.SHA256[:]))
	}
	return b.String()
}

// Bytes is the total size of the parts.
func (m Manifest) Bytes() int64 {
	var n int64
	for _, p := range m.Parts {
		n += p.Size
	}
	return n
}

func parseManifest(text string) (Manifest, error) {
	var m Manifest
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 || lines[0] != Format {
		return m, errors.New("not a Haven backup manifest of a known format")
	}
	created, ok := strings.CutPrefix(lines[1], "created ")
	if !ok {
		return m, errors.New("manifest has no creation time")
	}
	var err error
	if m.Created, err = time.Parse(time.RFC3339Nano, created); err != nil {
		return m, errors.New("manifest creation time is malformed")
	}
	if m.Database, ok = strings.CutPrefix(lines[2], "database "); !ok || (m.Database != "sqlite" && m.Database != "postgres") {
		return m, errors.New("manifest names no known database")
	}
	for _, l := range lines[3:] {
		f := strings.Fields(l)
		if len(f) != 4 || f[0] != "part" {
			return m, errors.New("manifest has a malformed part line")
		}
		p := Part{Name: f[1]}
		if p.Size, err = strconv.ParseInt(f[2], 10, 64); err != nil || p.Size < 0 {
			return m, errors.New("manifest has a malformed part size")
		}
		h, err := hex.DecodeString(f[3])
		if err != nil || len(h) != sha256.Size {
			return m, errors.New("manifest has a malformed part hash")
		}
		copy(p.SHA256[:], h)
		m.Parts = append(m.Parts, p)
	}
	return m, nil
}

// validPartName accepts the database parts and blobs/<key> with a key blob
// stores accept, so a restore can never write outside where it means to.
func validPartName(name string) bool {
	if name == PartSQLite || name == PartPostgres {
		return true
	}
	key, ok := strings.CutPrefix(name, BlobPrefix)
	return ok && blob.ValidKey(key) == nil
}

// Keys are what `haven backup keygen` makes: an age identity and its
// recipient (post-quantum hybrid: a backup must stay secret for as long as
// the records in it), and the manifest signing key with its verifier key.
type Keys struct {
	Identity    string // AGE-SECRET-KEY-PQ-1…: opens backups; keep it offline, away from the server
	Recipient   string // age1pq1…: the server encrypts to it
	SigningKey  string // signs manifests; stays on the server
	VerifierKey string // checks manifests; give it to whoever verifies or restores
}

// GenerateKeys makes a fresh set of backup keys.
func GenerateKeys() (Keys, error) {
	if err := notInFIPSMode(); err != nil {
		return Keys{}, err
	}
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		return Keys{}, err
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, SigningKeyName)
	if err != nil {
		return Keys{}, err
	}
	return Keys{Identity: id.String(), Recipient: id.Recipient().String(), SigningKey: skey, VerifierKey: vkey}, nil
}

// ParseRecipients reads age recipients, one a line or separated by commas.
func ParseRecipients(s string) ([]age.Recipient, error) {
	rs, err := age.ParseRecipients(strings.NewReader(strings.ReplaceAll(s, ",", "\n")))
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "the backup recipient is not an age recipient (age1…)")
	}
	return rs, nil
}

// ParseIdentities reads the age identities of an identity file.
func ParseIdentities(r io.Reader) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(r)
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "the backup identity file holds no age identity")
	}
	return ids, nil
}

// Writer writes one backup: parts with Add, then Close signs the manifest.
type Writer struct {
	enc      io.WriteCloser
	tw       *tar.Writer
	signer   note.Signer
	manifest Manifest
	names    map[string]bool
}

// NewWriter starts a backup on dst, encrypted to recipients and signed by
// signingKey when closed. database is "sqlite" or "postgres".
func NewWriter(dst io.Writer, recipients []age.Recipient, signingKey, database string, created time.Time) (*Writer, error) {
	if err := notInFIPSMode(); err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(signingKey)
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "the backup signing key is malformed")
	}
	if signer.Name() != SigningKeyName {
		return nil, haven.Errorf(haven.EINVALID, "the backup signing key is not a Haven backup key")
	}
	if len(recipients) == 0 {
		return nil, haven.Errorf(haven.EINVALID, "a backup needs a recipient")
	}
	enc, err := age.Encrypt(dst, recipients...)
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "cannot encrypt to the backup recipient")
	}
	return &Writer{enc: enc, tw: tar.NewWriter(enc), signer: signer, names: map[string]bool{},
		manifest: Manifest{Created: created.UTC(), Database: database}}, nil
}

// Add writes a part of exactly size bytes read from r.
func (w *Writer) Add(name string, size int64, r io.Reader) error {
	if !validPartName(name) || w.names[name] {
		return haven.Errorf(haven.EINVALID, "backup part name %q is not valid or repeats", name)
	}
	w.names[name] = true
	if err := w.tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: 0o600, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(w.tw, io.TeeReader(io.LimitReader(r, size), h))
	if err != nil {
		return err
	}
	if n != size {
		return haven.Errorf(haven.EINTERNAL, "backup part %s ended after %d of %d bytes (it changed while being copied)", name, n, size)
	}
	p := Part{Name: name, Size: size}
	h.Sum(p.SHA256[:0])
	w.manifest.Parts = append(w.manifest.Parts, p)
	return nil
}

// Close signs and writes the manifest, then finishes the encryption. The
// backup is complete only when Close returns nil.
func (w *Writer) Close() (Manifest, error) {
	signed, err := note.Sign(&note.Note{Text: w.manifest.text()}, w.signer)
	if err != nil {
		return Manifest{}, err
	}
	if err := w.tw.WriteHeader(&tar.Header{Name: manifestName, Size: int64(len(signed)), Mode: 0o600, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return Manifest{}, err
	}
	if _, err := w.tw.Write(signed); err != nil {
		return Manifest{}, err
	}
	if err := w.tw.Close(); err != nil {
		return Manifest{}, err
	}
	if err := w.enc.Close(); err != nil {
		return Manifest{}, err
	}
	return w.manifest, nil
}

// ErrRefused wraps every reason a backup is refused: it cannot be opened
// with the identity, it was changed, a part is missing, extra or swapped,
// or the manifest is not signed by the verifier key.
var ErrRefused = errors.New("backup refused")

func refused(format string, args ...any) error {
	return haven.Wrap(haven.EINVALID, ErrRefused, "backup refused: "+fmt.Sprintf(format, args...))
}

// Read decrypts and checks a backup, handing each part to sink as it
// streams past (sink may be nil; what it does not read is still hashed).
// It returns the manifest only when every part matched it and the manifest
// is signed by verifierKey: until then the caller must treat what sink
// received as untrusted, and discard it on error.
func Read(src io.Reader, identities []age.Identity, verifierKey string, sink func(p Part, r io.Reader) error) (Manifest, error) {
	if err := notInFIPSMode(); err != nil {
		return Manifest{}, err
	}
	verifier, err := note.NewVerifier(verifierKey)
	if err != nil {
		return Manifest{}, haven.Wrap(haven.EINVALID, err, "the backup verifier key is malformed")
	}
	if verifier.Name() != SigningKeyName {
		return Manifest{}, haven.Errorf(haven.EINVALID, "the verifier key is not a Haven backup verifier key")
	}
	dec, err := age.Decrypt(src, identities...)
	if err != nil {
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return Manifest{}, refused("the identity does not open this backup (wrong key)")
		}
		return Manifest{}, refused("cannot decrypt: %v", err)
	}
	tr := tar.NewReader(bufio.NewReaderSize(dec, 1<<20))
	seen := map[string]Part{}
	var order []string
	var signed []byte
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Manifest{}, refused("the archive is damaged: %v", err)
		}
		if signed != nil {
			return Manifest{}, refused("a part follows the manifest")
		}
		if hdr.Typeflag != tar.TypeReg {
			return Manifest{}, refused("entry %q is not a regular file", hdr.Name)
		}
		if hdr.Name == manifestName {
			if hdr.Size > 64<<20 {
				return Manifest{}, refused("the manifest is too large")
			}
			if signed, err = io.ReadAll(tr); err != nil {
				return Manifest{}, refused("the archive is damaged: %v", err)
			}
			continue
		}
		if !validPartName(hdr.Name) {
			return Manifest{}, refused("entry %q is not a backup part", hdr.Name)
		}
		if _, dup := seen[hdr.Name]; dup {
			return Manifest{}, refused("part %s appears twice", hdr.Name)
		}
		p := Part{Name: hdr.Name, Size: hdr.Size}
		h := sha256.New()
		src := &readErr{r: tr}
		r := io.TeeReader(src, h)
		if sink != nil {
			if err := sink(p, r); err != nil {
				if src.err != nil { // the backup failed, not the sink
					return Manifest{}, refused("the archive is damaged: %v", src.err)
				}
				return Manifest{}, err
			}
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return Manifest{}, refused("the archive is damaged: %v", err)
		}
		h.Sum(p.SHA256[:0])
		seen[p.Name] = p
		order = append(order, p.Name)
	}
	// Reading to the end makes age check the last chunk: a truncated file
	// fails here even if the tar trailer were intact.
	if _, err := io.Copy(io.Discard, dec); err != nil {
		return Manifest{}, refused("the archive is damaged: %v", err)
	}
	if signed == nil {
		return Manifest{}, refused("it has no manifest")
	}
	n, err := note.Open(signed, note.VerifierList(verifier))
	if err != nil {
		return Manifest{}, refused("the manifest is not signed by the backup verifier key")
	}
	m, err := parseManifest(n.Text)
	if err != nil {
		return Manifest{}, refused("%v", err)
	}
	if len(m.Parts) != len(order) {
		return Manifest{}, refused("it holds %d parts; the manifest lists %d", len(order), len(m.Parts))
	}
	dbParts := 0
	for i, want := range m.Parts {
		got, ok := seen[want.Name]
		if !ok || order[i] != want.Name {
			return Manifest{}, refused("part %s is missing or out of place", want.Name)
		}
		if got.Size != want.Size || !bytes.Equal(got.SHA256[:], want.SHA256[:]) {
			return Manifest{}, refused("part %s does not match its hash in the manifest", want.Name)
		}
		if !strings.HasPrefix(want.Name, BlobPrefix) {
			if want.Name != DatabasePart(m.Database) {
				return Manifest{}, refused("part %s is not a %s snapshot", want.Name, m.Database)
			}
			dbParts++
		}
	}
	if dbParts != 1 {
		return Manifest{}, refused("it holds %d database snapshots", dbParts)
	}
	return m, nil
}

// readErr remembers the error its reader returned, so a failure a sink
// reports can be told apart: the backup's (damaged, tampered) or the sink's.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

package backup_test

import (
	"archive/tar"
	"bytes"
	"crypto/fips140"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"haven"
	"haven/backup"
	"haven/internal/testkit"
)

type fixture struct {
	keys backup.Keys
	file []byte
}

var parts = []struct{ name, body string }{
	{backup.PartSQLite, "SQLite format 3\x00 snapshot bytes"},
	{backup.BlobPrefix + "aa/file-one", "sealed blob one"},
	{backup.BlobPrefix + "bb/file-two", "sealed blob two, a little longer"},
}

func makeBackup(t *testing.T, keys backup.Keys) []byte {
	t.Helper()
	rs, err := backup.ParseRecipients(keys.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, rs, keys.SigningKey, "sqlite", time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if err := w.Add(p.name, int64(len(p.body)), strings.NewReader(p.body)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	if fips140.Enabled() {
		t.Skip("backups are refused in FIPS 140-3 mode (TestBackupIsRefusedInFIPSMode)")
	}
	keys, err := backup.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	return fixture{keys: keys, file: makeBackup(t, keys)}
}

func (f fixture) read(file []byte, identity string) (backup.Manifest, map[string]string, error) {
	ids, err := backup.ParseIdentities(strings.NewReader(identity))
	if err != nil {
		return backup.Manifest{}, nil, err
	}
	got := map[string]string{}
	m, err := backup.Read(bytes.NewReader(file), ids, f.keys.VerifierKey, func(p backup.Part, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[p.Name] = string(b)
		return err
	})
	return m, got, err
}

func TestBackupRoundTrip(t *testing.T) {
	f := newFixture(t)
	m, got, err := f.read(f.file, f.keys.Identity)
	if err != nil {
		t.Fatal(err)
	}
	if m.Database != "sqlite" || len(m.Parts) != len(parts) {
		t.Fatalf("manifest: %+v", m)
	}
	for _, p := range parts {
		if got[p.name] != p.body {
			t.Fatalf("part %s: %q", p.name, got[p.name])
		}
	}
	for _, p := range parts {
		if bytes.Contains(f.file, []byte(p.body)) {
			t.Fatalf("part %s is in the clear in the backup file", p.name)
		}
	}
}

func refusedOrFail(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted", what)
	}
	if !errors.Is(err, backup.ErrRefused) {
		t.Fatalf("%s: refused for the wrong reason: %v", what, err)
	}
}

// TestEditedByteIsRefused flips one byte at several places of the file.
func TestEditedByteIsRefused(t *testing.T) {
	f := newFixture(t)
	for _, at := range []int{len(f.file) / 3, len(f.file) / 2, len(f.file) - 5} {
		bad := bytes.Clone(f.file)
		bad[at] ^= 0x01
		_, _, err := f.read(bad, f.keys.Identity)
		refusedOrFail(t, err, "a flipped byte")
	}
	_, _, err := f.read(f.file[:len(f.file)-20], f.keys.Identity)
	refusedOrFail(t, err, "a truncated file")
}

// rewrite decrypts the backup, lets edit change the archive's entries, and
// encrypts it again to the (public) recipient, as anyone holding the
// recipient can: only the manifest signature stands in the way.
func rewrite(t *testing.T, f fixture, edit func(names []string, bodies [][]byte) ([]string, [][]byte)) []byte {
	t.Helper()
	ids, _ := backup.ParseIdentities(strings.NewReader(f.keys.Identity))
	dec, err := age.Decrypt(bytes.NewReader(f.file), ids...)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(dec)
	var names []string
	var bodies [][]byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names, bodies = append(names, h.Name), append(bodies, b)
	}
	names, bodies = edit(names, bodies)
	rs, _ := backup.ParseRecipients(f.keys.Recipient)
	var out bytes.Buffer
	enc, _ := age.Encrypt(&out, rs...)
	tw := tar.NewWriter(enc)
	for i := range names {
		tw.WriteHeader(&tar.Header{Name: names[i], Size: int64(len(bodies[i])), Mode: 0o600, Typeflag: tar.TypeReg})
		tw.Write(bodies[i])
	}
	tw.Close()
	enc.Close()
	return out.Bytes()
}

func TestSwappedOrForgedPartsAreRefused(t *testing.T) {
	f := newFixture(t)
	// The rewrite itself, changing nothing, is accepted: the refusals
	// below are the edits', not the rewrite's.
	same := rewrite(t, f, func(n []string, b [][]byte) ([]string, [][]byte) { return n, b })
	if _, _, err := f.read(same, f.keys.Identity); err != nil {
		t.Fatalf("an unchanged rewrite: %v", err)
	}
	cases := map[string]func(n []string, b [][]byte) ([]string, [][]byte){
		"two blobs swapped": func(n []string, b [][]byte) ([]string, [][]byte) {
			b[1], b[2] = b[2], b[1]
			return n, b
		},
		"a blob from another backup": func(n []string, b [][]byte) ([]string, [][]byte) {
			b[1] = []byte("sealed blob ONE")
			return n, b
		},
		"a part dropped": func(n []string, b [][]byte) ([]string, [][]byte) {
			return append(n[:1:1], n[2:]...), append(b[:1:1], b[2:]...)
		},
		"a part added": func(n []string, b [][]byte) ([]string, [][]byte) {
			last := len(n) - 1
			n = append(n[:last:last], backup.BlobPrefix+"cc/extra", n[last])
			b = append(b[:last:last], []byte("extra"), b[last])
			return n, b
		},
		"the manifest re-signed by another key": func(n []string, b [][]byte) ([]string, [][]byte) {
			other, _ := backup.GenerateKeys()
			text := string(b[len(b)-1])
			text = text[:strings.Index(text, "\n\n")+1]
			b[len(b)-1] = signWith(t, other.SigningKey, text)
			return n, b
		},
		"the manifest dropped": func(n []string, b [][]byte) ([]string, [][]byte) {
			return n[:len(n)-1], b[:len(b)-1]
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := f.read(rewrite(t, f, edit), f.keys.Identity)
			refusedOrFail(t, err, name)
		})
	}
}

func TestWrongIdentityOrVerifierIsRefused(t *testing.T) {
	f := newFixture(t)
	other, _ := backup.GenerateKeys()
	_, _, err := f.read(f.file, other.Identity)
	refusedOrFail(t, err, "another identity")
	// The right identity but the verifier of another backup key: the
	// manifest is not trusted.
	g := f
	g.keys.VerifierKey = other.VerifierKey
	_, _, err = g.read(f.file, f.keys.Identity)
	refusedOrFail(t, err, "another verifier key")
}

func TestLedgerKeepsErasuresInOrder(t *testing.T) {
	l := backup.OpenLedger(filepath.Join(t.TempDir(), "keys", "erasures"))
	if es, err := l.Erasures(); err != nil || len(es) != 0 {
		t.Fatalf("a new ledger: %v %v", es, err)
	}
	at := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	for _, p := range []string{"pat-a", "pat-b"} {
		if err := l.RecordErasure("prac-1", p, at); err != nil {
			t.Fatal(err)
		}
	}
	es, err := backup.OpenLedger(l.Path()).Erasures()
	if err != nil || len(es) != 2 || es[0].PatientID != "pat-a" || es[1].PatientID != "pat-b" || !es[1].At.Equal(at) {
		t.Fatalf("ledger: %+v %v", es, err)
	}
}

func signWith(t *testing.T, skey, text string) []byte {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// In FIPS 140-3 mode age is never run: making keys, writing and reading a
// backup are each refused with a message that names the way out, before
// any of age's X25519 or ChaCha20-Poly1305 is reached.
func TestBackupIsRefusedInFIPSMode(t *testing.T) {
	if !testkit.InFIPSMode(t) {
		return
	}
	check := func(what string, err error) {
		t.Helper()
		if haven.ErrorCode(err) != haven.EUNAVAILABLE || !strings.Contains(haven.ErrorMessage(err), "not FIPS 140-3 approved") {
			t.Fatalf("%s in FIPS mode: %v", what, err)
		}
	}
	_, err := backup.GenerateKeys()
	check("GenerateKeys", err)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err) // only random bytes: no algorithm of age runs here
	}
	_, err = backup.NewWriter(io.Discard, []age.Recipient{id.Recipient()}, "", "sqlite", time.Now())
	check("NewWriter", err)
	_, err = backup.Read(strings.NewReader("age-encryption.org/v1\n"), []age.Identity{id}, "", nil)
	check("Read", err)
}

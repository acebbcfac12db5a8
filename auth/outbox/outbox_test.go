package outbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDirWritesAParseableMessageOnlyItsOwnerCanRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	d := &Dir{Path: dir, Key: testKey, Now: func() time.Time { return time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC) }}
	link := "https://clinic.example/reset/abc_DEF-123"
	if err := d.Send(context.Background(), Message{To: "pat@example.org", Subject: "Reset your Haven password",
		Text: "Use this link within one hour:\n" + link + "\n"}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".sealed") {
		t.Fatalf("outbox holds %v", entries)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("outbox directory mode %v", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Join(dir, entries[0].Name())); fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("message file mode %v is readable by others", fi.Mode().Perm())
	}
	msgs, err := d.Messages()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("messages: %v %v", msgs, err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(msgs[0].Raw))
	if err != nil {
		t.Fatal(err)
	}
	if to := msg.Header.Get("To"); to != "<pat@example.org>" {
		t.Fatalf("To = %q", to)
	}
	body, _ := io.ReadAll(msg.Body)
	// Quoted-printable may wrap long lines with "=\r\n"; undo that to find the link.
	if !strings.Contains(strings.ReplaceAll(string(body), "=\r\n", ""), link) {
		t.Fatalf("body lacks the link:\n%s", body)
	}
}

// TestSpooledMailIsSealedAtRest sends a message to a marker address and
// searches every byte the outbox wrote, in the encodings a careless write
// could use, for the address and the link: neither is there. The files
// open only with the outbox's own key, and an edited file not at all.
func TestSpooledMailIsSealedAtRest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	d := &Dir{Path: dir, Key: testKey}
	const marker = "zq-marker-7731@patients.example"
	const link = "https://clinic.example/setup/Tok3nMarker"
	if err := d.Send(context.Background(), Message{To: marker, Subject: "Set up your account", Text: "Follow " + link + "\n"}); err != nil {
		t.Fatal(err)
	}
	var raw [][]byte
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			raw = append(raw, b)
		}
		return nil
	})
	if len(raw) != 1 {
		t.Fatalf("%d files in the outbox", len(raw))
	}
	for _, secret := range []string{marker, "zq-marker-7731", link, "Tok3nMarker"} {
		for _, enc := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), hex.EncodeToString([]byte(secret))} {
			if bytes.Contains(bytes.ToLower(raw[0]), bytes.ToLower([]byte(enc))) {
				t.Fatalf("the spooled file holds %q in the clear", secret)
			}
		}
	}
	if msgs, err := d.Messages(); err != nil || len(msgs) != 1 || !bytes.Contains(msgs[0].Raw, []byte(marker)) {
		t.Fatalf("the message does not open: %v", err)
	}
	other := &Dir{Path: dir, Key: []byte("another key, 32 bytes long......")}
	if _, err := other.Messages(); err == nil {
		t.Fatal("the message opened under another key")
	}
	entries, _ := os.ReadDir(dir)
	path := filepath.Join(dir, entries[0].Name())
	raw[0][len(raw[0])-1] ^= 1
	os.WriteFile(path, raw[0], 0o600)
	if _, err := d.Messages(); err == nil {
		t.Fatal("an edited message opened")
	}
	if err := (&Dir{Path: dir}).Send(context.Background(), Message{To: marker, Subject: "s"}); err == nil {
		t.Fatal("a Dir without a key wrote a message")
	}
}

// Messages spooled in the clear by an earlier version are sealed (and the
// clear copies removed) before the spool delivers anything; messages older
// than MaxAge, delivered or not, are removed.
func TestLegacyMailIsSealedAndOldMailExpires(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	d := &Dir{Path: dir, Key: testKey}
	raw, _ := Encode(Message{To: "legacy@patients.example", Subject: "s", Text: "t"}, From, time.Now())
	os.MkdirAll(filepath.Join(dir, "failed"), 0o700)
	os.WriteFile(filepath.Join(dir, "20260101T000000.000000Z-aaaa.eml"), raw, 0o600)
	os.WriteFile(filepath.Join(dir, "failed", "20260101T000000.000000Z-bbbb.eml"), raw, 0o600)
	if n, err := d.SealLegacy(); err != nil || n != 2 {
		t.Fatalf("sealed %d, %v", n, err)
	}
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("legacy@patients.example")) {
				t.Fatalf("%s still holds the address", p)
			}
		}
		return nil
	})
	if msgs, err := d.Messages(); err != nil || len(msgs) != 1 {
		t.Fatalf("sealed legacy message: %v %v", msgs, err)
	}

	if err := d.Send(context.Background(), Message{To: "young@patients.example", Subject: "s"}); err != nil {
		t.Fatal(err)
	}
	msgs, _ := d.Messages()
	old := time.Now().Add(-MaxAge - time.Hour)
	for _, m := range msgs {
		if !bytes.Contains(m.Raw, []byte("young@")) {
			os.Chtimes(filepath.Join(dir, m.Name), old, old)
		}
	}
	failed, _ := filepath.Glob(filepath.Join(dir, "failed", "*"))
	for _, f := range failed {
		os.Chtimes(f, old, old)
	}
	if n, err := d.Expire(time.Now().Add(-MaxAge)); err != nil || n != 2 {
		t.Fatalf("expired %d, %v", n, err)
	}
	if msgs, err := d.Messages(); err != nil || len(msgs) != 1 || !bytes.Contains(msgs[0].Raw, []byte("young@")) {
		t.Fatalf("after expiry: %v %v", msgs, err)
	}
}

func TestHeaderInjectionIsRefused(t *testing.T) {
	for _, m := range []Message{
		{To: "a@example.org\r\nBcc: everyone@example.org", Subject: "x"},
		{To: "a@example.org, b@example.org", Subject: "x"},
		{To: "a@example.org", Subject: "x\r\nBcc: everyone@example.org"},
		{To: "not-an-address", Subject: "x"},
		{To: "a\x00@example.org", Subject: "x"}, // a NUL never reaches a To: header
		{To: "a@example.org\x7f", Subject: "x"},
	} {
		if err := m.Validate(); err == nil {
			t.Errorf("Validate(%q, %q) = nil", m.To, m.Subject)
		}
		if err := (&Memory{}).Send(context.Background(), m); err == nil {
			t.Errorf("Memory.Send(%q) = nil", m.To)
		}
	}
}

func TestMemoryWaitReturnsOnceSent(t *testing.T) {
	var m Memory
	go m.Send(context.Background(), Message{To: "a@example.org", Subject: "s", Text: "t"})
	got, err := m.Wait(context.Background(), 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("Wait = %v, %v", got, err)
	}
}

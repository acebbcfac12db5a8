package outbox

import (
	"context"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDirWritesAParseableMessageOnlyItsOwnerCanRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	d := &Dir{Path: dir, Now: func() time.Time { return time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC) }}
	link := "https://clinic.example/reset/abc_DEF-123"
	if err := d.Send(context.Background(), Message{To: "pat@example.org", Subject: "Reset your Haven password",
		Text: "Use this link within one hour:\n" + link + "\n"}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".eml") {
		t.Fatalf("outbox holds %v", entries)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("outbox directory mode %v", fi.Mode().Perm())
	}
	f, _ := os.Open(filepath.Join(dir, entries[0].Name()))
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("message file mode %v is readable by others", fi.Mode().Perm())
	}
	msg, err := mail.ReadMessage(f)
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

func TestHeaderInjectionIsRefused(t *testing.T) {
	for _, m := range []Message{
		{To: "a@example.org\r\nBcc: everyone@example.org", Subject: "x"},
		{To: "a@example.org, b@example.org", Subject: "x"},
		{To: "a@example.org", Subject: "x\r\nBcc: everyone@example.org"},
		{To: "not-an-address", Subject: "x"},
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

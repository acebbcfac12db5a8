// Package outbox owns how Haven sends the few emails identity needs:
// password-reset links, invitations and address verifications.
//
// An email leaves Haven's protection the moment it is sent, so messages
// must carry no PHI: no clinician's or patient's name, no condition, no
// visit; only the practice's public name and a single-use link. The
// package never logs a message body (it holds a live link) or a
// recipient. Dir spools RFC 5322 messages to a directory, each sealed at
// rest (seal.go), for a developer or an operator to read with `haven
// outbox`; Spool writes the same files and delivers them to the practice's
// relay over TLS (SMTP), deleting each once the relay has it; a message
// stays spooled at most MaxAge. Memory keeps messages for tests.
package outbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strings"
	"sync"
	"time"
	"unicode"

	"haven"
)

// Message is one plain-text email.
type Message struct {
	To      string
	Subject string
	Text    string
}

// Validate refuses a message that could inject headers: a line break in
// an address or subject would let a crafted email address add its own
// recipients or body. Any other control character (a NUL) in the address
// is refused too: callers check addresses first, this is the last line.
func (m Message) Validate() error {
	if m.To == "" || strings.ContainsAny(m.To, "\r\n<>,;\"") || strings.ContainsFunc(m.To, unicode.IsControl) || !strings.Contains(m.To, "@") {
		return haven.Errorf(haven.EINVALID, "email: recipient address is not valid")
	}
	if strings.ContainsAny(m.Subject, "\r\n") || len(m.Subject) > 200 {
		return haven.Errorf(haven.EINVALID, "email: subject must be one short line")
	}
	return nil
}

// Outbox sends messages. Send returns once the message is handed on (for
// Dir, durably written), or an error.
type Outbox interface {
	Send(ctx context.Context, m Message) error
}

// From is the sender a message names when no address is configured: a
// domain that cannot exist, so nobody mistakes a development outbox for
// mail from a real practice.
const From = "Haven <no-reply@haven.invalid>"

// Encode returns m as an RFC 5322 message from the header value from, with
// a quoted-printable UTF-8 body, dated at and with a random Message-ID.
func Encode(m Message, from string, at time.Time) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var id [12]byte
	rand.Read(id[:])
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: <%s>\r\n", m.To)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", m.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", at.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@haven.invalid>\r\n", hex.EncodeToString(id[:]))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(m.Text, "\n", "\r\n")))
	qp.Close()
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

// Dir spools each message as a sealed file in a directory readable only
// by Haven's user (a link in it is a credential until used).
type Dir struct {
	Path string
	// Key seals every file (KeySize bytes, required): addresses and links
	// are never on disk in the clear.
	Key  []byte
	From string           // the From header; default From
	Now  func() time.Time // default time.Now
}

// Send implements Outbox. The file is written under a temporary name,
// synced and renamed, so a reader never sees half a message.
func (d *Dir) Send(ctx context.Context, m Message) error {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	at := now()
	from := d.From
	if from == "" {
		from = From
	}
	raw, err := Encode(m, from, at)
	if err != nil {
		return err
	}
	sealed, err := d.seal(raw)
	clear(raw)
	if err != nil {
		return err
	}
	var r [6]byte
	rand.Read(r[:])
	name := at.UTC().Format("20060102T150405.000000Z") + "-" + hex.EncodeToString(r[:]) + sealedExt
	if err := writeAtomic(d.Path, name, sealed); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "the outbox is unavailable")
	}
	return nil
}

// Memory keeps sent messages in memory, for tests.
type Memory struct {
	mu   sync.Mutex
	sent []Message
	wake chan struct{}
}

// Send implements Outbox.
func (m *Memory) Send(_ context.Context, msg Message) error {
	if err := msg.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	if m.wake != nil {
		close(m.wake)
		m.wake = nil
	}
	return nil
}

// Sent returns the messages sent so far.
func (m *Memory) Sent() []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Message(nil), m.sent...)
}

// Wait blocks until at least n messages have been sent or ctx ends, and
// returns them (for callers that send in the background).
func (m *Memory) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		m.mu.Lock()
		if len(m.sent) >= n {
			out := append([]Message(nil), m.sent...)
			m.mu.Unlock()
			return out, nil
		}
		if m.wake == nil {
			m.wake = make(chan struct{})
		}
		w := m.wake
		m.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return m.Sent(), ctx.Err()
		}
	}
}

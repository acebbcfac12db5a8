package outbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SMTP hands messages to the practice's mail relay. It always encrypts:
// over implicit TLS (smtps://, usually port 465) or after STARTTLS
// (smtp://, usually 587), and it refuses a relay that does not offer
// STARTTLS rather than fall back to plain text, because every message
// Haven sends holds a single-use link that signs someone in or sets their
// password. Credentials are only ever sent inside TLS.
type SMTP struct {
	Addr        string // host:port of the relay
	ImplicitTLS bool   // smtps://: TLS from the first byte
	Username    string // AUTH PLAIN when set
	Password    string
	From        string         // envelope sender: a bare address such as no-reply@clinic.example
	RootCAs     *x509.CertPool // nil: the system's roots
	Timeout     time.Duration  // for the whole conversation; default 30s
}

// ParseSMTPURL reads smtp://[user@]host[:port] (STARTTLS, default port
// 587) or smtps://[user@]host[:port] (implicit TLS, default 465). A
// password in the URL is refused: URLs end up in process listings and
// shell histories, so the password has its own setting.
func ParseSMTPURL(raw string) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%q is not smtp://[user@]host[:port] or smtps://[user@]host[:port]", redactURL(raw))
	}
	s := &SMTP{}
	port := "587"
	switch u.Scheme {
	case "smtp":
	case "smtps":
		s.ImplicitTLS, port = true, "465"
	default:
		return nil, fmt.Errorf("%q: the scheme must be smtp (STARTTLS) or smtps (implicit TLS)", redactURL(raw))
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: a relay URL has no path, query or fragment", redactURL(raw))
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return nil, errors.New("put the SMTP password in its own setting, not in the URL")
		}
		s.Username = u.User.Username()
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q has no valid port", redactURL(raw))
		}
		port = p
	}
	s.Addr = net.JoinHostPort(u.Hostname(), port)
	return s, nil
}

// redactURL drops any user information, so an error never repeats a
// password someone put in the URL by mistake.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	return u.String()
}

// errRelay is an error about the relay or Haven's settings for it (cannot
// connect, no STARTTLS, bad certificate, authentication refused): every
// message would fail the same way, so it is kept and retried.
type errRelay struct{ err error }

func (e errRelay) Error() string { return "mail relay: " + e.err.Error() }
func (e errRelay) Unwrap() error { return e.err }

// errRejected is the relay refusing this one message (a 5xx answer to its
// recipient or content): retrying will not help.
type errRejected struct{ err error }

func (e errRejected) Error() string { return "mail relay rejected the message: " + e.err.Error() }
func (e errRejected) Unwrap() error { return e.err }

// Deliver sends one encoded message (as Encode returns it) to one
// recipient. Its error is an errRejected when the relay refused this
// message for good, otherwise an errRelay.
func (s *SMTP) Deliver(ctx context.Context, to string, raw []byte) error {
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return errRelay{err}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return errRelay{err}
	}
	defer conn.Close()
	// The conversation as a whole must end by the deadline, and a
	// cancelled context ends it at once.
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	tlsConfig := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, RootCAs: s.RootCAs}
	if s.ImplicitTLS {
		conn = tls.Client(conn, tlsConfig)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return errRelay{answer("greeting", err)}
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return errRelay{answer("EHLO", err)}
	}
	if !s.ImplicitTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errRelay{errors.New("the relay does not offer STARTTLS; Haven does not send mail in plain text")}
		}
		if err := c.StartTLS(tlsConfig); err != nil {
			return errRelay{answer("STARTTLS", err)}
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return errRelay{answer("AUTH", err)}
		}
	}
	// The sender is the relay's to accept or not: a refusal there says
	// the relay is set up differently from Haven, for every message.
	if err := c.Mail(s.From); err != nil {
		return errRelay{answer("MAIL FROM", err)}
	}
	if err := c.Rcpt(to); err != nil {
		return classify("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return classify("DATA", err)
	}
	if _, err := w.Write(raw); err != nil {
		return errRelay{err}
	}
	if err := w.Close(); err != nil {
		return classify("end of DATA", err)
	}
	// The relay has taken the message; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// classify makes a permanent (5xx) answer about this message an
// errRejected and anything else an errRelay. A 5xx that is about the
// relay's policy or Haven's credentials (530, 535, or an enhanced status
// 5.7.x: authentication required, sender not allowed) would refuse every
// message alike, so it is a relay error and the message stays spooled.
func classify(step string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code != 530 && te.Code != 535 && !strings.HasPrefix(te.Msg, "5.7.") {
		return errRejected{answer(step, err)}
	}
	return errRelay{answer(step, err)}
}

// answer describes a relay's answer at step by its code only: relays
// repeat the recipient's address in their text ("550 5.1.1 <pat@…>:
// Recipient address rejected"), and these errors are logged.
func answer(step string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return fmt.Errorf("%s: the relay answered %d", step, te.Code)
	}
	return fmt.Errorf("%s: %w", step, err)
}

// ValidAddress reports whether addr is one bare email address, as the
// envelope sender must be.
func ValidAddress(addr string) bool {
	a, err := mail.ParseAddress(addr)
	return err == nil && a.Address == addr && a.Name == ""
}

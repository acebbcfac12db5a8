package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"

	"haven/auth/outbox"
)

// mailConfig is how `haven serve` sends email (sign-in links, invitations,
// visit reminders). Without a relay, messages are written to
// <data-dir>/outbox for a developer or the operator's own mail pickup;
// with --smtp-url they are spooled there and delivered to the relay over
// TLS (see auth/outbox.Spool).
type mailConfig struct {
	SMTPURL      string
	SMTPPassword string
	SMTPCA       string
	From         string

	relay *outbox.SMTP
	// allow asks the vendor registry before each delivery run (serve
	// sets it once the relay is recognized there).
	allow func(context.Context) error
}

func (m *mailConfig) register(fs *flag.FlagSet) error {
	return registerSettings(fs, []setting{
		{"smtp-url", "HAVEN_SMTP_URL", "", "mail relay for outgoing email: smtp://[user@]host[:port] (STARTTLS, required) or smtps://[user@]host[:port]; default: write emails to <data-dir>/outbox", false, &m.SMTPURL},
		{"smtp-password", "HAVEN_SMTP_PASSWORD", "", "password for the relay user of --smtp-url", true, &m.SMTPPassword},
		{"smtp-ca", "HAVEN_SMTP_CA", "", "PEM file of the CA certificates trusted for the relay (default: the system's)", false, &m.SMTPCA},
		{"mail-from", "HAVEN_MAIL_FROM", "", "sender of outgoing email, a bare address such as no-reply@clinic.example (required with --smtp-url)", false, &m.From},
	})
}

// validate checks the settings without connecting: a relay that is down at
// start-up only delays mail, which stays spooled.
func (m *mailConfig) validate() error {
	if m.From != "" && !outbox.ValidAddress(m.From) {
		return fmt.Errorf("--mail-from: %q is not a bare email address such as no-reply@clinic.example", m.From)
	}
	if m.SMTPURL == "" {
		if m.SMTPPassword != "" || m.SMTPCA != "" {
			return fmt.Errorf("--smtp-password and --smtp-ca need --smtp-url")
		}
		return nil
	}
	relay, err := outbox.ParseSMTPURL(m.SMTPURL)
	if err != nil {
		return fmt.Errorf("--smtp-url: %v", err)
	}
	if m.From == "" {
		return fmt.Errorf("--mail-from: required with --smtp-url (relays refuse mail from a made-up domain)")
	}
	if (relay.Username != "") != (m.SMTPPassword != "") {
		return fmt.Errorf("--smtp-password: give a user in --smtp-url and a password together, or neither")
	}
	if m.SMTPCA != "" {
		pem, err := os.ReadFile(m.SMTPCA)
		if err != nil {
			return fmt.Errorf("--smtp-ca: cannot read %s: %v", m.SMTPCA, errShort(err))
		}
		relay.RootCAs = x509.NewCertPool()
		if !relay.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--smtp-ca: %s holds no PEM certificate", m.SMTPCA)
		}
	}
	relay.Password, relay.From = m.SMTPPassword, m.From
	m.relay = relay
	return nil
}

// outboxDir is <data-dir>/outbox, sealed under <data-dir>/keys/mail.key
// (made on first use): beside the other keys and, like them, to be kept
// out of backups of the data directory.
func outboxDir(dataDir string, out io.Writer) (*outbox.Dir, error) {
	key, err := loadKeyFile(filepath.Join(dataDir, "keys", "mail.key"), outbox.KeySize, "key sealing spooled email", out)
	if err != nil {
		return nil, fmt.Errorf("outbox key: %v", err)
	}
	return &outbox.Dir{Path: filepath.Join(dataDir, "outbox"), Key: key}, nil
}

// outbox returns where the server's email goes, starting the delivery
// loop when there is a relay (or else a loop that removes mail older than
// outbox.MaxAge); stop ends the loop and waits for it (mail still spooled
// stays on disk for the next start).
func (m *mailConfig) outbox(ctx context.Context, dataDir string, env *Env) (mail outbox.Outbox, stop func(), err error) {
	dir, err := outboxDir(dataDir, env.Stdout)
	if err != nil {
		return nil, nil, err
	}
	if m.From != "" {
		dir.From = (&netmail.Address{Name: "Haven", Address: m.From}).String()
	}
	// Mail an earlier version spooled in the clear is sealed now.
	if n, err := dir.SealLegacy(); err != nil {
		return nil, nil, fmt.Errorf("outbox: %v", errShort(err))
	} else if n > 0 {
		env.Logger.Warn("outbox: sealed messages an earlier version left in the clear", "count", n)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	if m.relay == nil {
		go func() {
			defer close(done)
			expireMail(ctx, env, dir)
		}()
		return dir, func() { cancel(); <-done }, nil
	}
	spool := outbox.NewSpool(dir, m.relay, env.Logger)
	spool.Allow = m.allow
	go func() {
		defer close(done)
		spool.Run(ctx)
	}()
	return spool, func() {
		cancel()
		<-done
	}, nil
}

// expireMail removes spooled mail older than outbox.MaxAge, hourly, for a
// server without a relay (the delivery loop does it otherwise).
func expireMail(ctx context.Context, env *Env, dir *outbox.Dir) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := dir.Expire(time.Now().Add(-outbox.MaxAge)); err != nil {
			env.Logger.Error("outbox: cannot remove expired messages", "err", err)
		} else if n > 0 {
			env.Logger.Info("outbox: removed messages older than their links", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func init() {
	commands["outbox"] = command{"print the email waiting in <data-dir>/outbox (sealed on disk)", runOutbox}
}

// runOutbox prints the spooled messages, opened, oldest first: how an
// operator without a mail relay reads what Haven would have sent.
func runOutbox(ctx context.Context, env *Env, args []string) error {
	var dataDir string
	fs := newFlagSet(env, "outbox", "Prints the email spooled in <data-dir>/outbox, oldest first. Files there are sealed\n"+
		"under <data-dir>/keys/mail.key; each message holds a sign-in link: hand it over as you\n"+
		"would a password. Messages are removed once delivered, or after "+days(outbox.MaxAge)+".")
	if err := registerSettings(fs, []setting{{"data-dir", "HAVEN_DATA_DIR", "./haven-data", "the data directory", false, &dataDir}}); err != nil {
		return err
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	keyPath := filepath.Join(dataDir, "keys", "mail.key")
	if _, err := os.Stat(keyPath); err != nil {
		return fmt.Errorf("no outbox key at %s: nothing was spooled here", keyPath)
	}
	dir, err := outboxDir(dataDir, env.Stderr)
	if err != nil {
		return err
	}
	msgs, err := dir.Messages()
	if err != nil {
		return fmt.Errorf("outbox: %v", err)
	}
	for _, m := range msgs {
		fmt.Fprintf(env.Stdout, "--- %s (spooled %s)\n%s\n", m.Name, m.Written.UTC().Format(time.RFC3339), strings.TrimRight(string(m.Raw), "\r\n"))
	}
	if len(msgs) == 0 {
		fmt.Fprintln(env.Stderr, "no email is waiting")
	}
	return nil
}

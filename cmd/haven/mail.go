package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"os"
	"path/filepath"

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

// outbox returns where the server's email goes, starting the delivery
// loop when there is a relay; stop ends the loop and waits for it (mail
// still spooled stays on disk for the next start).
func (m *mailConfig) outbox(ctx context.Context, dataDir string, logger *slog.Logger) (mail outbox.Outbox, stop func()) {
	dir := &outbox.Dir{Path: filepath.Join(dataDir, "outbox")}
	if m.From != "" {
		dir.From = (&netmail.Address{Name: "Haven", Address: m.From}).String()
	}
	if m.relay == nil {
		return dir, func() {}
	}
	spool := outbox.NewSpool(dir, m.relay, logger)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		spool.Run(ctx)
	}()
	return spool, func() {
		cancel()
		<-done
	}
}

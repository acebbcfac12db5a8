package outbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"time"
)

// Spool is the outbox of a server with a mail relay: Send writes the
// message durably to a Dir, as without a relay, and a background loop
// (Run) hands each file to the relay and deletes it once the relay has
// taken it. A sign-in link is therefore never lost to a relay that is down
// or a process that is killed: what Send acknowledged is on disk until it
// is delivered, and a restarted server delivers what an earlier one left.
//
// A message the relay rejects for good (an unknown recipient), or that
// does not open under the outbox key, moves to the failed/ directory beside
// the others for the operator; a relay that is unreachable or
// misconfigured leaves every message in place and is retried with
// backoff. Nothing stays longer than MaxAge, delivered or not. Logs name
// the spool file and the relay's error, never a recipient or a body: both
// are personal data and the body holds a live link.
type Spool struct {
	Dir    *Dir
	Relay  *SMTP
	Logger *slog.Logger // default slog.Default()
	// Retry is the first wait after a relay failure; it doubles up to
	// MaxRetry. Defaults 5s and 5min. With nothing to send, the spool is
	// still scanned every MaxRetry, for files another process left.
	Retry, MaxRetry time.Duration
	// Allow, when set, is asked before each delivery run whether the relay
	// may receive mail now (the vendor registry: a retired relay, or one
	// whose agreement ended, gets nothing). Its error stops the run as a
	// relay failure does: the messages stay spooled and are retried.
	Allow func(ctx context.Context) error

	wake chan struct{}
}

// NewSpool returns a Spool writing to dir and delivering through relay.
func NewSpool(dir *Dir, relay *SMTP, logger *slog.Logger) *Spool {
	return &Spool{Dir: dir, Relay: relay, Logger: logger, wake: make(chan struct{}, 1)}
}

// Send implements Outbox: it returns once the message is on disk, and
// wakes the delivery loop.
func (s *Spool) Send(ctx context.Context, m Message) error {
	if err := s.Dir.Send(ctx, m); err != nil {
		return err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run delivers spooled messages until ctx ends.
func (s *Spool) Run(ctx context.Context) {
	retry, maxRetry := s.Retry, s.MaxRetry
	if retry <= 0 {
		retry = 5 * time.Second
	}
	if maxRetry <= 0 {
		maxRetry = 5 * time.Minute
	}
	var backoff time.Duration // zero while the relay is fine
	for {
		if n, err := s.Dir.Expire(time.Now().Add(-MaxAge)); err != nil {
			s.logger().Error("outbox: cannot remove expired messages", "err", err)
		} else if n > 0 {
			s.logger().Warn("outbox: removed messages older than their links", "count", n, "max_age", MaxAge.String())
		}
		if err := s.Flush(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, retry), maxRetry)
			s.logger().Warn("outbox: mail relay unavailable; messages stay spooled", "err", err, "retry_in", backoff.String())
		} else {
			backoff = 0
		}
		next, wake := maxRetry, s.wake
		if backoff > 0 {
			// Backing off: a new message waits for the retry like the rest.
			next, wake = backoff, nil
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// Flush delivers every spooled message once, oldest first. It stops at
// the first relay failure (the rest would fail alike) and returns it.
func (s *Spool) Flush(ctx context.Context) error {
	if s.Allow != nil {
		names, err := s.Dir.spooledNames(s.Dir.Path)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return nil
		}
		if err := s.Allow(ctx); err != nil {
			return err
		}
	}
	if _, err := s.Dir.SealLegacy(); err != nil {
		return err
	}
	names, err := s.Dir.spooledNames(s.Dir.Path)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		raw, err := s.Dir.read(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // another server of this data dir delivered it
		}
		if errors.Is(err, errUnreadable) {
			s.logger().Error("outbox: message does not open with this node's outbox key; moved to failed/", "file", name)
			if err := s.moveToFailed(name); err != nil {
				return err
			}
			continue
		} else if err != nil {
			return err
		} else {
			var to string
			if to, err = recipient(raw); err == nil {
				err = s.Relay.Deliver(ctx, to, raw)
			} else {
				err = errRejected{err}
			}
			clear(raw)
		}
		var rejected errRejected
		switch {
		case err == nil:
			if err := os.Remove(filepath.Join(s.Dir.Path, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		case errors.As(err, &rejected):
			s.logger().Error("outbox: message rejected; moved to failed/", "file", name, "err", err)
			if err := s.moveToFailed(name); err != nil {
				return err
			}
		default:
			return err
		}
	}
	return nil
}

func (s *Spool) moveToFailed(name string) error {
	dir := filepath.Join(s.Dir.Path, "failed")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Rename(filepath.Join(s.Dir.Path, name), filepath.Join(dir, name))
}

func (s *Spool) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// recipient reads the one address of an encoded message's To header: the
// envelope recipient is taken from the file so the spool needs nothing
// but the file to deliver it.
func recipient(raw []byte) (string, error) {
	msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return "", err
	}
	a, err := mail.ParseAddress(msg.Header.Get("To"))
	if err != nil {
		return "", err
	}
	return a.Address, nil
}

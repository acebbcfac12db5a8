package identity

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"haven"
	"haven/auth/throttle"
)

// How identity asks auth/throttle: which account and device an attempt
// is on, the wait a refusal carries (for a Retry-After), and the count of
// requests that send email.

// accountKey is how the throttle names an account: the email's blind index,
// whether or not an account has it.
func accountKey(index []byte) string { return hex.EncodeToString(index) }

// errBadLogin is the one answer to a wrong email or password: the same
// message and status whether or not the account exists.
var errBadLogin = haven.Errorf(haven.EUNAUTHORIZED, "that email and password do not match an account")

// throttledError is ETOOMANY with how long to wait, for a Retry-After.
type throttledError struct {
	err  *haven.Error
	wait time.Duration
}

func (e *throttledError) Error() string { return e.err.Error() }

func (e *throttledError) Unwrap() error { return e.err }

// RetryAfter returns how long a throttled request should wait, or 0.
func RetryAfter(err error) time.Duration {
	var t *throttledError
	if errors.As(err, &t) {
		return t.wait
	}
	return 0
}

func throttled(err error, wait time.Duration) error {
	var he *haven.Error
	if !errors.As(err, &he) {
		he = haven.Errorf(haven.ETOOMANY, "too many attempts; try again later")
	}
	return &throttledError{err: he, wait: wait}
}

// attemptFor is the throttle's view of an attempt on u's account from c.
// KnownDevice is true only when c's device cookie completed a sign-in as u
// before, as the server recorded it.
func (id *Service) attemptFor(ctx context.Context, u *haven.User, c Client) throttle.Attempt {
	att := throttle.Attempt{Account: accountKey(u.EmailIndex), Addr: c.Addr, Device: c.throttleDevice()}
	if h := c.knownDeviceHash(); h != nil {
		att.KnownDevice, _ = id.db.KnownDevice(ctx, h, u.ID)
	}
	return att
}

// allow asks the throttle about att, turning a refusal into ETOOMANY with
// its wait.
func (id *Service) allow(ctx context.Context, att throttle.Attempt) error {
	wait, err := id.throttle.Allow(ctx, att)
	if err != nil && haven.ErrorCode(err) == haven.ETOOMANY {
		return throttled(err, wait)
	}
	return err
}

// countEmailRequest throttles a request that sends email to an address
// (reset, registration): per address and per email, under kind's prefix so
// its counts stay apart from sign-in's, while the source address's count
// is shared, so a spammer's address slows down everywhere at once. Every
// request counts, so a few are free and more must wait.
func (id *Service) countEmailRequest(ctx context.Context, kind string, index []byte, c Client) error {
	att := throttle.Attempt{Account: kind + accountKey(index), Addr: c.Addr}
	if err := id.allow(ctx, att); err != nil {
		return err
	}
	return id.throttle.Failure(ctx, att)
}

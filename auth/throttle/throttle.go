// Package throttle owns how Haven slows password guessing: failures are
// counted per source address, per account and per account-and-address
// pair, and each count past a free allowance earns an exponentially
// growing wait that always ends.
//
// The rules are built so that throttling cannot be turned against the
// people it protects:
//   - The address limit is checked first and is lower than the account
//     limit, and one address contributes at most AddressFree failures to an
//     account's count, so a single attacking address is stopped long before
//     it could lock anyone out; it takes failures from at least
//     AccountFree/AddressFree addresses to slow an account down.
//   - Every wait is at most MaxDelay after the last failure, and counts are
//     forgotten Forget after it: there is no permanent lockout.
//   - A device that has already signed in to the account (KnownDevice: a
//     completed sign-in, with the second factor where the account has one)
//     is not held back by the account's count, so a victim on their usual
//     device signs in while strangers fail against their email from many
//     addresses. Its own failures are counted per device instead (with the
//     address's allowance), so a stolen device cookie buys no guesses.
//   - A successful sign-in (password and second factor) clears the
//     account's count and the failures that account made from that address,
//     but not failures against other accounts: an attacker cannot launder
//     its address by signing in to an account of its own.
//
// Accounts are keyed by the caller's blind index of the email typed,
// whether or not an account exists, so throttling says nothing about who
// has one. The package never sees a password and stores no address in a
// form other than the one the caller gives.
package throttle

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"haven"
)

// Config sets the allowances and waits. Zero fields take the defaults.
type Config struct {
	AddressFree int           // failures from one address before it waits; default 5
	AccountFree int           // failures against one account before it waits; default 20, must exceed AddressFree
	BaseDelay   time.Duration // the first wait; default 1 s, doubling with each further failure
	MaxDelay    time.Duration // the longest wait; default 15 min
	Forget      time.Duration // a count with no new failure for this long is dropped; default 24 h
}

func (c Config) withDefaults() Config {
	if c.AddressFree <= 0 {
		c.AddressFree = 5
	}
	if c.AccountFree <= c.AddressFree {
		c.AccountFree = max(20, 2*c.AddressFree)
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = time.Second
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 15 * time.Minute
	}
	if c.Forget <= 0 {
		c.Forget = 24 * time.Hour
	}
	return c
}

// Record is one counter's state.
type Record struct {
	Failures int
	Last     time.Time // time of the latest failure
}

// Store keeps records by key. Keys start with "addr:", "acct:", "pair:" or
// "dev:" and are arbitrary bytes after that (pair and device keys hold a
// NUL separator): store them as binary, not text.
type Store interface {
	// Get returns key's record, or the zero Record.
	Get(ctx context.Context, key string) (Record, error)
	// Update replaces key's record with fn applied to it, atomically, and
	// returns the result; a result with no failures may be deleted.
	Update(ctx context.Context, key string, fn func(Record) Record) (Record, error)
}

// Attempt identifies one sign-in attempt.
type Attempt struct {
	Account string // blind index of the email typed, known account or not
	Addr    string // client address ("203.0.113.7" or "[2001:db8::1]:443")
	// KnownDevice is true only when the client presents a device cookie
	// that the server recorded as having completed a sign-in to this
	// Account (and has not forgotten); never on the client's say-so.
	KnownDevice bool
	// Device identifies that device (a hash of its cookie, never the
	// cookie). A known device is counted by it instead of by the account;
	// KnownDevice without a Device counts as an unknown device.
	Device string
}

// Throttle decides whether an attempt may proceed and records its outcome.
type Throttle struct {
	cfg   Config
	store Store
	now   func() time.Time
}

// New returns a Throttle over store. now is the clock (time.Now in
// production, a fake in tests).
func New(store Store, cfg Config, now func() time.Time) *Throttle {
	return &Throttle{cfg: cfg.withDefaults(), store: store, now: now}
}

// addressKey groups an IPv6 client by its /64, which one host or
// household controls whole; an IPv4 address stands alone, because a whole
// clinic may share it through NAT.
func addressKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(addr)
		if err2 != nil {
			return "addr:raw:" + addr
		}
		a = ap.Addr()
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + a.String()
}

func keys(a Attempt) (addr, acct, pair string) {
	addr = addressKey(a.Addr)
	acct = "acct:" + a.Account
	pair = "pair:" + a.Account + "\x00" + addr
	return
}

// deviceKey is the count of a known device's failures on its account, or
// "" for an attempt from a device the account does not know.
func deviceKey(a Attempt) string {
	if !a.KnownDevice || a.Device == "" {
		return ""
	}
	return "dev:" + a.Account + "\x00" + a.Device
}

// live returns r as it counts at now: forgotten once Forget has passed.
func (t *Throttle) live(r Record, now time.Time) Record {
	if r.Failures > 0 && now.Sub(r.Last) >= t.cfg.Forget {
		return Record{}
	}
	return r
}

// delay is the wait after failures, with free failures allowed.
func (t *Throttle) delay(failures, free int) time.Duration {
	if failures < free {
		return 0
	}
	d := t.cfg.BaseDelay
	for i := free; i < failures; i++ {
		if d >= t.cfg.MaxDelay {
			break
		}
		d *= 2
	}
	return min(d, t.cfg.MaxDelay)
}

// wait is how long r must still wait at now.
func (t *Throttle) wait(r Record, free int, now time.Time) time.Duration {
	r = t.live(r, now)
	return max(0, r.Last.Add(t.delay(r.Failures, free)).Sub(now))
}

// Allow reports whether the attempt may go ahead now. If not, it returns
// haven.ETOOMANY and how long to wait (for a Retry-After header); the
// caller must then not check the password at all, so a throttled guess
// costs the server nothing and teaches the attacker nothing.
func (t *Throttle) Allow(ctx context.Context, a Attempt) (time.Duration, error) {
	now := t.now()
	addrKey, acctKey, _ := keys(a)
	r, err := t.store.Get(ctx, addrKey)
	if err != nil {
		return 0, err
	}
	if w := t.wait(r, t.cfg.AddressFree, now); w > 0 {
		return w, tooMany(w)
	}
	if dev := deviceKey(a); dev != "" {
		// The account's owner on their own device: strangers' failures
		// against the account do not hold it back, its own do.
		r, err = t.store.Get(ctx, dev)
		if err != nil {
			return 0, err
		}
		if w := t.wait(r, t.cfg.AddressFree, now); w > 0 {
			return w, tooMany(w)
		}
		return 0, nil
	}
	r, err = t.store.Get(ctx, acctKey)
	if err != nil {
		return 0, err
	}
	if w := t.wait(r, t.cfg.AccountFree, now); w > 0 {
		return w, tooMany(w)
	}
	return 0, nil
}

func tooMany(w time.Duration) error {
	secs := int((w + time.Second - 1) / time.Second)
	return haven.Errorf(haven.ETOOMANY, "too many sign-in attempts; try again in %s", humanSeconds(secs))
}

func humanSeconds(s int) string {
	if s < 120 {
		return fmt.Sprintf("%d seconds", s)
	}
	return fmt.Sprintf("%d minutes", (s+59)/60)
}

// Failure records a failed attempt that Allow let through (wrong password,
// wrong second factor, or an unknown account: all count alike). Attempts
// Allow refused are not counted, so waiting out a backoff is all it takes
// to be heard again.
func (t *Throttle) Failure(ctx context.Context, a Attempt) error {
	now := t.now()
	addrKey, acctKey, pairKey := keys(a)
	inc := func(r Record) Record {
		r = t.live(r, now)
		return Record{Failures: r.Failures + 1, Last: now}
	}
	pair, err := t.store.Update(ctx, pairKey, inc)
	if err != nil {
		return err
	}
	if _, err := t.store.Update(ctx, addrKey, inc); err != nil {
		return err
	}
	if dev := deviceKey(a); dev != "" {
		_, err = t.store.Update(ctx, dev, inc)
		return err // a known device's failures are its own, not strangers'
	}
	if pair.Failures > t.cfg.AddressFree {
		return nil // this address has had its say about this account
	}
	_, err = t.store.Update(ctx, acctKey, inc)
	return err
}

// Success records a completed sign-in (password and, where required, a
// second factor): the account's count is cleared, and so are the failures
// this account made from this address (a user's own typos), leaving that
// address's failures against other accounts in place.
func (t *Throttle) Success(ctx context.Context, a Attempt) error {
	now := t.now()
	addrKey, acctKey, pairKey := keys(a)
	var own int
	if _, err := t.store.Update(ctx, pairKey, func(r Record) Record {
		own = t.live(r, now).Failures
		return Record{}
	}); err != nil {
		return err
	}
	if own > 0 {
		if _, err := t.store.Update(ctx, addrKey, func(r Record) Record {
			r = t.live(r, now)
			r.Failures = max(0, r.Failures-own)
			if r.Failures == 0 {
				return Record{}
			}
			return r
		}); err != nil {
			return err
		}
	}
	if dev := deviceKey(a); dev != "" {
		if _, err := t.store.Update(ctx, dev, func(Record) Record { return Record{} }); err != nil {
			return err
		}
	}
	_, err := t.store.Update(ctx, acctKey, func(Record) Record { return Record{} })
	return err
}

package throttle

import (
	"context"
	"fmt"
	"testing"
	"time"

	"haven"
)

var ctx = context.Background()

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newThrottle(st *MemoryStore) (*Throttle, *clock) {
	c := &clock{t: time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC)}
	return New(st, Config{}, c.now), c // defaults: 5 per address, 20 per account, 1 s doubling to 15 min
}

// fail makes an attempt that Allow must let through, and records its failure.
func fail(t *testing.T, th *Throttle, a Attempt) {
	t.Helper()
	if w, err := th.Allow(ctx, a); err != nil {
		t.Fatalf("Allow(%+v) = %v, %v before a failure that should be allowed", a, w, err)
	}
	if err := th.Failure(ctx, a); err != nil {
		t.Fatal(err)
	}
}

func allowed(th *Throttle, a Attempt) (time.Duration, bool) {
	w, err := th.Allow(ctx, a)
	if err != nil && haven.ErrorCode(err) != haven.ETOOMANY {
		panic(err)
	}
	return w, err == nil
}

// TestAddressBackoffGrowsAndEnds is a credential stuffer on one address,
// one guess per account, waiting out each backoff.
func TestAddressBackoffGrowsAndEnds(t *testing.T) {
	th, c := newThrottle(&MemoryStore{})
	addr := "203.0.113.66"
	for i := range 4 {
		fail(t, th, Attempt{Account: fmt.Sprint("victim", i), Addr: addr})
	}
	var waits []time.Duration
	for i := 4; i < 20; i++ {
		fail(t, th, Attempt{Account: fmt.Sprint("victim", i), Addr: addr})
		w, ok := allowed(th, Attempt{Account: "anyone", Addr: addr})
		if ok {
			t.Fatalf("after %d failures the address is not throttled", i+1)
		}
		c.advance(w - time.Nanosecond)
		if _, ok := allowed(th, Attempt{Account: "anyone", Addr: addr}); ok {
			t.Fatalf("after %d failures the wait ended early", i+1)
		}
		c.advance(time.Nanosecond)
		if _, ok := allowed(th, Attempt{Account: "anyone", Addr: addr}); !ok {
			t.Fatalf("after %d failures the wait did not end after %v", i+1, w)
		}
		waits = append(waits, w)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900, 900, 900}
	for i := range want {
		if waits[i] != want[i]*time.Second {
			t.Fatalf("waits = %v, want %v seconds", waits, want)
		}
	}
	// Other addresses are not slowed by this one.
	if _, ok := allowed(th, Attempt{Account: "victim1", Addr: "198.51.100.7"}); !ok {
		t.Fatal("another address is throttled")
	}
}

func TestIPv6ClientIsThrottledByItsSlash64(t *testing.T) {
	th, _ := newThrottle(&MemoryStore{})
	for i := range 5 { // a new address in the same /64 for every guess
		fail(t, th, Attempt{Account: fmt.Sprint("victim", i), Addr: fmt.Sprintf("[2001:db8:aa:bb::%x]:443", i+1)})
	}
	if _, ok := allowed(th, Attempt{Account: "x", Addr: "2001:db8:aa:bb:ffff::1"}); ok {
		t.Fatal("rotating addresses within one /64 escaped the address limit")
	}
}

// TestOneAddressCannotLockAnAccount: an attacker on one address hammers
// the victim's account for a day, waiting out every backoff; the victim,
// from anywhere else, is never held back.
func TestOneAddressCannotLockAnAccount(t *testing.T) {
	th, c := newThrottle(&MemoryStore{})
	attacker := Attempt{Account: "victim", Addr: "203.0.113.66"}
	victim := Attempt{Account: "victim", Addr: "198.51.100.7"}
	for range 200 {
		if w, ok := allowed(th, attacker); !ok {
			c.advance(w)
		}
		fail(t, th, attacker)
		if _, ok := allowed(th, victim); !ok {
			t.Fatalf("one address locked the account at %v", c.t)
		}
	}
}

// TestManyAddressesSlowAnAccountButNeverForever: a botnet of 20 addresses
// guesses at one account. The account then waits, except on the victim's
// known device, and the wait ends.
func TestManyAddressesSlowAnAccountButNeverForever(t *testing.T) {
	th, c := newThrottle(&MemoryStore{})
	for i := range 20 {
		fail(t, th, Attempt{Account: "victim", Addr: fmt.Sprintf("192.0.2.%d", i+1)})
	}
	fresh := Attempt{Account: "victim", Addr: "198.51.100.7"}
	w, ok := allowed(th, fresh)
	if ok || w != time.Second {
		t.Fatalf("after 20 failures from 20 addresses: allowed %v, wait %v; want a 1 s wait", ok, w)
	}
	if _, ok := allowed(th, Attempt{Account: "victim", Addr: "198.51.100.7", KnownDevice: true, Device: "victims-laptop"}); !ok {
		t.Fatal("the victim's known device is locked out by strangers' failures")
	}
	// The botnet keeps going, each bot waiting out the account's backoff.
	for i := range 200 {
		if w, ok := allowed(th, fresh); !ok {
			c.advance(w)
		}
		fail(t, th, Attempt{Account: "victim", Addr: fmt.Sprintf("192.0.2.%d", i%250+1)})
		if w, _ := allowed(th, fresh); w > 15*time.Minute {
			t.Fatalf("account wait %v exceeds the 15 minute cap", w)
		}
	}
	c.advance(15 * time.Minute)
	if _, ok := allowed(th, fresh); !ok {
		t.Fatal("the account is still locked 15 minutes after the last failure")
	}
	// A day of quiet forgets the history: one more failure costs nothing.
	c.advance(24 * time.Hour)
	fail(t, th, Attempt{Account: "victim", Addr: "192.0.2.1"})
	if _, ok := allowed(th, fresh); !ok {
		t.Fatal("a failure after a quiet day is punished for old history")
	}
}

// TestKnownDeviceIsThrottledByItself: the account's own device is exempt
// from the account's count, not from throttling. Failures it makes (a
// thief with the device cookie guessing from many addresses) are counted
// per device: that device waits, strangers' count is not raised by them,
// the owner's other known device is untouched, and a success clears them.
func TestKnownDeviceIsThrottledByItself(t *testing.T) {
	st := &MemoryStore{}
	th, c := newThrottle(st)
	stolen := Attempt{Account: "victim", KnownDevice: true, Device: "victims-laptop"}
	for i := range 5 {
		stolen.Addr = fmt.Sprintf("192.0.2.%d", i+1)
		fail(t, th, stolen)
	}
	stolen.Addr = "192.0.2.99" // a fresh address does not help
	w, ok := allowed(th, stolen)
	if ok || w != time.Second {
		t.Fatalf("after 5 failures from the device: allowed %v, wait %v; want a 1 s wait", ok, w)
	}
	if r, _ := st.Get(ctx, "acct:victim"); r.Failures != 0 {
		t.Fatalf("the device's failures raised the account's count to %d", r.Failures)
	}
	if _, ok := allowed(th, Attempt{Account: "victim", Addr: "198.51.100.7", KnownDevice: true, Device: "victims-phone"}); !ok {
		t.Fatal("one known device's failures hold back another")
	}
	// KnownDevice without a device id is an unknown device.
	if deviceKey(Attempt{Account: "victim", KnownDevice: true}) != "" {
		t.Fatal("a known device without an id has a count of its own")
	}
	c.advance(w)
	if err := th.Success(ctx, stolen); err != nil {
		t.Fatal(err)
	}
	if _, ok := allowed(th, stolen); !ok {
		t.Fatal("a success did not clear the device's count")
	}
}

// TestSuccessClearsOwnTyposButNotFailuresAgainstOthers: a clinic's shared
// address recovers when its users sign in, but an attacker cannot wash its
// address by signing in to an account of its own.
func TestSuccessClearsOwnTyposButNotFailuresAgainstOthers(t *testing.T) {
	st := &MemoryStore{}
	th, _ := newThrottle(st)
	clinic := "198.51.100.7"
	for range 4 {
		fail(t, th, Attempt{Account: "nurse", Addr: clinic})
	}
	if err := th.Success(ctx, Attempt{Account: "nurse", Addr: clinic}); err != nil {
		t.Fatal(err)
	}
	if r, _ := st.Get(ctx, addressKey(clinic)); r.Failures != 0 {
		t.Fatalf("clinic address keeps %d failures after its user signed in", r.Failures)
	}
	if r, _ := st.Get(ctx, "acct:nurse"); r.Failures != 0 {
		t.Fatalf("account keeps %d failures after signing in", r.Failures)
	}

	attacker := "203.0.113.66"
	for i := range 4 {
		fail(t, th, Attempt{Account: fmt.Sprint("victim", i), Addr: attacker})
	}
	fail(t, th, Attempt{Account: "mine", Addr: attacker})
	if err := th.Success(ctx, Attempt{Account: "mine", Addr: attacker}); err != nil {
		t.Fatal(err)
	}
	fail(t, th, Attempt{Account: "victim9", Addr: attacker})
	if _, ok := allowed(th, Attempt{Account: "victim10", Addr: attacker}); ok {
		t.Fatal("signing in to its own account reset the attacker's address")
	}
}

func TestUnknownAccountsAreThrottledAlike(t *testing.T) {
	th, _ := newThrottle(&MemoryStore{})
	for i := range 20 {
		fail(t, th, Attempt{Account: "index-of-an-email-with-no-account", Addr: fmt.Sprintf("192.0.2.%d", i+1)})
	}
	_, err := th.Allow(ctx, Attempt{Account: "index-of-an-email-with-no-account", Addr: "198.51.100.7"})
	if haven.ErrorCode(err) != haven.ETOOMANY {
		t.Fatalf("Allow = %v, want %s as for a real account", err, haven.ETOOMANY)
	}
}

func TestMemoryIsBoundedAndAnAddressFloodKeepsAccountCounts(t *testing.T) {
	st := &MemoryStore{MaxEntries: 100}
	th, _ := newThrottle(st)
	for i := range 20 {
		fail(t, th, Attempt{Account: "victim", Addr: fmt.Sprintf("192.0.2.%d", i+1)})
	}
	// A flood from a thousand new addresses, all at one decoy account.
	for i := range 1000 {
		th.Failure(ctx, Attempt{Account: "decoy", Addr: fmt.Sprintf("10.%d.%d.1", i/250, i%250)})
	}
	if n := st.Len(); n > 300 {
		t.Fatalf("store holds %d records, want at most 3 kinds × 100", n)
	}
	if _, ok := allowed(th, Attempt{Account: "victim", Addr: "198.51.100.7"}); ok {
		t.Fatal("the address flood evicted the victim account's count")
	}
}

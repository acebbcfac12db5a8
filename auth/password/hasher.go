package password

import (
	"context"
	"crypto/fips140"
	"runtime"
	"strings"

	"haven"
)

// Hasher runs argon2id in a bounded pool. Each hash holds Params.Memory of
// RAM and a core for tens of milliseconds, so unbounded hashing is how a
// flood of sign-in attempts would exhaust memory or starve every other
// request. The Hasher lets at most Concurrency hashes run, lets at most
// QueueLimit more wait (each waiting only as long as its context allows),
// and turns the rest away at once with haven.ETOOMANY.
//
// A Hasher is safe for concurrent use.
type Hasher struct {
	params Params
	// tokens holds one token per DefaultParams-sized share of the memory
	// budget; a hash takes as many as its memory needs, so a stored hash with
	// larger parameters counts for what it costs.
	tokens chan struct{}
	// gather serialises token gathering so two large hashes cannot each hold
	// half of what they need and wait for each other forever.
	gather chan struct{}
	// admitted bounds running plus waiting callers.
	admitted chan struct{}

	dummySalt []byte
	dummyKey  []byte
}

// HasherConfig sizes a Hasher. Zero fields take the defaults described.
type HasherConfig struct {
	// Params for new hashes; DefaultParams if zero.
	Params Params
	// Concurrency is how many hashes may run at once. The default is half of
	// GOMAXPROCS (at least one), leaving the other half of the cores to the
	// patients and clinicians already signed in while a flood of attempts
	// queues here. It is lowered to fit MemoryBudget.
	Concurrency int
	// MemoryBudget in bytes caps the memory running hashes may hold;
	// default 256 MiB.
	MemoryBudget uint64
	// QueueLimit is how many callers may wait for a slot; default 32 per
	// slot, about a second of work at default parameters.
	QueueLimit int
}

// NewHasher returns a Hasher sized by cfg.
func NewHasher(cfg HasherConfig) *Hasher {
	p := cfg.Params
	if p == (Params{}) {
		p = DefaultParams
	}
	if p.PBKDF2Iterations == 0 {
		p.PBKDF2Iterations = DefaultParams.PBKDF2Iterations
	}
	n := cfg.Concurrency
	if n <= 0 {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	budget := cfg.MemoryBudget
	if budget == 0 {
		budget = 256 << 20
	}
	n = max(1, min(n, int(budget/(uint64(p.Memory)<<10))))
	q := cfg.QueueLimit
	if q <= 0 {
		q = 32 * n
	}
	h := &Hasher{
		params:    p,
		tokens:    make(chan struct{}, n),
		gather:    make(chan struct{}, 1),
		admitted:  make(chan struct{}, n+q),
		dummySalt: newSalt(p.SaltLen),
		dummyKey:  newSalt(p.KeyLen),
	}
	for range n {
		h.tokens <- struct{}{}
	}
	return h
}

// Concurrency reports how many hashes the Hasher runs at once.
func (h *Hasher) Concurrency() int { return cap(h.tokens) }

// errBusy is what a caller turned away sees: the same answer whatever the
// account, so it reveals nothing about who exists.
func errBusy() error {
	return haven.Errorf(haven.ETOOMANY, "too many sign-in attempts are being processed; try again shortly")
}

// run executes fn once the pool admits it, holding tokens for memKiB.
func (h *Hasher) run(ctx context.Context, memKiB uint32, fn func()) error {
	select {
	case h.admitted <- struct{}{}:
	default:
		return errBusy()
	}
	defer func() { <-h.admitted }()

	need := max(1, min(cap(h.tokens), int((uint64(memKiB)+uint64(h.params.Memory)-1)/uint64(h.params.Memory))))
	select {
	case h.gather <- struct{}{}:
	case <-ctx.Done():
		return haven.Wrap(haven.ETOOMANY, ctx.Err(), "sign-in is busy; try again shortly")
	}
	held := 0
	release := func() {
		for ; held > 0; held-- {
			h.tokens <- struct{}{}
		}
	}
	for held < need {
		select {
		case <-h.tokens:
			held++
		case <-ctx.Done():
			<-h.gather
			release()
			return haven.Wrap(haven.ETOOMANY, ctx.Err(), "sign-in is busy; try again shortly")
		}
	}
	<-h.gather
	defer release()
	inBackground(fn)
	return nil
}

// Hash returns the PHC-encoded argon2id hash of pw, or in FIPS 140-3 mode
// its PBKDF2-HMAC-SHA-256 hash. It does not apply Check: call Check first
// when a password is being set.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	n, ok := normalize(pw)
	if !ok {
		return "", haven.Errorf(haven.EINVALID, "password must be valid text of at most %d bytes", MaxBytes)
	}
	salt := newSalt(h.params.SaltLen)
	if fips140.Enabled() {
		key, err := h.pbkdf2(ctx, h.params.PBKDF2Iterations, n, salt)
		if err != nil {
			return "", err
		}
		return encodePBKDF2(h.params.PBKDF2Iterations, salt, key), nil
	}
	var key []byte
	var herr error
	if err := h.run(ctx, h.params.Memory, func() { key, herr = hash(h.params, n, salt) }); err != nil {
		return "", err
	}
	if herr != nil {
		return "", haven.Wrap(haven.EINTERNAL, herr, "Internal error.")
	}
	return encode(h.params, salt, key), nil
}

// pbkdf2 runs PBKDF2 in the pool. It holds one memory share: it needs
// almost no memory, but a core for as long as an argon2id hash.
func (h *Hasher) pbkdf2(ctx context.Context, iter uint32, n string, salt []byte) ([]byte, error) {
	var key []byte
	var kerr error
	if err := h.run(ctx, h.params.Memory, func() { key, kerr = hashPBKDF2(iter, n, salt) }); err != nil {
		return nil, err
	}
	if kerr != nil {
		return nil, haven.Wrap(haven.EINTERNAL, kerr, "Internal error.")
	}
	return key, nil
}

// Verify reports whether pw matches encoded, comparing in constant time.
// A wrong password is (false, nil). A stored hash that cannot be parsed is
// an internal error, never a match. rehash is true when the match used
// weaker parameters than the Hasher's, so the caller should store a fresh
// Hash of pw.
//
// In FIPS 140-3 mode an argon2id hash (set before the mode was turned on)
// is not checked: argon2id is outside the module. It answers as a wrong
// password, after the same work as VerifyDummy, because any other answer
// would tell a stranger that the email has an account; the person sets a
// new password through the reset link (see the README's "FIPS 140-3 mode").
func (h *Hasher) Verify(ctx context.Context, pw, encoded string) (ok, rehash bool, err error) {
	n, valid := normalize(pw)
	if !valid {
		// No password that could have been set looks like this, and the
		// caller's unknown-account path (VerifyDummy) answers the same way.
		n = ""
	}
	if strings.HasPrefix(encoded, pbkdf2Prefix) {
		iter, salt, want, err := decodePBKDF2(encoded)
		if err != nil {
			return false, false, haven.Wrap(haven.EINTERNAL, err, "Internal error.")
		}
		got, err := h.pbkdf2(ctx, iter, n, salt)
		if err != nil {
			return false, false, err
		}
		if !valid || !equal(got, want) {
			return false, false, nil
		}
		return true, needsRehash(encoded, h.params), nil
	}
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, haven.Wrap(haven.EINTERNAL, err, "Internal error.")
	}
	if fips140.Enabled() {
		return false, false, h.VerifyDummy(ctx, pw)
	}
	var got []byte
	var herr error
	if err := h.run(ctx, p.Memory, func() { got, herr = hash(p, n, salt) }); err != nil {
		return false, false, err
	}
	if herr != nil {
		return false, false, haven.Wrap(haven.EINTERNAL, herr, "Internal error.")
	}
	if !valid || !equal(got, want) {
		return false, false, nil
	}
	return true, needsRehash(encoded, h.params), nil
}

// VerifyDummy does the work of a Verify against a hash no password matches.
// Call it when the account does not exist (or is disabled), so an unknown
// email takes as long, and is queued and refused under load the same way,
// as a known one with a wrong password: timing must not reveal who has an
// account. It returns only the pool's errors; it never reports a match.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) error {
	n, valid := normalize(pw)
	if !valid {
		n = ""
	}
	if fips140.Enabled() {
		got, err := h.pbkdf2(ctx, h.params.PBKDF2Iterations, n, h.dummySalt)
		if err != nil {
			return err
		}
		_ = equal(got, h.dummyKey)
		return nil
	}
	var got []byte
	if err := h.run(ctx, h.params.Memory, func() { got, _ = hash(h.params, n, h.dummySalt) }); err != nil {
		return err
	}
	_ = equal(got, h.dummyKey) // the comparison Verify would make, for equal timing
	return nil
}

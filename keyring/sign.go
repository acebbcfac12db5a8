package keyring

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"

	"haven"
)

// KindSigning is a practice's Ed25519 signing key: its 32-byte seed,
// wrapped by the practice key like a data key, so it is re-wrapped when
// the practice key rotates and a dump of the key table holds no usable
// private key. One active version per practice, made on first use.
const KindSigning = "signing"

// ErrBadSignature is the cause when a signature does not verify: the
// signed bytes, the signature or the key id were changed.
var ErrBadSignature = errors.New("keyring: signature does not verify")

// Sign signs msg with the practice's Ed25519 key, creating the key on
// first use, and returns the signature and the id of the key that made it
// (store both: Verify needs the id, and a later key version must not break
// the check of an old signature).
//
// msg must be a canonical encoding that names what it is (a record type
// and version, say "haven.note.v1") so a signature over one kind of record
// can never be read as one over another: the key is the practice's, shared
// by everything it signs.
//
// Several nodes on one store may call Sign at once for a practice that has
// no key yet; they end with one key (the loser of the insert reads the
// winner's), so every signature of the practice verifies under one key.
func (k *Keyring) Sign(ctx context.Context, practiceID string, msg []byte) (sig []byte, keyID string, err error) {
	if err := validPracticeID(practiceID); err != nil {
		return nil, "", err
	}
	var nb [64]byte
	name := appendCacheName(nb[:0], "s", practiceID)
	for range 3 {
		e, _ := k.cache.get(name)
		if e == nil {
			if e, err = k.loadSigner(ctx, practiceID, string(name)); err != nil {
				return nil, "", err
			}
		}
		var priv [ed25519.PrivateKeySize]byte
		if k.cache.copySigner(e, &priv) {
			sig = ed25519.Sign(priv[:], msg)
			clear(priv[:])
			return sig, e.id, nil
		}
	}
	return nil, "", haven.Errorf(haven.EUNAVAILABLE, "signing key cache is thrashing; try again")
}

// VerifierKey returns the public half of the practice's signing key keyID,
// for a caller that checks signatures itself or publishes the key. It
// returns haven.ENOTFOUND if the practice has no signing key with that id
// (another practice's key id is not found either).
func (k *Keyring) VerifierKey(ctx context.Context, practiceID, keyID string) (ed25519.PublicKey, error) {
	if err := validPracticeID(practiceID); err != nil {
		return nil, err
	}
	if pub := k.verifiers.get(practiceID, keyID); pub != nil {
		return pub, nil
	}
	var found *haven.WrappedKey
	err := k.listAll(ctx, practiceID, KindSigning, "", func(wk haven.WrappedKey) error {
		if wk.ID == keyID {
			found = &wk
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if found == nil || found.State == StateDestroyed {
		return nil, haven.Errorf(haven.ENOTFOUND, "no such signing key")
	}
	priv, err := k.unwrapSigner(ctx, *found)
	if err != nil {
		return nil, err
	}
	defer clear(priv)
	pub := append(ed25519.PublicKey(nil), priv.Public().(ed25519.PublicKey)...)
	k.verifiers.put(practiceID, keyID, pub)
	return pub, nil
}

// Verify checks that sig is the signature of msg by the practice's signing
// key keyID. A signature that does not match returns a haven.EINVALID
// error wrapping ErrBadSignature; an unknown key id returns
// haven.ENOTFOUND; anything else means the key could not be read.
func (k *Keyring) Verify(ctx context.Context, practiceID, keyID string, msg, sig []byte) error {
	pub, err := k.VerifierKey(ctx, practiceID, keyID)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, msg, sig) {
		return haven.Wrap(haven.EINVALID, ErrBadSignature, "the signature does not match the signed content")
	}
	return nil
}

// loadSigner reads (or on first use creates) the practice's newest signing
// key, unwraps it and caches it under name.
func (k *Keyring) loadSigner(ctx context.Context, practiceID, name string) (*cacheEntry, error) {
	for range 3 {
		wk, err := k.store.GetKey(ctx, practiceID, KindSigning, "", 0)
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			wk, err = k.createSigner(ctx, practiceID)
			if haven.ErrorCode(err) == haven.ECONFLICT {
				continue // another node made it first: use theirs
			}
		}
		if err != nil {
			return nil, storeErr(err, "cannot read the signing key")
		}
		if wk.State != StateActive {
			return nil, haven.Errorf(haven.EINTERNAL, "newest signing key of practice %s is %s", practiceID, wk.State)
		}
		priv, err := k.unwrapSigner(ctx, wk)
		if err != nil {
			return nil, err
		}
		k.verifiers.put(practiceID, wk.ID, append(ed25519.PublicKey(nil), priv.Public().(ed25519.PublicKey)...))
		e := k.cache.putSigner(name, wk.ID, wk.Version, priv)
		clear(priv)
		return e, nil
	}
	return nil, haven.Errorf(haven.EUNAVAILABLE, "could not settle the signing key of practice %s", practiceID)
}

// createSigner makes version 1 of a practice's signing key under its
// newest practice key. It returns haven.ECONFLICT if one appeared
// meanwhile; nothing of the losing key is kept.
func (k *Keyring) createSigner(ctx context.Context, practiceID string) (haven.WrappedKey, error) {
	pk, err := k.rootWrapped(ctx, practiceID, KindPractice)
	if err != nil {
		return haven.WrappedKey{}, err
	}
	kek, err := k.rootKeyEntry(ctx, pk)
	if err != nil {
		return haven.WrappedKey{}, err
	}
	seed, err := newKey() // ed25519.SeedSize == keySize
	if err != nil {
		return haven.WrappedKey{}, err
	}
	defer clear(seed)
	wk := haven.WrappedKey{PracticeID: practiceID, ID: haven.NewID(), Kind: KindSigning,
		Version: 1, WrappedBy: pk.ID, State: StateActive, CreatedAt: k.now().UTC()}
	if wk.Wrapped, err = wrapWith(kek.aead, seed, wrapAD(wk, pk.ID)); err != nil {
		return haven.WrappedKey{}, err
	}
	if err := k.store.CreateKey(ctx, wk); err != nil {
		return haven.WrappedKey{}, storeErr(err, "cannot store the signing key")
	}
	return wk, nil
}

// unwrapSigner opens a wrapped signing key under its practice key. The
// caller clears the returned key.
func (k *Keyring) unwrapSigner(ctx context.Context, wk haven.WrappedKey) (ed25519.PrivateKey, error) {
	kek, err := k.practiceKeyByID(ctx, wk.PracticeID, wk.WrappedBy)
	if err != nil {
		return nil, err
	}
	seed, err := unwrapWith(kek.aead, wk.Wrapped, wrapAD(wk, wk.WrappedBy))
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "practice key cannot unwrap signing key "+wk.ID)
	}
	defer clear(seed)
	if len(seed) != ed25519.SeedSize {
		return nil, haven.Wrap(haven.EINTERNAL, ErrTampered, "signing key has the wrong size")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// verifierCache holds public signing keys by practice and key id. Public
// keys are not secret and a key id's key never changes, so entries never
// expire; there is one per signing key version of each practice.
type verifierCache struct {
	mu sync.RWMutex
	m  map[[2]string]ed25519.PublicKey
}

func (c *verifierCache) get(practiceID, keyID string) ed25519.PublicKey {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[[2]string{practiceID, keyID}]
}

func (c *verifierCache) put(practiceID, keyID string, pub ed25519.PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[2]string]ed25519.PublicKey{}
	}
	c.m[[2]string{practiceID, keyID}] = pub
}

package keyring

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"

	"haven"
)

// BlindIndex returns HMAC-SHA-256 of value under the practice's index key,
// domain-separated by purpose ("email", "mrn" …), so a row can be found by
// an encrypted value (an email at sign-in, an MRN) without storing or
// querying the value itself. The index key is its own random key, wrapped by
// the root and never used to encrypt; it is made on first use.
//
// The same value always gives the same index within one practice and
// purpose, and unrelated indexes across practices and purposes, so an index
// copied between practices or columns matches nothing. Callers normalise
// value first (lower-case and trim an email): the index matches bytes.
//
// Platform operators, who belong to no practice, use PlatformPracticeID.
//
// The index key is never rotated: rotating it would mean recomputing every
// index from plaintext. RotateRoot re-wraps it like a practice key.
func (k *Keyring) BlindIndex(ctx context.Context, practiceID, purpose string, value []byte) ([]byte, error) {
	if err := validPracticeID(practiceID); err != nil {
		return nil, err
	}
	if !validPurpose(purpose) {
		return nil, haven.Errorf(haven.EINVALID, "blind index purpose must be 1 to 64 of a-z 0-9 . _ -")
	}
	var key [keySize]byte
	defer clear(key[:])
	if err := k.indexKey(ctx, practiceID, &key); err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key[:])
	m.Write(appendLP(appendLP(nil, "haven.blindindex.v1"), purpose))
	m.Write(value)
	return m.Sum(nil), nil
}

func validPurpose(p string) bool {
	if len(p) == 0 || len(p) > 64 {
		return false
	}
	for _, c := range []byte(p) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// indexKey copies the practice's index key into dst, loading it if needed.
// A cached entry can be evicted between lookup and copy; then it reloads.
func (k *Keyring) indexKey(ctx context.Context, practiceID string, dst *[keySize]byte) error {
	name := cacheName("i", practiceID)
	for range 3 {
		e, _ := k.cache.get([]byte(name))
		if e == nil {
			wk, err := k.rootWrapped(ctx, practiceID, KindIndex)
			if err != nil {
				return err
			}
			raw, err := k.rootUnwrap(ctx, wk)
			if err != nil {
				return err
			}
			e, err = k.cache.put(name, wk.ID, wk.Version, raw, 0)
			clear(raw)
			if err != nil {
				return err
			}
		}
		if k.cache.copyRaw(e, dst) {
			return nil
		}
	}
	return haven.Errorf(haven.EUNAVAILABLE, "index key cache is thrashing; try again")
}

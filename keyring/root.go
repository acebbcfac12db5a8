package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"

	"haven"
)

// Root is the top of the key hierarchy: it wraps practice keys and index
// keys and nothing else. It lives outside the database (a key file kept
// apart from the data, or a KMS), so a stolen database or backup holds only
// keys wrapped under something the thief does not have.
type Root interface {
	// ID names the root without revealing it. Each wrapped key records the
	// ID of the root that wrapped it, so a wrong key file is named as such
	// instead of failing as a mysterious decryption error.
	ID() string
	// Wrap encrypts plaintext bound to ad; Unwrap reverses it and fails if
	// wrapped or ad was changed.
	Wrap(ctx context.Context, plaintext, ad []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped, ad []byte) ([]byte, error)
}

// keySize is the size of every symmetric key in the hierarchy: AES-256,
// so what is sealed today holds against a quantum adversary's Grover
// speed-up for as long as health records must stay secret.
const keySize = 32

// wrapFormatV1 starts every key wrapped by this package:
// 0x01 || 12-byte random nonce || AES-256-GCM(key, ad).
const wrapFormatV1 = 0x01

// ErrTampered is the cause inside every error for a ciphertext, wrapped key
// or stream that failed authentication: it was edited, moved to another
// record, truncated, or is under a different key.
var ErrTampered = errors.New("keyring: authentication failed")

// ErrKeyDestroyed is the cause when the data key a value needs was
// destroyed by crypto-shredding.
var ErrKeyDestroyed = errors.New("keyring: data key destroyed")

// newGCM returns AES-256-GCM in Go's random-nonce form: Seal draws the
// 96-bit nonce inside the FIPS 140-3 module and writes nonce || ciphertext,
// Open reads it back from the front. That is the only GCM Go allows under
// GODEBUG=fips140=only (a caller-chosen IV is refused, SP 800-38D §8.2 and
// FIPS 140-3 IG C.H), and it is byte for byte the layout Haven has always
// written (nonce right before ciphertext), so values sealed before FIPS
// mode open unchanged.
func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != keySize {
		return nil, haven.Errorf(haven.EINTERNAL, "key must be %d bytes", keySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "aes key setup failed")
	}
	gcm, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "gcm setup failed")
	}
	return gcm, nil
}

// wrapWith seals a key under aead in the v1 wrap format.
func wrapWith(aead cipher.AEAD, plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, 1, 1+len(plaintext)+aead.Overhead())
	out[0] = wrapFormatV1
	return aead.Seal(out, nil, plaintext, ad), nil
}

// unwrapWith opens a key sealed by wrapWith.
func unwrapWith(aead cipher.AEAD, wrapped, ad []byte) ([]byte, error) {
	if len(wrapped) < 1+aead.Overhead() || wrapped[0] != wrapFormatV1 {
		return nil, haven.Wrap(haven.EINTERNAL, ErrTampered, "wrapped key is malformed")
	}
	pt, err := aead.Open(nil, nil, wrapped[1:], ad)
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, ErrTampered, "wrapped key failed authentication")
	}
	return pt, nil
}

// appendLP appends s with a 4-byte big-endian length prefix, so a sequence
// of fields encodes unambiguously: ("ab","c") and ("a","bc") differ.
func appendLP(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// wrapAD is the associated data for wrapping key k: it binds the wrapped
// bytes to the row they sit in, so copying one practice's wrapped key into
// another practice's row (or a patient's into another patient's) fails.
func wrapAD(k haven.WrappedKey, wrappedBy string) []byte {
	b := appendLP(nil, "haven.keywrap.v1")
	b = appendLP(b, k.PracticeID)
	b = appendLP(b, k.Kind)
	b = appendLP(b, k.PatientID)
	b = appendLP(b, k.ID)
	b = binary.BigEndian.AppendUint64(b, uint64(k.Version))
	return appendLP(b, wrappedBy)
}

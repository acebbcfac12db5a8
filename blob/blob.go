// Package blob owns the storage of large opaque byte streams: photos,
// documents and medical images after the service layer has encrypted them
// with the keyring's streaming AEAD. It defines the Store interface, the
// rules for blob keys, and nothing else; blob/dir and blob/s3 implement it.
//
// blob never holds a key and must never import haven/keyring: a store sees
// ciphertext only, so a stolen blob directory or bucket reveals no PHI, and
// no code path can reach plaintext without passing policy and audit in the
// service layer first. TestPackageBoundaries (imports_test.go at the module
// root) enforces the boundary.
//
// Keys are not secrets and carry no PHI: they are built from ids (practice,
// patient, file). They are validated strictly so a key can never name a
// path outside the store, whatever backend is wired in.
package blob

import (
	"context"
	"io"

	"haven"
)

// Store keeps opaque blobs under keys.
//
// Every method returns a *haven.Error: EINVALID for a key that fails
// ValidKey, ENOTFOUND for a blob that does not exist, EUNAVAILABLE when the
// backend cannot be reached.
type Store interface {
	// Put stores everything r yields under key, streaming it: memory use
	// does not grow with the blob's size. It replaces any blob already
	// under key atomically: a reader sees the old blob or the new one,
	// never a mixture, and a Put that fails (the reader errs, the context
	// ends, the machine crashes) leaves the old blob, or none, in place.
	// It returns the number of bytes stored.
	Put(ctx context.Context, key string, r io.Reader) (n int64, err error)

	// Get opens the blob under key for reading. The caller must Close it.
	Get(ctx context.Context, key string) (io.ReadCloser, error)

	// Delete removes the blob under key. Deleting a blob that does not
	// exist is not an error, so a retried erasure after a crash succeeds.
	Delete(ctx context.Context, key string) error

	// Stat returns the size in bytes of the blob under key.
	Stat(ctx context.Context, key string) (size int64, err error)
}

// MaxKeyLen is the longest key accepted. It keeps a key, turned into one
// file name with a temporary-file suffix, below the 255-byte name limit of
// common file systems.
const MaxKeyLen = 200

// ValidKey returns nil if key may name a blob, or an EINVALID *haven.Error.
//
// A key is one or more segments joined by "/"; each segment is made of
// lower-case ASCII letters, digits, "_" and "-". So a key has no "." at all
// (no "..", no hidden files), no leading or trailing "/", no empty segment,
// no upper case (file systems that fold case cannot make two keys collide),
// and no byte that a shell, URL or file system treats specially. The error
// message never repeats the key: a rejected key is attacker input.
func ValidKey(key string) error {
	if key == "" {
		return haven.Errorf(haven.EINVALID, "blob key is empty")
	}
	if len(key) > MaxKeyLen {
		return haven.Errorf(haven.EINVALID, "blob key longer than %d bytes", MaxKeyLen)
	}
	prev := byte('/') // a key may not start with "/"
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_', c == '-':
		case c == '/':
			if prev == '/' {
				return haven.Errorf(haven.EINVALID, "blob key has an empty segment")
			}
		default:
			return haven.Errorf(haven.EINVALID, "blob key may hold only a-z, 0-9, '_', '-' and '/'")
		}
		prev = c
	}
	if prev == '/' {
		return haven.Errorf(haven.EINVALID, "blob key has an empty segment")
	}
	return nil
}

// NotFound returns the ENOTFOUND error stores report for a missing blob.
func NotFound(key string) error {
	return haven.Errorf(haven.ENOTFOUND, "blob %s not found", key)
}

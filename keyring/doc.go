// Package keyring owns Haven's keys and every encryption of PHI at rest:
// the root key (a local key file or a KMS), a key per practice (KEK) wrapped
// by the root, a data key per patient (DEK) wrapped by the practice key,
// AES-256-GCM over each field and each blob bound by associated data to
// where it belongs, blind indexes for lookups, online rotation and
// crypto-shredding.
//
// Only the service layer may hold a *Keyring, after policy has allowed an
// access and audit has recorded it. Storage never imports this package: it
// persists wrapped keys (haven.WrappedKey) through the small [Store]
// interface and sealed values as opaque bytes. This package must never
// log, return in an error, or persist a plaintext key or a plaintext value.
//
// Algorithms are limited to what Go's FIPS 140-3 module offers (AES-GCM,
// HMAC-SHA-256, HKDF-SHA-256), so a FIPS mode can follow without a
// rewrite. The one exception is argon2id, used only to seal a local root
// key file under an operator's passphrase.
package keyring

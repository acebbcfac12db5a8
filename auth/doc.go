// Package auth is the front door to Haven's identity primitives; the work
// is done in its sub-packages, each small and free of HTTP and SQL:
//
//   - password: the length rule, the breached-password list, argon2id
//     hashes in PHC format and the bounded Hasher pool.
//   - totp: RFC 6238 codes, one use per code, enrolment URI (web draws
//     its QR code).
//   - recovery: single-use recovery codes, stored hashed.
//   - session: hashed session tokens, timeouts, step-up, device change.
//   - throttle: backoff per address and per account that always ends.
//
// A sign-in, in the order that keeps it free of user enumeration (the
// example in this directory runs it):
//
//  1. throttle.Allow for (blind index of the email typed, client address);
//     if refused, stop without touching the password.
//  2. Look the account up by blind index. If there is none, or it is
//     disabled, call Hasher.VerifyDummy, record a throttle Failure and
//     answer exactly as for a wrong password.
//  3. Hasher.Verify; on a mismatch record a Failure. On a match with
//     rehash, store Hasher.Hash of the password.
//  4. Second factor: totp.Use (or recovery.Redeem, or WebAuthn), Failure
//     on a wrong code.
//  5. throttle.Success, session.New, store it, set the token in a __Host-
//     cookie, and audit the sign-in.
//
// This package must never hold a secret or a password; it has no code.
package auth

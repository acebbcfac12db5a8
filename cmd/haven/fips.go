package main

import (
	"crypto/fips140"
	"fmt"
)

// FIPS 140-3 mode is Go's, not a setting of Haven's: it is fixed when the
// process starts (GODEBUG=fips140=on or only, or a build with GOFIPS140),
// and every package that owns a primitive asks crypto/fips140 itself and
// picks its approved form (PBKDF2 for passwords, SHA-256 TOTP, random-nonce
// AES-GCM). --fips is the operator's assertion that the mode is on: serve
// refuses to start without it rather than run a deployment that must be
// FIPS with argon2id and SHA-1 quietly in use.
func checkFIPS(required bool) error {
	if required && !fips140.Enabled() {
		return fmt.Errorf("--fips: Go's FIPS 140-3 mode is off; start haven with GODEBUG=fips140=on (or fips140=only to make any non-approved algorithm fail), or build it with GOFIPS140=v1.0.0")
	}
	return nil
}

// fipsStatus is the line serve prints about the mode, so an operator (and
// an auditor reading the log) sees which module is in force.
func fipsStatus() string {
	if !fips140.Enabled() {
		return "FIPS 140-3 mode: off"
	}
	enforced := "on"
	if fips140.Enforced() {
		enforced = "only: non-approved algorithms fail"
	}
	return fmt.Sprintf("FIPS 140-3 mode: %s (Go Cryptographic Module %s)", enforced, fips140.Version())
}

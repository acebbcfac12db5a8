package backup

import (
	"crypto/fips140"

	"haven"
)

// notInFIPSMode refuses a backup in FIPS 140-3 mode. A backup's outer layer
// is age: X25519 (with ML-KEM-768) to wrap the file key and
// ChaCha20-Poly1305 over the content, neither inside Go's FIPS module. It
// is refused rather than written without that layer, which is what keeps a
// stolen backup from showing even which patients or files exist.
func notInFIPSMode() error {
	if fips140.Enabled() {
		return haven.Errorf(haven.EUNAVAILABLE, "backups are encrypted with age (X25519, ChaCha20-Poly1305), which is not FIPS 140-3 approved: in FIPS mode back up the database and the blob store with their own tools (their contents are already AES-256-GCM ciphertext under Haven's keys); see the README's \"FIPS 140-3 mode\"")
	}
	return nil
}

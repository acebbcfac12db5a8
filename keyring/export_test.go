package keyring

import "testing"

// UseCheapArgon2 makes key files created during t use argon2id's smallest
// accepted memory, so passphrase tests stay fast. Files record their own
// parameters, so opening goes through exactly the production path.
func UseCheapArgon2(t testing.TB) {
	m := argonMemory
	argonMemory = 8 * 1024
	t.Cleanup(func() { argonMemory = m })
}

package keyring

import (
	"context"
	"io"
	"testing"
)

// UseCheapArgon2 makes key files created during t use argon2id's smallest
// accepted memory, so passphrase tests stay fast. Files record their own
// parameters, so opening goes through exactly the production path.
func UseCheapArgon2(t testing.TB) {
	m := argonMemory
	argonMemory = 8 * 1024
	t.Cleanup(func() { argonMemory = m })
}

// SealStreamChunked seals with a chunk size other than 64 KiB, so tests
// can build many-chunk streams from a few bytes.
func SealStreamChunked(k *Keyring, ctx context.Context, dst io.Writer, ad AD, chunkSize int) (io.WriteCloser, error) {
	return k.sealStream(ctx, dst, ad, chunkSize)
}

// ParseStreamHeader exposes the stream header parser to the fuzz target.
func ParseStreamHeader(b []byte) (keyVersion, chunkSize int, err error) {
	h, err := parseStreamHeader(b)
	return h.keyVersion, h.chunkSize, err
}

const StreamHeaderLen = streamHeaderLen

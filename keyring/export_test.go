package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"crypto/rand"
	"encoding/binary"
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

// SealStreamV1 writes data in stream format 1 (counter nonces), as Haven
// wrote blobs before FIPS 140-3 mode, so tests can show such blobs still
// open. fips140=only refuses the caller-built nonces format 1 needs, so
// the fixture is made outside enforcement; only opening it is under test.
func SealStreamV1(k *Keyring, ctx context.Context, ad AD, data []byte, chunkSize int) (out []byte, err error) {
	fips140.WithoutEnforcement(func() {
		var e *cacheEntry
		if e, err = k.dataKey(ctx, ad.PracticeID, ad.PatientID, 0, true); err != nil {
			return
		}
		h := streamHeader{keyVersion: e.version, chunkSize: chunkSize}
		h.raw[0] = streamFormatV1
		h.raw[1] = keyKindData
		binary.BigEndian.PutUint32(h.raw[2:6], uint32(e.version))
		binary.BigEndian.PutUint32(h.raw[6:10], uint32(chunkSize))
		rand.Read(h.raw[streamSaltOffset:])
		var sk []byte
		if sk, err = k.streamKey(e, &h, ad); err != nil {
			return
		}
		block, _ := aes.NewCipher(sk)
		var gcm cipher.AEAD
		if gcm, err = cipher.NewGCM(block); err != nil {
			return
		}
		out = append(out, h.raw[:]...)
		var nonce [nonceSize]byte
		copy(nonce[:7], h.raw[streamHeaderLen-7:])
		for i := uint32(0); ; i++ {
			n := min(len(data), chunkSize)
			last := len(data) <= chunkSize
			binary.BigEndian.PutUint32(nonce[7:11], i)
			nonce[11] = 0
			if last {
				nonce[11] = 1
			}
			out = gcm.Seal(out, nonce[:], data[:n], nil)
			data = data[n:]
			if last {
				return
			}
		}
	})
	return out, err
}

package keyring_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"io"
	"testing"
)

// Each keyring benchmark has a same-run baseline of bare AES-256-GCM on
// the same bytes, so the cost of the hierarchy (cache lookup, associated
// data, framing) reads as a ratio:
//
//	go test -run '^$' -bench . -benchmem ./keyring/

// Each pair runs as sub-benchmarks "keyring" and "baseline" so make bench
// prints their ratio.
func BenchmarkSealField(b *testing.B) {
	b.Run("keyring", benchSealField)
	b.Run("baseline", benchRawGCMSealField)
}

func BenchmarkOpenField(b *testing.B) {
	b.Run("keyring", benchOpenField)
	b.Run("baseline", benchRawGCMOpenField)
}

func BenchmarkSealStream(b *testing.B) {
	b.Run("keyring", benchSealStream)
	b.Run("baseline", benchRawGCMSealChunks)
}

func BenchmarkOpenStream(b *testing.B) {
	b.Run("keyring", benchOpenStream)
	b.Run("baseline", benchRawGCMOpenChunks)
}

const fieldSize = 64 // a typical sealed field: an email, a name, a short note

func rawGCM(b *testing.B) cipher.AEAD {
	key := make([]byte, 32)
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	return aead
}

func benchSealField(b *testing.B) {
	k, _, _ := newKeyring(b)
	pt := randomBytes(fieldSize)
	mustSeal(b, k, noteAD, "warm the data key cache")
	ctx := context.Background()
	b.SetBytes(fieldSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Seal(ctx, noteAD, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func benchOpenField(b *testing.B) {
	k, _, _ := newKeyring(b)
	s := mustSeal(b, k, noteAD, string(randomBytes(fieldSize)))
	ctx := context.Background()
	b.SetBytes(fieldSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open(ctx, noteAD, s); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRawGCMSealField is the baseline: a random nonce and one GCM
// seal into a fresh buffer, as any correct use of GCM must do.
func benchRawGCMSealField(b *testing.B) {
	aead := rawGCM(b)
	pt := randomBytes(fieldSize)
	b.SetBytes(fieldSize)
	b.ReportAllocs()
	for b.Loop() {
		out := make([]byte, 12, 12+fieldSize+16)
		rand.Read(out)
		aead.Seal(out, out[:12], pt, nil)
	}
}

func benchRawGCMOpenField(b *testing.B) {
	aead := rawGCM(b)
	nonce := randomBytes(12)
	ct := aead.Seal(nil, nonce, randomBytes(fieldSize), nil)
	b.SetBytes(fieldSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := aead.Open(nil, nonce, ct, nil); err != nil {
			b.Fatal(err)
		}
	}
}

const blobSize = 64 << 20

func benchSealStream(b *testing.B) {
	k, _, _ := newKeyring(b)
	data := randomBytes(blobSize)
	ctx := context.Background()
	b.SetBytes(blobSize)
	b.ReportAllocs()
	for b.Loop() {
		w, err := k.SealStream(ctx, io.Discard, blobAD)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchOpenStream(b *testing.B) {
	k, _, _ := newKeyring(b)
	sealed := sealStream(b, k, blobAD, randomBytes(blobSize), 0)
	ctx := context.Background()
	b.SetBytes(blobSize)
	b.ReportAllocs()
	for b.Loop() {
		r, err := k.OpenStream(ctx, bytes.NewReader(sealed), blobAD)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != blobSize {
			b.Fatal(n, err)
		}
	}
}

// benchRawGCMSealChunks is the streaming baseline: bare AES-256-GCM
// over the same bytes in 64 KiB chunks with a counter nonce, no framing.
func benchRawGCMSealChunks(b *testing.B) {
	aead := rawGCM(b)
	data := randomBytes(blobSize)
	out := make([]byte, 0, 64<<10+16)
	var nonce [12]byte
	b.SetBytes(blobSize)
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < len(data); i += 64 << 10 {
			binary.BigEndian.PutUint32(nonce[7:11], uint32(i>>16))
			io.Discard.Write(aead.Seal(out[:0], nonce[:], data[i:i+64<<10], nil))
		}
	}
}

func benchRawGCMOpenChunks(b *testing.B) {
	aead := rawGCM(b)
	data := randomBytes(blobSize)
	var nonce [12]byte
	var sealed [][]byte
	for i := 0; i < len(data); i += 64 << 10 {
		binary.BigEndian.PutUint32(nonce[7:11], uint32(i>>16))
		sealed = append(sealed, aead.Seal(nil, nonce[:], data[i:i+64<<10], nil))
	}
	buf := make([]byte, 0, 64<<10)
	b.SetBytes(blobSize)
	b.ReportAllocs()
	for b.Loop() {
		for i, c := range sealed {
			binary.BigEndian.PutUint32(nonce[7:11], uint32(i))
			if _, err := aead.Open(buf[:0], nonce[:], c, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Signing and verifying through the keyring (cache lookup, the practice's
// key copied out under a lock) against bare Ed25519 on the same message:
//
//	go test -run '^$' -bench 'Sign|Verify' -benchmem ./keyring/
func BenchmarkSign(b *testing.B) {
	b.Run("keyring", benchSign)
	b.Run("baseline", benchRawSign)
}

func BenchmarkVerify(b *testing.B) {
	b.Run("keyring", benchVerify)
	b.Run("baseline", benchRawVerify)
}

// signedSize is a typical canonical note: a few short paragraphs.
const signedSize = 2048

func benchSign(b *testing.B) {
	k, _, _ := newKeyring(b)
	ctx := context.Background()
	msg := randomBytes(signedSize)
	if _, _, err := k.Sign(ctx, "p1", msg); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := k.Sign(ctx, "p1", msg); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRawSign(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := randomBytes(signedSize)
	b.ReportAllocs()
	for b.Loop() {
		ed25519.Sign(priv, msg)
	}
}

func benchVerify(b *testing.B) {
	k, _, _ := newKeyring(b)
	ctx := context.Background()
	msg := randomBytes(signedSize)
	sig, id, err := k.Sign(ctx, "p1", msg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := k.Verify(ctx, "p1", id, msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRawVerify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := randomBytes(signedSize)
	sig := ed25519.Sign(priv, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

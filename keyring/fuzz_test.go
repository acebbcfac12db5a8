package keyring_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"haven"
	"haven/keyring"
)

// Sealed values and streams come back from storage, which Haven does not
// trust: parsing and opening arbitrary bytes must never panic, and must
// never "open" anything the keyring did not seal.

func FuzzParseSealed(f *testing.F) {
	k, _, _ := newKeyring(f)
	f.Add([]byte(mustSeal(f, k, noteAD, "seed")))
	f.Add([]byte{1, 1, 0, 0, 0, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := keyring.ParseSealed(haven.Sealed(b))
		if err != nil {
			return
		}
		if p.KeyVersion < 1 || len(p.Nonce) != 12 || len(p.Ciphertext) < 16 || 6+len(p.Nonce)+len(p.Ciphertext) != len(b) {
			t.Fatalf("accepted inconsistent parts: %+v from %d bytes", p, len(b))
		}
	})
}

func FuzzOpen(f *testing.F) {
	k, _, _ := newKeyring(f)
	valid := mustSeal(f, k, noteAD, "seed")
	f.Add([]byte(valid))
	f.Add(append([]byte(valid[:6]), make([]byte, 28)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := k.Open(context.Background(), noteAD, haven.Sealed(b))
		if err == nil && !bytes.Equal(b, valid) {
			t.Fatalf("forged value opened to %q", pt)
		}
	})
}

func FuzzOpenStream(f *testing.F) {
	k, _, _ := newKeyring(f)
	valid := sealStream(f, k, blobAD, []byte("a small sealed blob that spans several chunks"), 16)
	empty := sealStream(f, k, blobAD, nil, 16)
	f.Add(valid)
	f.Add(valid[:keyring.StreamHeaderLen])
	f.Add(empty)
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, cs, err := keyring.ParseStreamHeader(b); err == nil && (v < 1 || cs < 16 || cs > 1<<20) {
			t.Fatalf("header parser accepted version %d, chunk size %d", v, cs)
		}
		r, err := k.OpenStream(context.Background(), bytes.NewReader(b), blobAD)
		if err != nil {
			return
		}
		got, err := io.ReadAll(r)
		if err == nil && !bytes.Equal(b, valid) && !bytes.Equal(b, empty) {
			t.Fatalf("forged stream opened to %q", got)
		}
	})
}

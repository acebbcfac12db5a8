package keyring_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"runtime"
	"strconv"
	"testing"
	"testing/iotest"

	"haven/keyring"
)

var blobAD = keyring.AD{PracticeID: "p1", PatientID: "alice", Kind: "blob", RecordID: "b1", Field: "content"}

func sealStream(t testing.TB, k *keyring.Keyring, ad keyring.AD, data []byte, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	var w io.WriteCloser
	var err error
	if chunk == 0 {
		w, err = k.SealStream(context.Background(), &out, ad)
	} else {
		w, err = keyring.SealStreamChunked(k, context.Background(), &out, ad, chunk)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Odd-sized writes, so chunking does not depend on how callers write.
	for p := data; len(p) > 0; {
		n := min(len(p), 7777)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// openStream reads a whole stream; an error from OpenStream or Read counts.
func openStream(k *keyring.Keyring, ad keyring.AD, sealed []byte) ([]byte, error) {
	r, err := k.OpenStream(context.Background(), bytes.NewReader(sealed), ad)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestStreamRoundTripsAtEverySize(t *testing.T) {
	k, _, _ := newKeyring(t)
	const c = 64 << 10
	for _, tc := range []struct{ n, chunk int }{
		{0, 0}, {1, 0}, {c - 1, 0}, {c, 0}, {c + 1, 0}, {3 * c, 0}, {3*c + 5, 0},
		{0, 16}, {16, 16}, {17, 16}, {1000, 16}, {4096, 64},
	} {
		data := randomBytes(tc.n)
		sealed := sealStream(t, k, blobAD, data, tc.chunk)
		// Three ways to read: growing buffers, one byte at a time, and
		// io.Copy (which hands chunks over through WriteTo).
		got, err := openStream(k, blobAD, sealed)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes in %d-byte chunks: %d bytes back, %v", tc.n, tc.chunk, len(got), err)
		}
		r, err := k.OpenStream(context.Background(), bytes.NewReader(sealed), blobAD)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(iotest.OneByteReader(r)); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes read one at a time: %d back, %v", tc.n, len(got), err)
		}
		r, _ = k.OpenStream(context.Background(), bytes.NewReader(sealed), blobAD)
		var out bytes.Buffer
		if _, err := io.Copy(&out, r); err != nil || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("%d bytes copied: %d back, %v", tc.n, out.Len(), err)
		}
		if tc.n >= 16 && bytes.Contains(sealed, data[:16]) {
			t.Fatal("plaintext visible in sealed stream")
		}
	}
}

// chunks splits a sealed stream of 16-byte chunks into header and chunks.
func chunks(sealed []byte) (header []byte, cs [][]byte) {
	header, rest := sealed[:keyring.StreamHeaderLen], sealed[keyring.StreamHeaderLen:]
	for len(rest) > 0 {
		n := min(len(rest), 12+16+16) // nonce, 16-byte chunk, tag
		cs = append(cs, rest[:n])
		rest = rest[n:]
	}
	return header, cs
}

func join(header []byte, cs ...[]byte) []byte {
	return bytes.Join(append([][]byte{header}, cs...), nil)
}

func TestTamperedStreamFailsToOpen(t *testing.T) {
	k, _, _ := newKeyring(t)
	data := randomBytes(5*16 + 9) // five full chunks and a short final one
	sealed := sealStream(t, k, blobAD, data, 16)
	h, cs := chunks(sealed)
	if len(cs) != 6 {
		t.Fatalf("%d chunks", len(cs))
	}
	other := sealStream(t, k, blobAD, data, 16) // same data, same AD, another stream
	_, ocs := chunks(other)

	attacks := map[string][]byte{
		"chunks swapped":             join(h, cs[0], cs[2], cs[1], cs[3], cs[4], cs[5]),
		"chunk dropped":              join(h, cs[0], cs[1], cs[3], cs[4], cs[5]),
		"chunk duplicated":           join(h, cs[0], cs[1], cs[1], cs[2], cs[3], cs[4], cs[5]),
		"final chunk dropped":        join(h, cs[0], cs[1], cs[2], cs[3], cs[4]),
		"chunk from another stream":  join(h, cs[0], ocs[1], cs[2], cs[3], cs[4], cs[5]),
		"header from another stream": join(other[:keyring.StreamHeaderLen], cs...),
		"byte appended":              append(bytes.Clone(sealed), 0),
		"final chunk repeated":       join(h, cs[0], cs[1], cs[2], cs[3], cs[4], cs[5], cs[5]),
		"whole chunk appended":       join(h, cs[0], cs[1], cs[2], cs[3], cs[4], cs[5], cs[0]),
		"header only":                bytes.Clone(h),
		"empty":                      nil,
	}
	for n := range len(sealed) {
		attacks["cut to "+strconv.Itoa(n)] = sealed[:n]
	}
	for i := range len(sealed) * 8 {
		b := bytes.Clone(sealed)
		b[i/8] ^= 1 << (i % 8)
		attacks["bit flipped "+strconv.Itoa(i)] = b
	}
	for name, b := range attacks {
		got, err := openStream(k, blobAD, b)
		if err == nil {
			t.Fatalf("%s: opened %d bytes without error", name, len(got))
		}
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s: reported as a clean end of stream", name)
		}
		if r, err := k.OpenStream(context.Background(), bytes.NewReader(b), blobAD); err == nil {
			if _, err := io.Copy(io.Discard, r); err == nil {
				t.Fatalf("%s: io.Copy finished without error", name)
			}
		}
	}
	for name, ad := range map[string]keyring.AD{
		"another record":  {PracticeID: "p1", PatientID: "alice", Kind: "blob", RecordID: "b2", Field: "content"},
		"another patient": {PracticeID: "p1", PatientID: "bob", Kind: "blob", RecordID: "b1", Field: "content"},
	} {
		sealStream(t, k, ad, []byte("x"), 16) // give bob a key of his own
		if _, err := openStream(k, ad, sealed); err == nil {
			t.Fatalf("stream moved to %s opened", name)
		}
	}
	if got, err := openStream(k, blobAD, sealed); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the untouched stream no longer opens: %v", err)
	}
}

func TestStreamNotClosedDoesNotOpen(t *testing.T) {
	k, _, _ := newKeyring(t)
	var out bytes.Buffer
	w, err := keyring.SealStreamChunked(k, context.Background(), &out, blobAD, 16)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(randomBytes(100))
	if _, err := openStream(k, blobAD, out.Bytes()); err == nil {
		t.Fatal("a stream whose writer was never closed opened")
	}
	w.Close()
	if _, err := w.Write([]byte("late")); err == nil {
		t.Fatal("write after close accepted")
	}
}

func TestStreamMemoryStaysFlat(t *testing.T) {
	k, _, _ := newKeyring(t)
	const size = 32 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	pr, pw := io.Pipe()
	go func() {
		w, err := k.SealStream(context.Background(), pw, blobAD)
		if err == nil {
			_, err = io.CopyN(w, zeroReader{}, size)
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
	}()
	r, err := k.OpenStream(context.Background(), pr, blobAD)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != size {
		t.Fatalf("streamed %d bytes: %v", n, err)
	}
	runtime.ReadMemStats(&after)
	// A 32 MiB blob through seal and open allocates a few chunk buffers,
	// not the blob.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("sealing and opening %d MiB allocated %d KiB", size>>20, alloc>>10)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Blobs sealed before FIPS 140-3 mode (format 1, counter nonces) must still
// open, also under fips140=only, and must still refuse tampering.
func TestStreamFormatOneStillOpens(t *testing.T) {
	k, _, _ := newKeyring(t)
	for _, n := range []int{0, 1, 16, 5*16 + 9, 6 * 16} {
		data := randomBytes(n)
		v1, err := keyring.SealStreamV1(k, context.Background(), blobAD, data, 16)
		if err != nil {
			t.Fatal(err)
		}
		if v1[0] != 0x01 {
			t.Fatalf("fixture has format %d", v1[0])
		}
		if got, err := openStream(k, blobAD, v1); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: format 1 stream did not open: %v", n, err)
		}
		for _, cut := range []int{keyring.StreamHeaderLen + 1, len(v1) - 1} {
			if cut < len(v1) && cut > keyring.StreamHeaderLen {
				if _, err := openStream(k, blobAD, v1[:cut]); err == nil {
					t.Fatalf("%d bytes: format 1 stream cut to %d opened", n, cut)
				}
			}
		}
		b := bytes.Clone(v1)
		b[len(b)-1] ^= 1
		if _, err := openStream(k, blobAD, b); err == nil {
			t.Fatalf("%d bytes: altered format 1 stream opened", n)
		}
	}
	if got := sealStream(t, k, blobAD, []byte("x"), 16); got[0] != 0x02 {
		t.Fatalf("new streams are written in format %d, want 2", got[0])
	}
}

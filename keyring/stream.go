package keyring

import (
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math"

	"haven"
)

// Sealed stream, format 1 (blobs: images, documents). A header, then
// fixed-size chunks, each AES-256-GCM sealed on its own, so a blob of any
// size is sealed and opened in constant memory (two chunk buffers):
//
//	header: format 0x01 | key kind | key version u32 | chunk size u32 |
//	        salt [32] | nonce prefix [7]
//	chunk i: AES-256-GCM(stream key, nonce = prefix || i u32 || last, chunk)
//
// The stream key is HKDF-SHA-256(data key, salt, header || AD), so each
// stream has its own key (no nonce budget shared across a patient's blobs)
// and the header and the AD are authenticated by every chunk. The chunk
// counter and the last-chunk flag in the nonce are the STREAM construction
// (Hoang, Reyhanitabar, Rogaway, Vizár 2015): reordered, dropped, edited
// or duplicated chunks fail, a stream cut at a chunk boundary fails because
// its last chunk lacks the flag, and data appended after the flagged final
// chunk fails too.
//
// Format 2 (written since FIPS 140-3 mode): the same header with format
// 0x02 (the nonce prefix is then only more salt), and each chunk is
// AES-256-GCM with a random nonce drawn inside Go's FIPS module, stored in
// front of the chunk, and the STREAM counter and last-chunk flag moved into
// the associated data:
//
//	chunk i: nonce [12] | AES-256-GCM(stream key, nonce, chunk, AD = i u32 || last)
//
// Go refuses a caller-built GCM nonce under fips140=only, so format 1
// cannot be written there; it is still read everywhere (its nonces are
// rebuilt in front of each chunk and opened through the same random-nonce
// GCM, which only constrains how nonces are made, not which ones open).
// The guarantees against reordered, cut or extended streams are the same,
// for 12 bytes per 64 KiB chunk.
const (
	streamFormatV1   = 0x01
	streamFormatV2   = 0x02
	streamHeaderLen  = 1 + 1 + 4 + 4 + 32 + 7
	streamChunkSize  = 64 << 10
	streamMinChunk   = 16
	streamMaxChunk   = 1 << 20
	streamSaltOffset = 10
	streamDomain     = "haven.stream.v1"
)

// streamHeader is a parsed stream header.
type streamHeader struct {
	keyVersion int
	chunkSize  int
	raw        [streamHeaderLen]byte
}

// parseStreamHeader checks the framing of a stream header. It never
// panics: blobs come back from storage, which Haven does not trust.
func parseStreamHeader(b []byte) (streamHeader, error) {
	var h streamHeader
	if len(b) < streamHeaderLen {
		return h, haven.Wrap(haven.EINTERNAL, ErrTampered, "sealed stream header is truncated")
	}
	copy(h.raw[:], b)
	if (b[0] != streamFormatV1 && b[0] != streamFormatV2) || b[1] != keyKindData {
		return h, haven.Wrap(haven.EINTERNAL, ErrTampered, "sealed stream has an unknown format")
	}
	v := binary.BigEndian.Uint32(b[2:6])
	cs := binary.BigEndian.Uint32(b[6:10])
	if v == 0 || v > 1<<30 || cs < streamMinChunk || cs > streamMaxChunk {
		return h, haven.Wrap(haven.EINTERNAL, ErrTampered, "sealed stream header is out of range")
	}
	h.keyVersion, h.chunkSize = int(v), int(cs)
	return h, nil
}

// streamAEAD derives the stream's own key from the data key.
func (k *Keyring) streamAEAD(e *cacheEntry, h *streamHeader, ad AD) (cipher.AEAD, error) {
	sk, err := k.streamKey(e, h, ad)
	if err != nil {
		return nil, err
	}
	defer clear(sk)
	return newGCM(sk)
}

func (k *Keyring) streamKey(e *cacheEntry, h *streamHeader, ad AD) ([]byte, error) {
	var dek [keySize]byte
	defer clear(dek[:])
	if !k.cache.copyRaw(e, &dek) {
		return nil, haven.Errorf(haven.EUNAVAILABLE, "data key was evicted; try again")
	}
	info := ad.append(append([]byte(nil), h.raw[:]...), streamDomain)
	sk, err := hkdf.Key(sha256.New, dek[:], h.raw[streamSaltOffset:streamSaltOffset+32], string(info), keySize)
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "stream key derivation failed")
	}
	return sk, nil
}

// SealStream returns a writer that seals what is written to it into dst,
// bound to ad, under the data key of ad's patient. Close writes the final
// chunk (it does not close dst); a stream not closed cannot be opened.
func (k *Keyring) SealStream(ctx context.Context, dst io.Writer, ad AD) (io.WriteCloser, error) {
	return k.sealStream(ctx, dst, ad, streamChunkSize)
}

func (k *Keyring) sealStream(ctx context.Context, dst io.Writer, ad AD, chunkSize int) (io.WriteCloser, error) {
	if err := ad.validate(); err != nil {
		return nil, err
	}
	e, err := k.dataKey(ctx, ad.PracticeID, ad.PatientID, 0, true)
	if err != nil {
		return nil, err
	}
	h := streamHeader{keyVersion: e.version, chunkSize: chunkSize}
	h.raw[0] = streamFormatV2
	h.raw[1] = keyKindData
	binary.BigEndian.PutUint32(h.raw[2:6], uint32(e.version))
	binary.BigEndian.PutUint32(h.raw[6:10], uint32(chunkSize))
	if _, err := rand.Read(h.raw[streamSaltOffset:]); err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "random salt failed")
	}
	aead, err := k.streamAEAD(e, &h, ad)
	if err != nil {
		return nil, err
	}
	if _, err := dst.Write(h.raw[:]); err != nil {
		return nil, err
	}
	w := &streamWriter{dst: dst, aead: aead, chunkSize: chunkSize, buf: make([]byte, 0, chunkSize+nonceSize+tagSize)}
	return w, nil
}

type streamWriter struct {
	dst       io.Writer
	aead      cipher.AEAD
	chunkAD   [5]byte
	chunkSize int
	buf       []byte // plaintext of the pending chunk
	out       []byte // where a chunk taken straight from the caller is sealed (made on first use)
	counter   uint32
	err       error
}

var errStreamClosed = errors.New("keyring: sealed stream already closed")

// Write buffers p, sealing each full chunk once more data follows it: a
// chunk is only known to be the last when Close is called. A whole chunk
// of p that is followed by more of p is sealed straight from p, without
// the copy into the buffer.
func (w *streamWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if w.err != nil {
			return n, w.err
		}
		if len(w.buf) == w.chunkSize {
			w.flush(w.buf[:0], w.buf, false)
			continue
		}
		if len(w.buf) == 0 && len(p) > w.chunkSize {
			if w.out == nil {
				w.out = make([]byte, 0, w.chunkSize+nonceSize+tagSize)
			}
			w.flush(w.out[:0], p[:w.chunkSize], false)
			p = p[w.chunkSize:]
			n += w.chunkSize
			continue
		}
		c := copy(w.buf[len(w.buf):w.chunkSize], p)
		w.buf = w.buf[:len(w.buf)+c]
		p = p[c:]
		n += c
	}
	return n, nil
}

// flush seals chunk into dst (the buffer itself, sealed in place, or
// w.out for a chunk of the caller's data) and writes it.
func (w *streamWriter) flush(dst, chunk []byte, last bool) {
	binary.BigEndian.PutUint32(w.chunkAD[:4], w.counter)
	w.chunkAD[4] = 0
	if last {
		w.chunkAD[4] = 1
	}
	ct := w.aead.Seal(dst, nil, chunk, w.chunkAD[:])
	if _, err := w.dst.Write(ct); err != nil {
		w.err = err
		return
	}
	w.buf = w.buf[:0]
	if w.counter == math.MaxUint32 && !last {
		w.err = haven.Errorf(haven.EINVALID, "sealed stream is too long")
		return
	}
	w.counter++
}

// Close seals the final chunk (empty if the data ended on a boundary).
func (w *streamWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	w.flush(w.buf[:0], w.buf, true)
	if w.err == nil {
		w.err = errStreamClosed
		return nil
	}
	return w.err
}

// OpenStream returns a reader of the plaintext of a stream made by
// SealStream with the same ad. It reads and checks the header at once.
//
// Each chunk is authenticated before any of its bytes are returned, but a
// stream is only known whole when Read returns io.EOF: a cut, edited,
// reordered or extended stream makes Read return an error (never io.EOF),
// possibly after earlier chunks were returned. Callers must treat such an
// error as failure of the whole blob (abort the response, discard the
// copy).
func (k *Keyring) OpenStream(ctx context.Context, src io.Reader, ad AD) (io.Reader, error) {
	if err := ad.validate(); err != nil {
		return nil, err
	}
	var raw [streamHeaderLen]byte
	if _, err := io.ReadFull(src, raw[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, haven.Wrap(haven.EINTERNAL, ErrTampered, "sealed stream header is truncated")
		}
		return nil, err
	}
	h, err := parseStreamHeader(raw[:])
	if err != nil {
		return nil, err
	}
	e, err := k.dataKey(ctx, ad.PracticeID, ad.PatientID, h.keyVersion, false)
	if err != nil {
		return nil, err
	}
	aead, err := k.streamAEAD(e, &h, ad)
	if err != nil {
		return nil, err
	}
	r := &streamReader{src: src, aead: aead, chunkSize: h.chunkSize, v1: raw[0] == streamFormatV1,
		buf: make([]byte, nonceSize+h.chunkSize+tagSize+1)}
	if r.v1 {
		copy(r.nonce[:7], raw[streamHeaderLen-7:])
	}
	return r, nil
}

type streamReader struct {
	src       io.Reader
	aead      cipher.AEAD
	v1        bool            // format 1: nonces are rebuilt, not stored
	nonce     [nonceSize]byte // format 1's nonce prefix and counter
	chunkAD   [5]byte         // format 2's counter and last flag
	chunkSize int
	buf       []byte // nonce, one sealed chunk, one byte of look-ahead
	carry     int    // 1 if a look-ahead byte waits at buf[chunkSize+tagSize]
	plain     []byte // opened bytes not yet returned
	counter   uint32
	done      bool // the final chunk was opened
	err       error
}

func (r *streamReader) Read(p []byte) (int, error) {
	for len(r.plain) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		if len(p) >= r.chunkSize {
			// Room for a whole chunk: open it straight into p.
			var pt []byte
			pt, r.err = r.next(p[:0])
			if r.err == nil && len(pt) > 0 {
				return len(pt), nil
			}
			continue
		}
		r.plain, r.err = r.next(nil)
	}
	n := copy(p, r.plain)
	r.plain = r.plain[n:]
	return n, nil
}

// WriteTo lets io.Copy hand each opened chunk to w without another copy.
func (r *streamReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.plain) == 0 {
			if r.err != nil {
				return total, r.err
			}
			if r.done {
				return total, nil
			}
			r.plain, r.err = r.next(nil)
			continue
		}
		n, err := w.Write(r.plain)
		total += int64(n)
		r.plain = r.plain[n:]
		if err != nil {
			return total, err
		}
	}
}

// next opens one chunk into into (nil: in place in r.buf) and returns its
// plaintext. It reads one byte past a full chunk to learn whether more
// follows: only a chunk followed by nothing may carry the last-chunk flag,
// and only it is opened as such.
func (r *streamReader) next(into []byte) ([]byte, error) {
	// Both formats are opened as nonce || ciphertext from buf[0]: format 2
	// stores the nonce there, format 1's is rebuilt into buf[:nonceSize]
	// and its chunk read after it.
	base := 0
	if r.v1 {
		base = nonceSize
	}
	full := nonceSize + r.chunkSize + tagSize
	if r.carry == 1 {
		// The look-ahead byte waited at buf[full], past the plaintext
		// that was being returned; it starts this chunk.
		r.buf[base] = r.buf[full]
	}
	n, err := io.ReadFull(r.src, r.buf[base+r.carry:full+1])
	n += r.carry
	r.carry = 0
	last := false
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	default:
		return nil, err
	}
	chunk := r.buf[:min(base+n, full)]
	if len(chunk) < nonceSize+tagSize {
		return nil, haven.Wrap(haven.EINTERNAL, ErrTampered, "sealed stream is truncated")
	}
	var ad []byte
	if r.v1 {
		binary.BigEndian.PutUint32(r.nonce[7:11], r.counter)
		r.nonce[11] = 0
		if last {
			r.nonce[11] = 1
		}
		copy(chunk, r.nonce[:])
	} else {
		binary.BigEndian.PutUint32(r.chunkAD[:4], r.counter)
		r.chunkAD[4] = 0
		if last {
			r.chunkAD[4] = 1
		}
		ad = r.chunkAD[:]
	}
	if into == nil {
		into = chunk[:0]
	}
	pt, err := r.aead.Open(into, nil, chunk, ad)
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, ErrTampered, "sealed stream is truncated or altered")
	}
	if !last {
		if r.counter == math.MaxUint32 {
			return nil, haven.Wrap(haven.EINTERNAL, ErrTampered, "sealed stream is too long")
		}
		r.counter++
		r.carry = 1
	}
	r.done = last
	return pt, nil
}

package keyring

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/fips140"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"haven"
)

// Local root key file, format 1. Fixed sizes, no variable fields:
//
//	magic "HAVENRK" | version 0x01 | mode | key id [16]
//	mode 0x00 (plain):    key [32] | check [16] = HMAC-SHA-256(key, header)[:16]
//	mode 0x01 (argon2id): time u32 | memory KiB u32 | threads u8 | salt [16] |
//	                      nonce [12] | AES-256-GCM(argon2id(passphrase), key, header) [48]
//
// The header (everything before the key or the time field) is
// authenticated by the check value or the GCM tag, so an edited id or mode
// is caught as surely as an edited key.
const (
	rootMagic       = "HAVENRK"
	rootFileV1      = 0x01
	rootModePlain   = 0x00
	rootModeArgon2  = 0x01
	rootHeaderLen   = len(rootMagic) + 1 + 1 + 16
	rootPlainLen    = rootHeaderLen + keySize + 16
	rootArgonParams = 4 + 4 + 1 + 16
	rootArgonLen    = rootHeaderLen + rootArgonParams + 12 + keySize + 16
)

// Argon2id parameters for a passphrase-sealed key file: the first of
// OWASP's recommended configurations (46 MiB, one pass, one lane). The key
// file is opened once per start, so the cost is paid once and an attacker
// with a stolen file pays it for every guess.
var (
	argonTime    uint32 = 1
	argonMemory  uint32 = 46 * 1024
	argonThreads uint8  = 1
)

// LocalRoot is a root key kept in a file beside (but apart from) the data:
// the one-machine default. Keep the file out of database backups, or a
// backup thief has both halves.
type LocalRoot struct {
	id      string
	path    string
	created bool

	mu   sync.RWMutex
	aead cipher.AEAD // nil once closed
}

// OpenLocalRoot opens the root key file at path. With create, a missing
// file is made: 32 random bytes, mode 0600, sealed under passphrase through
// argon2id if passphrase is not empty. Without create, a missing file is an
// error: silently making a new key would leave every existing practice key
// unreadable, so the caller must decide that this really is a first start.
//
// The file is refused if group or others have any permission on it. A
// wrong passphrase, a plain file opened with a passphrase (or the reverse),
// and a corrupted file all fail with an error naming the file.
func OpenLocalRoot(path string, passphrase []byte, create bool) (*LocalRoot, error) {
	f, err := os.Open(path)
	created := false
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, haven.Errorf(haven.ENOTFOUND, "root key file %s does not exist; on a first start allow creating it, otherwise restore the original file (a new key cannot read existing data)", path)
		}
		if err := createRootFile(path, passphrase); err != nil {
			return nil, err
		}
		created = true
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot open root key file "+path)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot stat root key file "+path)
	}
	if !st.Mode().IsRegular() {
		return nil, haven.Errorf(haven.EINVALID, "root key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, haven.Errorf(haven.EINVALID, "root key file %s has mode %04o: group and others must have no access to it; fix with: chmod 600 %s", path, perm, path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, int64(rootArgonLen)+1))
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read root key file "+path)
	}
	key, id, err := parseRootFile(path, raw, passphrase)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &LocalRoot{id: id, path: path, created: created, aead: aead}, nil
}

// ID returns "local:" and the file's random key id.
func (r *LocalRoot) ID() string { return r.id }

// Created reports whether this call made the key file, so the caller can
// say so loudly: the file must now be backed up, apart from the data.
func (r *LocalRoot) Created() bool { return r.created }

// Path returns the key file's path.
func (r *LocalRoot) Path() string { return r.path }

// Wrap seals plaintext under the root key, bound to ad.
func (r *LocalRoot) Wrap(ctx context.Context, plaintext, ad []byte) ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.aead == nil {
		return nil, haven.Errorf(haven.EINTERNAL, "root key %s is closed", r.id)
	}
	return wrapWith(r.aead, plaintext, ad)
}

// Unwrap opens what Wrap sealed.
func (r *LocalRoot) Unwrap(ctx context.Context, wrapped, ad []byte) ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.aead == nil {
		return nil, haven.Errorf(haven.EINTERNAL, "root key %s is closed", r.id)
	}
	return unwrapWith(r.aead, wrapped, ad)
}

// Close drops the key. (Go's AES implementation keeps its expanded key
// schedule in memory the package cannot reach; the raw key bytes were
// zeroed as soon as the cipher was set up.)
func (r *LocalRoot) Close() error {
	r.mu.Lock()
	r.aead = nil
	r.mu.Unlock()
	return nil
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func rootCheck(key, header []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("haven.rootkey.check.v1"))
	m.Write(header)
	return m.Sum(nil)[:16]
}

func parseRootFile(path string, raw, passphrase []byte) (key []byte, id string, err error) {
	if len(raw) < rootHeaderLen || string(raw[:len(rootMagic)]) != rootMagic {
		return nil, "", haven.Errorf(haven.EINVALID, "%s is not a root key file", path)
	}
	if v := raw[len(rootMagic)]; v != rootFileV1 {
		return nil, "", haven.Errorf(haven.EINVALID, "root key file %s has format version %d; this build reads version %d", path, v, rootFileV1)
	}
	mode := raw[len(rootMagic)+1]
	header := raw[:rootHeaderLen]
	id = "local:" + strings.ToLower(b32.EncodeToString(header[len(rootMagic)+2:]))
	switch mode {
	case rootModePlain:
		if len(raw) != rootPlainLen {
			return nil, "", haven.Errorf(haven.EINVALID, "root key file %s is corrupted (wrong length)", path)
		}
		if len(passphrase) > 0 {
			return nil, "", haven.Errorf(haven.EINVALID, "root key file %s is not protected by a passphrase, but one was given; refusing rather than guessing which key is meant", path)
		}
		key = bytes.Clone(raw[rootHeaderLen : rootHeaderLen+keySize])
		if !hmac.Equal(rootCheck(key, header), raw[rootHeaderLen+keySize:]) {
			clear(key)
			return nil, "", haven.Errorf(haven.EINVALID, "root key file %s is corrupted: its key check value does not match", path)
		}
		return key, id, nil
	case rootModeArgon2:
		if len(raw) != rootArgonLen {
			return nil, "", haven.Errorf(haven.EINVALID, "root key file %s is corrupted (wrong length)", path)
		}
		if len(passphrase) == 0 {
			return nil, "", haven.Errorf(haven.EINVALID, "root key file %s is protected by a passphrase; none was given", path)
		}
		p := raw[rootHeaderLen:]
		t, m, th := binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:]), p[8]
		// Bounds keep a crafted file from making start-up hang or exhaust memory.
		if t < 1 || t > 16 || m < 8*1024 || m > 4*1024*1024 || th < 1 || th > 64 {
			return nil, "", haven.Errorf(haven.EINVALID, "root key file %s has out-of-range argon2id parameters", path)
		}
		if fips140.Enabled() {
			return nil, "", errArgon2InFIPSMode(path)
		}
		salt := p[9:25]
		kek := argon2.IDKey(passphrase, salt, t, m, th, keySize)
		defer clear(kek)
		aead, err := newGCM(kek)
		if err != nil {
			return nil, "", err
		}
		// p[25:] is nonce || ciphertext, as the random-nonce GCM reads it.
		key, err = aead.Open(nil, nil, p[25:], raw[:rootHeaderLen+rootArgonParams])
		if err != nil {
			return nil, "", haven.Wrap(haven.EUNAUTHORIZED, ErrTampered, "wrong passphrase for root key file "+path+" (or the file is corrupted)")
		}
		return key, id, nil
	default:
		return nil, "", haven.Errorf(haven.EINVALID, "root key file %s has unknown mode %d", path, mode)
	}
}

func encodeRootFile(passphrase []byte) ([]byte, error) {
	key := make([]byte, keySize)
	defer clear(key)
	b := make([]byte, rootHeaderLen, rootArgonLen)
	copy(b, rootMagic)
	b[len(rootMagic)] = rootFileV1
	if _, err := rand.Read(key); err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "random key failed")
	}
	if _, err := rand.Read(b[len(rootMagic)+2:]); err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "random key id failed")
	}
	if len(passphrase) == 0 {
		b[len(rootMagic)+1] = rootModePlain
		b = append(b, key...)
		return append(b, rootCheck(key, b[:rootHeaderLen])...), nil
	}
	if fips140.Enabled() {
		return nil, errArgon2InFIPSMode("a new root key file")
	}
	b[len(rootMagic)+1] = rootModeArgon2
	b = binary.BigEndian.AppendUint32(b, argonTime)
	b = binary.BigEndian.AppendUint32(b, argonMemory)
	b = append(b, argonThreads)
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "random salt failed")
	}
	b = append(b, salt[:]...)
	kek := argon2.IDKey(passphrase, salt[:], argonTime, argonMemory, argonThreads, keySize)
	defer clear(kek)
	aead, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	ad := bytes.Clone(b)
	return aead.Seal(b, nil, key, ad), nil // appends nonce || ciphertext
}

// errArgon2InFIPSMode refuses a passphrase-protected root key file in FIPS
// 140-3 mode: its key is derived with argon2id, which no FIPS module
// offers. Rather than keep a second, weaker passphrase format, FIPS
// deployments hold the root key in a KMS (or in a plain key file on an
// encrypted disk); see the README's "FIPS 140-3 mode".
func errArgon2InFIPSMode(what string) error {
	return haven.Errorf(haven.EINVALID, "%s: passphrase-protected root key files use argon2id, which is not FIPS 140-3 approved; in FIPS mode use a KMS root (--kms) or a key file without a passphrase", what)
}

// createRootFile writes a new key file so that it appears whole or not at
// all: written and synced under a temporary name, then hard-linked into
// place, which fails if another process created the file meanwhile (in
// which case that file is the key and this one is discarded).
func createRootFile(path string, passphrase []byte) error {
	content, err := encodeRootFile(passphrase)
	if err != nil {
		return err
	}
	defer clear(content)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot create directory for root key file "+path)
	}
	tmp, err := os.CreateTemp(dir, ".root-key-*") // created with mode 0600
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot create root key file "+path)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot set mode of root key file "+path)
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot write root key file "+path)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot sync root key file "+path)
	}
	if err := tmp.Close(); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot write root key file "+path)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process won the race; open its key
		}
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot create root key file "+path)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

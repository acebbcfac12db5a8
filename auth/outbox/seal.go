package outbox

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"haven"
)

// Spooled mail is sealed at rest. A message holds a recipient's address
// (personal data; for a patient, the fact that they are one) and a live
// sign-in link, and it may wait on disk for days, so a copy of the data
// directory, a backup of it or a stolen disk must not hold either in the
// clear. Each file is AES-256-GCM under the outbox key, which lives in a
// key file beside the other keys (not in the database, not in the outbox),
// so delivery needs neither the database nor the KMS to be up and a root
// key rotation never strands spooled mail.
//
// File format 1: "HAVENMAIL" · 0x01 · nonce[12] · AES-256-GCM(message),
// the first 10 bytes being the associated data.

// KeySize is the size of an outbox key (AES-256).
const KeySize = 32

// MaxAge is how long a message stays spooled, delivered or not: a week,
// the longest any link Haven emails stays valid (an invitation). After
// that the message is useless to its recipient and only a risk on disk.
const MaxAge = 7 * 24 * time.Hour

const (
	sealedMagic = "HAVENMAIL\x01"
	sealedExt   = ".sealed"
	legacyExt   = ".eml" // written in the clear by earlier versions
)

// errUnreadable is the cause for a spooled file that does not open under
// this outbox's key: another key, or an edited file.
var errUnreadable = errors.New("outbox: spooled message does not open with this outbox's key")

func (d *Dir) aead() (cipher.AEAD, error) {
	if len(d.Key) != KeySize {
		return nil, haven.Errorf(haven.EINTERNAL, "the outbox has no key: spooled mail is sealed at rest")
	}
	block, err := aes.NewCipher(d.Key)
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "outbox key")
	}
	// Random-nonce GCM: the nonce is drawn inside Go's FIPS 140-3 module
	// (a caller's nonce is refused under fips140=only) and written in
	// front of the ciphertext, where this format always had it.
	return cipher.NewGCMWithRandomNonce(block)
}

func (d *Dir) seal(raw []byte) ([]byte, error) {
	aead, err := d.aead()
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(sealedMagic), len(sealedMagic)+len(raw)+aead.Overhead())
	copy(out, sealedMagic)
	return aead.Seal(out, nil, raw, []byte(sealedMagic)), nil
}

func (d *Dir) open(b []byte) ([]byte, error) {
	aead, err := d.aead()
	if err != nil {
		return nil, err
	}
	h := len(sealedMagic)
	if len(b) < h+aead.Overhead() || string(b[:h]) != sealedMagic {
		return nil, errUnreadable
	}
	raw, err := aead.Open(nil, nil, b[h:], []byte(sealedMagic))
	if err != nil {
		return nil, errUnreadable
	}
	return raw, nil
}

// Spooled is one message waiting in an outbox directory.
type Spooled struct {
	Name    string    // the file's name in the directory
	Written time.Time // when it was spooled
	Raw     []byte    // the RFC 5322 message
}

// Messages returns the messages spooled in the directory, oldest first,
// opened: for an operator without a relay (`haven outbox`), and tests.
func (d *Dir) Messages() ([]Spooled, error) {
	names, err := d.spooledNames(d.Path)
	if err != nil {
		return nil, err
	}
	var out []Spooled
	for _, name := range names {
		raw, err := d.read(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		m := Spooled{Name: name, Raw: raw}
		if fi, err := os.Stat(filepath.Join(d.Path, name)); err == nil {
			m.Written = fi.ModTime()
		}
		out = append(out, m)
	}
	return out, nil
}

// spooledNames lists the sealed messages in dir in sending order (names
// start with the time they were written).
func (d *Dir) spooledNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		// .tmp- files are still being written.
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), sealedExt) && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// read opens one spooled file.
func (d *Dir) read(name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(d.Path, name))
	if err != nil {
		return nil, err
	}
	return d.open(b)
}

// SealLegacy seals every message an earlier version left in the clear
// (.eml) and removes the clear copy, so an upgrade leaves no address on
// disk. It returns how many it sealed.
func (d *Dir) SealLegacy() (int, error) {
	n := 0
	for _, dir := range []string{d.Path, filepath.Join(d.Path, "failed")} {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, err
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), legacyExt) || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			path := filepath.Join(dir, e.Name())
			raw, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue // another process of this data dir got there first
			}
			if err != nil {
				return n, err
			}
			sealed, err := d.seal(raw)
			clear(raw)
			if err != nil {
				return n, err
			}
			if err := writeAtomic(dir, strings.TrimSuffix(e.Name(), legacyExt)+sealedExt, sealed); err != nil {
				return n, err
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// Expire removes spooled and failed messages written before cutoff (pass
// time.Now().Add(-MaxAge)) and returns how many it removed.
func (d *Dir) Expire(cutoff time.Time) (int, error) {
	n := 0
	for _, dir := range []string{d.Path, filepath.Join(d.Path, "failed")} {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, err
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			fi, err := e.Info()
			if err != nil || !fi.ModTime().Before(cutoff) {
				continue
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// writeAtomic writes b to dir/name under a temporary name, synced and then
// renamed, so a reader never sees half a file.
func writeAtomic(dir, name string, b []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

// Package dir stores blobs as files in a local directory: the blob store of
// the one-machine deployment. It owns the on-disk layout and the durability
// of each write; it stores the already-encrypted bytes it is given and never
// holds or imports a key.
//
// A write streams into a temporary file in the blob's own directory, is
// fsynced, renamed over the final name and the directory fsynced, so a crash
// or kill -9 at any moment leaves either the old blob or the whole new one
// under a key, never a half-written file. Every file operation goes through
// an os.Root, so even a key that slipped past blob.ValidKey, or a symlink
// planted in the directory, cannot reach a file outside it. Files are 0600
// and directories 0700: blobs are ciphertext, but their sizes and count are
// still nobody else's business.
package dir

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"haven"
	"haven/blob"
)

// tempPrefix starts every temporary file name. No key maps to a name that
// starts with ".", so a temporary file can never be mistaken for a blob.
const tempPrefix = ".tmp-"

// StaleTempAge is how old a temporary file must be before Open removes it as
// the leftover of a write that crashed. Younger ones may belong to a write in
// progress in another process.
const StaleTempAge = time.Hour

// copyBuffers holds the buffers uploads stream through, so a busy server
// does not allocate one per blob.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// Store is a blob.Store over a local directory.
type Store struct {
	root *os.Root
	path string
}

var (
	_ blob.Store           = (*Store)(nil)
	_ blob.Lister          = (*Store)(nil)
	_ blob.LeftoverRemover = (*Store)(nil)
)

// Open opens the blob directory at path, creating it (mode 0700) if needed.
// It refuses a directory that other users may read or enter, and removes
// temporary files left by writes that crashed.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "cannot create the blob directory")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "cannot open the blob directory")
	}
	if !fi.IsDir() {
		return nil, haven.Errorf(haven.EINVALID, "blob directory %s is not a directory", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, haven.Errorf(haven.EINVALID, "blob directory %s has mode %04o: other users may list it; make it 0700", path, perm)
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "cannot open the blob directory")
	}
	s := &Store{root: root, path: path}
	if err := s.removeStaleTemps(time.Now().Add(-StaleTempAge)); err != nil {
		root.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the directory.
func (s *Store) Close() error { return s.root.Close() }

// locate returns the fan-out directory and file name of key. The directory
// is the first byte of SHA-256(key) in hex, so blobs spread evenly over 256
// directories however their keys are prefixed (keys start with a practice
// id, and a big practice would otherwise fill one directory). The file name
// is the key with "/" turned into "."; keys contain no ".", so the mapping
// is one-to-one and the name stays readable for an operator.
func locate(key string) (fanout, name string) {
	sum := sha256.Sum256([]byte(key))
	fanout = hex.EncodeToString(sum[:1])
	return fanout, fanout + "/" + strings.ReplaceAll(key, "/", ".")
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := blob.ValidKey(key); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fanout, name := locate(key)
	if err := s.ensureDir(fanout); err != nil {
		return 0, err
	}
	tmp, f, err := s.createTemp(fanout)
	if err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			s.root.Remove(tmp)
		}
	}()

	src := &ctxReader{ctx: ctx, r: r}
	buf := copyBuffers.Get().(*[]byte)
	// The struct hides (*os.File).ReadFrom, which would allocate a fresh
	// buffer for every blob instead of using the pooled one.
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, src, *buf)
	copyBuffers.Put(buf)
	if err != nil {
		if src.err != nil { // the upload failed, not the disk
			return n, fmt.Errorf("blob: reading the upload: %w", src.err)
		}
		return n, haven.Wrap(haven.EINTERNAL, err, "cannot write blob")
	}
	if err := f.Sync(); err != nil {
		return n, haven.Wrap(haven.EINTERNAL, err, "cannot write blob")
	}
	if err := f.Close(); err != nil {
		return n, haven.Wrap(haven.EINTERNAL, err, "cannot write blob")
	}
	// A caller that gave up must not have its blob appear afterwards.
	if err := ctx.Err(); err != nil {
		return n, err
	}
	if err := s.root.Rename(tmp, name); err != nil {
		return n, haven.Wrap(haven.EINTERNAL, err, "cannot write blob")
	}
	committed = true
	if err := s.syncDir(fanout); err != nil {
		return n, err
	}
	return n, nil
}

// Get implements blob.Store. Reads from the returned blob fail once ctx is
// done.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := blob.ValidKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, name := locate(key)
	f, err := s.root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, blob.NotFound(key)
	} else if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "cannot read blob")
	}
	return &ctxFile{ctxReader: ctxReader{ctx: ctx, r: f}, f: f}, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (int64, error) {
	if err := blob.ValidKey(key); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	_, name := locate(key)
	fi, err := s.root.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, blob.NotFound(key)
	} else if err != nil {
		return 0, haven.Wrap(haven.EINTERNAL, err, "cannot read blob")
	}
	if !fi.Mode().IsRegular() {
		return 0, haven.Errorf(haven.EINTERNAL, "blob %s is not a regular file", key)
	}
	return fi.Size(), nil
}

// Delete implements blob.Store. The directory is fsynced so that a removal,
// once reported, survives a crash.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fanout, name := locate(key)
	err := s.root.Remove(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return haven.Wrap(haven.EINTERNAL, err, "cannot delete blob")
	}
	return s.syncDir(fanout)
}

// ensureDir creates a fan-out directory on first use and fsyncs the root so
// the new directory, and the blob about to be renamed into it, survive a
// crash.
func (s *Store) ensureDir(fanout string) error {
	err := s.root.Mkdir(fanout, 0o700)
	if errors.Is(err, fs.ErrExist) {
		return nil
	} else if err != nil {
		return haven.Wrap(haven.EINTERNAL, err, "cannot create blob directory")
	}
	return s.syncDir(".")
}

func (s *Store) createTemp(fanout string) (string, *os.File, error) {
	for range 10 {
		name := fanout + "/" + tempPrefix + rand.Text()
		f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		} else if err != nil {
			return "", nil, haven.Wrap(haven.EINTERNAL, err, "cannot create blob")
		}
		return name, f, nil
	}
	return "", nil, haven.Errorf(haven.EINTERNAL, "cannot create a temporary blob file")
}

func (s *Store) syncDir(name string) error {
	d, err := s.root.Open(name)
	if err != nil {
		return haven.Wrap(haven.EINTERNAL, err, "cannot sync blob directory")
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return haven.Wrap(haven.EINTERNAL, err, "cannot sync blob directory")
	}
	return nil
}

// removeStaleTemps deletes temporary files last written before cutoff.
func (s *Store) removeStaleTemps(cutoff time.Time) error {
	_, err := s.RemoveLeftovers(context.Background(), cutoff)
	return err
}

// RemoveLeftovers implements blob.LeftoverRemover: it deletes the
// temporary files of writes that died (a killed process, a crash) and were
// last written before cutoff, and reports how many.
func (s *Store) RemoveLeftovers(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	err := s.walk(ctx, func(dir string, e fs.DirEntry) error {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			return nil
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			if err := s.root.Remove(dir + "/" + e.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return haven.Wrap(haven.EINTERNAL, err, "cannot remove a stale temporary blob")
			}
			n++
		}
		return nil
	})
	return n, err
}

// List implements blob.Lister. A file name maps back to its key ("." to
// "/"); a name that is not a valid key, or lies in the wrong fan-out
// directory, was not written by this store and is skipped.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string, written time.Time) error) error {
	return s.walk(ctx, func(dir string, e fs.DirEntry) error {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			return nil
		}
		key := strings.ReplaceAll(e.Name(), ".", "/")
		if !strings.HasPrefix(key, prefix) || blob.ValidKey(key) != nil {
			return nil
		}
		if fanout, _ := locate(key); fanout != dir {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile
		} else if err != nil {
			return haven.Wrap(haven.EINTERNAL, err, "cannot list the blob directory")
		}
		return fn(key, fi.ModTime())
	})
}

// walk calls fn for every entry of every fan-out directory.
func (s *Store) walk(ctx context.Context, fn func(dir string, e fs.DirEntry) error) error {
	top, err := fs.ReadDir(s.root.FS(), ".")
	if err != nil {
		return haven.Wrap(haven.EINTERNAL, err, "cannot list the blob directory")
	}
	for _, d := range top {
		if !d.IsDir() || len(d.Name()) != 2 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := fs.ReadDir(s.root.FS(), d.Name())
		if err != nil {
			return haven.Wrap(haven.EINTERNAL, err, "cannot list the blob directory")
		}
		for _, e := range entries {
			if err := fn(d.Name(), e); err != nil {
				return err
			}
		}
	}
	return nil
}

// ctxReader fails reads once ctx is done, so a long upload or download stops
// when its request does. It remembers the error of the reader it wraps so
// Put can tell a failed upload from a failed disk.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

type ctxFile struct {
	ctxReader
	f *os.File
}

func (c *ctxFile) Close() error { return c.f.Close() }

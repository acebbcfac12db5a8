package blob

import (
	"context"
	"strings"
	"time"

	"haven"
)

// Lister is a Store that can list the blobs it holds, for the orphan
// sweep.
type Lister interface {
	// List calls fn for each blob whose key starts with prefix, with the
	// time it was last written, in no particular order. An error from fn
	// stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(key string, written time.Time) error) error
}

// LeftoverRemover is a Store that can leave partial writes behind when a
// process dies mid-upload (a directory's temporary files) and removes
// those last written before cutoff.
type LeftoverRemover interface {
	RemoveLeftovers(ctx context.Context, cutoff time.Time) (int, error)
}

// OrphanAge is how old a blob without a database row, or a leftover of a
// write, must be before a sweep removes it. A file's row is written right
// after its blob, so a blob this old without one was left by an upload
// that failed or a process that died in between; a younger one may belong
// to an upload being committed on any node right now.
const OrphanAge = time.Hour

// SweepResult says what a sweep removed.
type SweepResult struct {
	Checked   int // blobs old enough to be checked against the database
	Orphans   int // of those, removed for having no row
	Leftovers int // partial writes removed
}

// sweepBatch is how many keys one database check asks about.
const sweepBatch = 200

// Sweep removes, under prefix, every blob last written before cutoff that
// inUse says no database row names, and the store's leftovers of
// partial writes older than cutoff. Pass time.Now().Add(-OrphanAge) as
// cutoff.
//
// It is safe with several nodes sweeping and uploading at once: a blob is
// only a candidate once it is older than cutoff, which no upload still
// being committed is, and it is removed only if the database, asked after
// the listing, has no row for it. inUse returns the subset of keys that a
// row names. A store that cannot list (not a Lister) is left alone.
func Sweep(ctx context.Context, s Store, prefix string, inUse func(ctx context.Context, keys []string) (map[string]bool, error), cutoff time.Time) (SweepResult, error) {
	var res SweepResult
	if lr, ok := s.(LeftoverRemover); ok {
		n, err := lr.RemoveLeftovers(ctx, cutoff)
		res.Leftovers = n
		if err != nil {
			return res, err
		}
	}
	l, ok := s.(Lister)
	if !ok {
		return res, nil
	}
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		used, err := inUse(ctx, batch)
		if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "blob sweep: cannot check the database")
		}
		for _, key := range batch {
			if used[key] {
				continue
			}
			if err := s.Delete(ctx, key); err != nil {
				return err
			}
			res.Orphans++
		}
		batch = batch[:0]
		return nil
	}
	err := l.List(ctx, prefix, func(key string, written time.Time) error {
		if !strings.HasPrefix(key, prefix) || !written.Before(cutoff) || ValidKey(key) != nil {
			return nil
		}
		res.Checked++
		batch = append(batch, key)
		if len(batch) >= sweepBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	return res, flush()
}

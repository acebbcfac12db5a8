package blob

import (
	"context"
	"io"
	"time"
)

// Gated returns s with allow asked before every operation: an object
// store is an outside system, and the vendor registry decides, operation
// by operation, whether it may still be sent anything (a retired vendor,
// or one whose agreement ended, gets nothing). An operation allow refuses
// does not reach s and returns allow's error. The result is a Lister or a
// LeftoverRemover when s is.
func Gated(s Store, allow func(context.Context) error) Store {
	g := gated{s: s, allow: allow}
	l, listing := s.(Lister)
	r, leftovers := s.(LeftoverRemover)
	switch {
	case listing && leftovers:
		return struct {
			gated
			gatedLister
			gatedLeftovers
		}{g, gatedLister{l, allow}, gatedLeftovers{r, allow}}
	case listing:
		return struct {
			gated
			gatedLister
		}{g, gatedLister{l, allow}}
	case leftovers:
		return struct {
			gated
			gatedLeftovers
		}{g, gatedLeftovers{r, allow}}
	}
	return g
}

type gated struct {
	s     Store
	allow func(context.Context) error
}

func (g gated) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := g.allow(ctx); err != nil {
		return 0, err
	}
	return g.s.Put(ctx, key, r)
}

func (g gated) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := g.allow(ctx); err != nil {
		return nil, err
	}
	return g.s.Get(ctx, key)
}

func (g gated) Delete(ctx context.Context, key string) error {
	if err := g.allow(ctx); err != nil {
		return err
	}
	return g.s.Delete(ctx, key)
}

func (g gated) Stat(ctx context.Context, key string) (int64, error) {
	if err := g.allow(ctx); err != nil {
		return 0, err
	}
	return g.s.Stat(ctx, key)
}

type gatedLister struct {
	l     Lister
	allow func(context.Context) error
}

func (g gatedLister) List(ctx context.Context, prefix string, fn func(key string, written time.Time) error) error {
	if err := g.allow(ctx); err != nil {
		return err
	}
	return g.l.List(ctx, prefix, fn)
}

type gatedLeftovers struct {
	r     LeftoverRemover
	allow func(context.Context) error
}

func (g gatedLeftovers) RemoveLeftovers(ctx context.Context, cutoff time.Time) (int, error) {
	if err := g.allow(ctx); err != nil {
		return 0, err
	}
	return g.r.RemoveLeftovers(ctx, cutoff)
}

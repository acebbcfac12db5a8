package keyring

import "context"

// GatedRoot returns r with allow asked before every wrap and unwrap: a
// KMS is an outside system, and the vendor registry decides, operation by
// operation, whether it may still be used (a retired vendor, or one whose
// agreement ended, gets nothing). A refused operation does not reach r
// and returns allow's error.
func GatedRoot(r Root, allow func(context.Context) error) Root {
	return gatedRoot{r: r, allow: allow}
}

type gatedRoot struct {
	r     Root
	allow func(context.Context) error
}

func (g gatedRoot) ID() string { return g.r.ID() }

func (g gatedRoot) Wrap(ctx context.Context, plaintext, ad []byte) ([]byte, error) {
	if err := g.allow(ctx); err != nil {
		return nil, err
	}
	return g.r.Wrap(ctx, plaintext, ad)
}

func (g gatedRoot) Unwrap(ctx context.Context, wrapped, ad []byte) ([]byte, error) {
	if err := g.allow(ctx); err != nil {
		return nil, err
	}
	return g.r.Unwrap(ctx, wrapped, ad)
}

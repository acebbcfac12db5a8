package keyring_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"haven"
	"haven/keyring"
	"haven/keyring/memstore"
)

// memstore satisfies keyring.Store without importing keyring: the same
// structural contract a SQL adapter meets.
var _ keyring.Store = (*memstore.Store)(nil)

func newRoot(t testing.TB, name string) *keyring.LocalRoot {
	t.Helper()
	r, err := keyring.OpenLocalRoot(filepath.Join(t.TempDir(), name), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func openKeyring(t testing.TB, store keyring.Store, root keyring.Root, old ...keyring.Root) *keyring.Keyring {
	t.Helper()
	k, err := keyring.Open(context.Background(), keyring.Config{Store: store, Root: root, OldRoots: old})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func newKeyring(t testing.TB) (*keyring.Keyring, *memstore.Store, *keyring.LocalRoot) {
	t.Helper()
	store := memstore.New()
	root := newRoot(t, "root.key")
	return openKeyring(t, store, root), store, root
}

func mustSeal(t testing.TB, k *keyring.Keyring, ad keyring.AD, pt string) haven.Sealed {
	t.Helper()
	s, err := k.Seal(context.Background(), ad, []byte(pt))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustOpen(t testing.TB, k *keyring.Keyring, ad keyring.AD, s haven.Sealed, want string) {
	t.Helper()
	got, err := k.Open(context.Background(), ad, s)
	if err != nil {
		t.Fatalf("open %+v: %v", ad, err)
	}
	if string(got) != want {
		t.Fatalf("open %+v = %q, want %q", ad, got, want)
	}
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded; want a %s error", code)
	}
	if got := haven.ErrorCode(err); got != code {
		t.Fatalf("error code %q (%v); want %q", got, err, code)
	}
}

func fmtReport(r keyring.Report) string { return fmt.Sprintf("%+v", r) }

func containsBytes(b, sub []byte) bool {
	return bytes.Contains(b, sub) || strings.Contains(string(b), fmt.Sprint(sub))
}

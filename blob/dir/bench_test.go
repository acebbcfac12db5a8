package dir

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"haven/blob/blobtest"
)

const benchSize = 1 << 20

// BenchmarkPut compares a durable Put (temporary file, fsync, rename, fsync
// of the directory) with its baseline, a plain write of the same bytes to a
// new file with no fsync: the ratio is the price of never losing or tearing
// an acknowledged blob. The baseline removes each file before the next, so
// its dirty pages are dropped rather than written back: truncating or
// replacing them would make some file systems flush them, and the baseline
// would measure the disk after all.
func BenchmarkPut(b *testing.B) {
	data := blobtest.Bytes(benchSize, 1)
	b.Run("baseline", func(b *testing.B) {
		d := b.TempDir()
		b.SetBytes(benchSize)
		for i := 0; b.Loop(); i++ {
			name := filepath.Join(d, fmt.Sprint(i))
			f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(f, bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
			f.Close()
			os.Remove(name)
		}
	})
	b.Run("store", func(b *testing.B) {
		s, _ := open(b)
		ctx := context.Background()
		b.SetBytes(benchSize)
		for i := 0; b.Loop(); i++ {
			if _, err := s.Put(ctx, fmt.Sprintf("bench/%d", i%64), bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGet compares reading a blob through the store with reading the
// same file directly.
func BenchmarkGet(b *testing.B) {
	data := blobtest.Bytes(benchSize, 2)
	s, path := open(b)
	ctx := context.Background()
	if _, err := s.Put(ctx, "bench/get", bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	_, name := locate("bench/get")
	b.Run("baseline", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			f, err := os.Open(filepath.Join(path, name))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, f)
			f.Close()
		}
	})
	b.Run("store", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			rc, err := s.Get(ctx, "bench/get")
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	})
}

package s3

import (
	"bytes"
	"context"
	"testing"

	"github.com/minio/minio-go/v7"

	"haven/blob/blobtest"
)

const benchSize = 1 << 20

// BenchmarkPut compares the store's streaming Put (a multipart upload of
// unknown length: initiate, one part, complete) with its baseline, a single
// PUT of the same bytes whose length is known in advance, against the same
// in-process server. The ratio is the price of never needing a blob's size
// (or the whole blob) before sending it.
func BenchmarkPut(b *testing.B) {
	f := newFakeS3(b)
	s := newStore(b, f, "")
	data := blobtest.Bytes(benchSize, 1)
	ctx := context.Background()
	b.Run("baseline", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			if _, err := s.client.PutObject(ctx, bucket, "bench/baseline", bytes.NewReader(data), benchSize, minio.PutObjectOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("store", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			if _, err := s.Put(ctx, "bench/store", bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

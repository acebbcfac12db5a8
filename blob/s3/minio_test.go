package s3

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/blob/blobtest"
)

// The tests below run the store against a real MinIO server (a separate
// process, over TLS) as well as the in-process fake above: the fake shows
// the client's behaviour can be measured; MinIO shows an S3 engine that
// deployments run agrees with it.

func newMinIOStore(t *testing.T, m *blobtest.MinIO, prefix string) *Store {
	t.Helper()
	s, err := New(context.Background(), Config{
		Endpoint: m.Endpoint, Region: "us-east-1", Bucket: bucket, Prefix: prefix,
		AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey, PartSize: MinPartSize,
		Transport: m.Transport,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreConformanceOnMinIO(t *testing.T) {
	m := blobtest.StartMinIO(t)
	m.MakeBucket(t, bucket)
	blobtest.TestStore(t, newMinIOStore(t, m, "deployment-1/"))
}

// TestMinIOKeepsPrefixesApartAndListsWhatItHolds checks what the sweep
// relies on against the real engine: a listing under a prefix names
// exactly the blobs put there, with the time they were written. (Ageing a
// blob two hours, which the sweep suite needs, is only possible with the
// fake's clock: MinIO stamps objects with its own.)
func TestMinIOKeepsPrefixesApartAndListsWhatItHolds(t *testing.T) {
	m := blobtest.StartMinIO(t)
	m.MakeBucket(t, bucket)
	ctx := context.Background()
	a, b := newMinIOStore(t, m, "clinic-a/"), newMinIOStore(t, m, "clinic-b/")
	before := time.Now().Add(-time.Minute)
	for _, k := range []string{"p1/scan", "p1/note", "p2/scan"} {
		if _, err := a.Put(ctx, k, strings.NewReader("ciphertext of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Stat(ctx, "p1/scan"); haven.ErrorCode(err) != haven.ENOTFOUND {
		t.Fatalf("a blob put under one prefix is visible under another: %v", err)
	}
	got := map[string]time.Time{}
	if err := a.List(ctx, "p1/", func(k string, w time.Time) error { got[k] = w; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["p1/scan"].IsZero() || got["p1/note"].IsZero() {
		t.Fatalf("listing p1/ = %v, want p1/scan and p1/note", got)
	}
	for k, w := range got {
		if w.Before(before) || w.After(time.Now().Add(time.Minute)) {
			t.Fatalf("%s written at %v, not about now", k, w)
		}
	}
	if hits := m.FilesContaining(t, []byte("ciphertext of p2/scan")); len(hits) == 0 {
		t.Fatal("the search of MinIO's data directory finds nothing it was given: it could not catch plaintext")
	}
}

// TestMultipartUploadOnMinIO streams a blob of several parts (the path a
// large upload takes) and reads it back byte for byte.
func TestMultipartUploadOnMinIO(t *testing.T) {
	m := blobtest.StartMinIO(t)
	m.MakeBucket(t, bucket)
	s := newMinIOStore(t, m, "")
	ctx := context.Background()
	size := int64(2*MinPartSize + 12345)
	if n, err := s.Put(ctx, "large/streamed", blobtest.NewReader(size, 7)); err != nil || n != size {
		t.Fatalf("Put = %d, %v", n, err)
	}
	rc, err := s.Get(ctx, "large/streamed")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	want := blobtest.Bytes(int(size), 7)
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read back %d bytes that differ from the %d put", got.Len(), size)
	}
}

// Package s3 stores blobs as objects in an S3-compatible bucket: the blob
// store beyond one machine. It owns the mapping of keys to object names
// under a prefix and the streaming upload; it stores the already-encrypted
// bytes it is given and never holds or imports a Haven key. (The S3 access
// key it holds authorises storage requests only; it opens no data.)
//
// Uploads stream as multipart uploads of unknown length, one part buffered
// at a time, so memory per upload is PartSize however large the blob is. A
// failed or cancelled upload is aborted and never becomes visible: S3 makes
// an object appear only when its upload completes. TLS is the default;
// plain HTTP is refused unless the endpoint is on the loopback interface.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"haven"
	"haven/blob"
)

// DefaultPartSize is the part size used when Config.PartSize is zero: one
// upload holds this much in memory, and a blob may be up to 10,000 parts
// (78 GiB) long.
const DefaultPartSize = 8 << 20

// MinPartSize is the smallest part S3 accepts for all but the last part.
const MinPartSize = 5 << 20

// Config says where the bucket is and how to reach it.
type Config struct {
	// Endpoint is host[:port] of the S3 service, without a scheme.
	Endpoint string
	Region   string
	Bucket   string
	// Prefix is prepended to every key, so one bucket can hold several
	// deployments. Empty, or segments of a valid key ending in "/".
	Prefix string

	AccessKeyID     string
	SecretAccessKey string

	// PlainHTTP turns TLS off. It is accepted only for a loopback endpoint
	// (a local test server): over any network, blobs and the signed
	// requests that carry them travel inside TLS.
	PlainHTTP bool

	// PartSize bounds the memory of one upload; zero means DefaultPartSize.
	PartSize uint64

	// Transport, if set, carries the requests (for a private CA, say).
	Transport http.RoundTripper
}

// Store is a blob.Store over one bucket.
type Store struct {
	client   *minio.Client
	bucket   string
	prefix   string
	partSize uint64
}

var (
	_ blob.Store  = (*Store)(nil)
	_ blob.Lister = (*Store)(nil)
)

// New checks cfg, connects, and confirms the bucket exists, so a
// misconfiguration is reported at start rather than at the first upload.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" || strings.Contains(cfg.Endpoint, "/") {
		return nil, haven.Errorf(haven.EINVALID, "S3 endpoint must be host or host:port, without a scheme")
	}
	if cfg.Bucket == "" {
		return nil, haven.Errorf(haven.EINVALID, "S3 bucket required")
	}
	if cfg.Prefix != "" {
		if !strings.HasSuffix(cfg.Prefix, "/") || blob.ValidKey(strings.TrimSuffix(cfg.Prefix, "/")) != nil {
			return nil, haven.Errorf(haven.EINVALID, "S3 prefix must be a valid blob key followed by '/'")
		}
	}
	if cfg.PlainHTTP && !isLoopback(cfg.Endpoint) {
		return nil, haven.Errorf(haven.EINVALID, "plain HTTP to S3 is allowed only on the loopback interface")
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize {
		return nil, haven.Errorf(haven.EINVALID, "S3 part size must be at least %d bytes", MinPartSize)
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:    !cfg.PlainHTTP,
		Region:    cfg.Region,
		Transport: cfg.Transport,
	})
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "invalid S3 configuration")
	}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot reach S3")
	}
	if !ok {
		return nil, haven.Errorf(haven.EINVALID, "S3 bucket %s does not exist", cfg.Bucket)
	}
	return &Store{client: client, bucket: cfg.Bucket, prefix: cfg.Prefix, partSize: partSize}, nil
}

func isLoopback(endpoint string) bool {
	host := endpoint
	if h, _, err := net.SplitHostPort(endpoint); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := blob.ValidKey(key); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	opts := minio.PutObjectOptions{PartSize: s.partSize, ContentType: "application/octet-stream"}
	// An empty upload would go out as one empty part without a length,
	// which S3 refuses; peek one byte to send an empty blob as a plain PUT.
	var first [1]byte
	m, err := io.ReadFull(r, first[:])
	if err == io.EOF {
		if _, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, bytes.NewReader(nil), 0, opts); err != nil {
			return 0, s.wrap(err, key, "cannot write blob")
		}
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("blob: reading the upload: %w", err)
	}
	src := &countingReader{r: io.MultiReader(bytes.NewReader(first[:m]), r)}
	info, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, src, -1, opts)
	if err != nil {
		if src.err != nil { // the upload failed, not S3
			return src.n, fmt.Errorf("blob: reading the upload: %w", src.err)
		}
		if ctx.Err() != nil {
			return src.n, ctx.Err()
		}
		return src.n, s.wrap(err, key, "cannot write blob")
	}
	return info.Size, nil
}

// Get implements blob.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := blob.ValidKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap(err, key, "cannot read blob")
	}
	// GetObject is lazy; Stat sends the request so a missing blob is
	// reported here rather than at the first Read.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, s.wrap(err, key, "cannot read blob")
	}
	return obj, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (int64, error) {
	if err := blob.ValidKey(key); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		return 0, s.wrap(err, key, "cannot read blob")
	}
	return info.Size, nil
}

// Delete implements blob.Store. S3 reports success for a missing object,
// which is the behaviour blob.Store asks for.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		return s.wrap(err, key, "cannot delete blob")
	}
	return nil
}

// List implements blob.Lister over the objects under the store's prefix.
// (A multipart upload cut short by a killed process is not an object and
// is not listed; the bucket's AbortIncompleteMultipartUpload lifecycle
// rule is what removes those.)
func (s *Store) List(ctx context.Context, prefix string, fn func(key string, written time.Time) error) error {
	ctx, cancel := context.WithCancel(ctx) // stops the lister if fn ends the walk early
	defer cancel()
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if obj.Err != nil {
			return s.wrap(obj.Err, prefix, "cannot list blobs")
		}
		key := strings.TrimPrefix(obj.Key, s.prefix)
		if blob.ValidKey(key) != nil {
			continue
		}
		if err := fn(key, obj.LastModified); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// wrap turns an S3 error into a *haven.Error. The S3 error, which may name
// the bucket and endpoint, stays in the chain for the log.
func (s *Store) wrap(err error, key, message string) error {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, "NotFound":
		return blob.NotFound(key)
	case minio.NoSuchBucket, "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return haven.Wrap(haven.EUNAVAILABLE, err, message)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return haven.Wrap(haven.EUNAVAILABLE, err, message)
}

// countingReader counts the bytes read and remembers the reader's own
// error, so Put can tell a failed upload from a failing S3.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

package s3

import (
	"context"
	"crypto/fips140"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"haven"
	"haven/blob/blobtest"
)

const bucket = "haven-blobs"

// fakeS3 is an in-process S3 server over TLS. received counts the request
// body bytes it has read so far.
type fakeS3 struct {
	srv      *httptest.Server
	backend  *s3mem.Backend
	received atomic.Int64

	// The backend's clock stamps objects' LastModified: the real time,
	// or back moves it into the past.
	mu   sync.Mutex
	back time.Duration
}

func (f *fakeS3) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().Add(-f.back)
}

func (f *fakeS3) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// serveAsS3 runs the fake S3 server outside FIPS 140-3 enforcement: it
// plays the object store, whose MD5 ETags are S3's protocol and S3's own
// business, not Haven's; Haven's side of every request stays enforced
// under make test-fips.
func serveAsS3(h http.Handler, w http.ResponseWriter, r *http.Request) {
	fips140.WithoutEnforcement(func() { h.ServeHTTP(w, r) })
}

func newFakeS3(t testing.TB) *fakeS3 {
	t.Helper()
	f := &fakeS3{}
	f.backend = s3mem.New(s3mem.WithTimeSource(f))
	if err := f.backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	h := gofakes3.New(f.backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = countingBody{r.Body, &f.received}
		serveAsS3(h, w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeS3) config(prefix string) Config {
	return Config{
		Endpoint:        f.srv.Listener.Addr().String(),
		Region:          "us-east-1",
		Bucket:          bucket,
		Prefix:          prefix,
		AccessKeyID:     "test-access",
		SecretAccessKey: "test-secret",
		PartSize:        MinPartSize,
		// The test server's certificate is trusted through its own CA,
		// not by turning verification off.
		Transport: f.srv.Client().Transport,
	}
}

func newStore(t testing.TB, f *fakeS3, prefix string) *Store {
	t.Helper()
	s, err := New(context.Background(), f.config(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStoreConformance runs the suite under a prefix, the harder case: every
// method must add it, and a missing one would show as ENOTFOUND.
func TestStoreConformance(t *testing.T) {
	f := newFakeS3(t)
	blobtest.TestStore(t, newStore(t, f, "deployment-1/"))
}

func TestPrefixesKeepDeploymentsApart(t *testing.T) {
	f := newFakeS3(t)
	ctx := context.Background()
	a, b := newStore(t, f, "clinic-a/"), newStore(t, f, "clinic-b/")
	if _, err := a.Put(ctx, "scan", strings.NewReader("from a")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "scan"); haven.ErrorCode(err) != haven.ENOTFOUND {
		t.Fatalf("a blob put under one prefix is visible under another: %v", err)
	}
	if _, err := f.backend.HeadObject(bucket, "clinic-a/scan"); err != nil {
		t.Fatalf("object not stored under its prefix: %v", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	f := newFakeS3(t)
	for name, edit := range map[string]func(*Config){
		"scheme in endpoint":  func(c *Config) { c.Endpoint = "https://" + c.Endpoint },
		"no bucket":           func(c *Config) { c.Bucket = "" },
		"prefix without /":    func(c *Config) { c.Prefix = "clinic" },
		"prefix traversal":    func(c *Config) { c.Prefix = "../" },
		"prefix leading /":    func(c *Config) { c.Prefix = "/clinic/" },
		"part size too small": func(c *Config) { c.PartSize = 1 << 20 },
		"plain HTTP off loopback": func(c *Config) {
			c.Endpoint, c.PlainHTTP = "10.0.0.1:9000", true
		},
	} {
		cfg := f.config("")
		edit(&cfg)
		if _, err := New(context.Background(), cfg); haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("%s: New = %v, want EINVALID", name, err)
		}
	}
}

func TestMissingBucketIsReportedAtStart(t *testing.T) {
	f := newFakeS3(t)
	cfg := f.config("")
	cfg.Bucket = "no-such-bucket"
	if _, err := New(context.Background(), cfg); haven.ErrorCode(err) != haven.EINVALID {
		t.Fatalf("New with a missing bucket = %v, want EINVALID", err)
	}
}

// TestTLSIsTheDefault points the store at a server that speaks plain HTTP:
// without PlainHTTP the client must insist on TLS and fail.
func TestTLSIsTheDefault(t *testing.T) {
	var plainRequests atomic.Int64
	backend := s3mem.New()
	backend.CreateBucket(bucket)
	h := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainRequests.Add(1)
		serveAsS3(h, w, r)
	}))
	defer srv.Close()
	cfg := Config{Endpoint: srv.Listener.Addr().String(), Bucket: bucket, AccessKeyID: "k", SecretAccessKey: "test-secret", Region: "us-east-1"}
	if _, err := New(context.Background(), cfg); err == nil {
		t.Fatal("New reached a plain-HTTP endpoint without PlainHTTP")
	}
	if plainRequests.Load() != 0 {
		t.Fatalf("%d requests were served over plain HTTP", plainRequests.Load())
	}
	cfg.PlainHTTP = true // loopback only, so allowed
	if _, err := New(context.Background(), cfg); err != nil {
		t.Fatalf("PlainHTTP to a loopback endpoint: %v", err)
	}
}

// readAheadReader records how far the client has read ahead of what the
// server has received.
type readAheadReader struct {
	r        io.Reader
	read     int64
	received *atomic.Int64
	mu       sync.Mutex
	maxAhead int64
}

func (r *readAheadReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.read += int64(n)
	r.mu.Lock()
	r.maxAhead = max(r.maxAhead, r.read-r.received.Load())
	r.mu.Unlock()
	return n, err
}

// TestUploadBuffersAtMostOnePart streams a blob several parts long and
// checks that the client never reads more than one part ahead of what the
// server has received: client memory per upload is bounded by PartSize, not
// by the blob's size. The fake server keeps every object in its own memory,
// so the process heap would measure the server, not the client; the
// read-ahead is the client's buffering, measured directly.
func TestUploadBuffersAtMostOnePart(t *testing.T) {
	f := newFakeS3(t)
	s := newStore(t, f, "")
	size := int64(4*MinPartSize + 12345)
	if testing.Short() {
		size = 2*MinPartSize + 12345
	}
	src := &readAheadReader{r: blobtest.NewReader(size, 9), received: &f.received}
	n, err := s.Put(context.Background(), "large/streamed", src)
	if err != nil || n != size {
		t.Fatalf("Put = %d, %v; want %d", n, err, size)
	}
	bound := int64(MinPartSize + 64<<10) // one part, plus one read's worth
	t.Logf("streamed %d MiB; client read at most %.2f MiB ahead of the server", size>>20, float64(src.maxAhead)/(1<<20))
	if src.maxAhead > bound {
		t.Fatalf("client read %d bytes ahead of the server, more than one part (%d)", src.maxAhead, bound)
	}
	if got, err := s.Stat(context.Background(), "large/streamed"); err != nil || got != size {
		t.Fatalf("Stat = %d, %v", got, err)
	}
}

func TestSweepRemovesOldOrphans(t *testing.T) {
	f := newFakeS3(t)
	s := newStore(t, f, "deployment-1/")
	blobtest.TestSweep(t, s, func(t *testing.T, key string, b []byte) {
		f.mu.Lock()
		f.back = 2 * time.Hour
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.back = 0
			f.mu.Unlock()
		}()
		if _, err := s.Put(context.Background(), key, strings.NewReader(string(b))); err != nil {
			t.Fatal(err)
		}
	})
}

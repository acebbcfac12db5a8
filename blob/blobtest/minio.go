package blobtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOVersion is the MinIO server the tests run against, built from its
// Go module (.ci/run builds it when missing).
const MinIOVersion = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIO is a real MinIO server run as a separate process on a free
// loopback port, over TLS with a certificate made for the test, with its
// own data directory: the S3 engine a deployment beyond one machine uses,
// beside the in-process fake.
type MinIO struct {
	Endpoint  string // host:port, no scheme
	AccessKey string
	SecretKey string
	DataDir   string // where the server keeps objects, to search for plaintext
	CAFile    string // PEM of the certificate's CA, for SSL_CERT_FILE
	// Transport trusts the server's certificate (and nothing else).
	Transport http.RoundTripper

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  strings.Builder
}

// findTool returns the path of an installed Go tool, looking in PATH and
// in GOBIN / GOPATH/bin, where `go install` puts it. (internal/testkit has
// the same lookup; blob packages may not reach it.)
func findTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// StartMinIO starts a MinIO server and stops it when the test ends.
// Outside CI a missing binary skips the test; in CI it fails it, since CI
// builds it (.ci/run).
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := findTool("minio")
	if bin == "" {
		how := "go install " + MinIOVersion
		if os.Getenv("CI") == "true" {
			t.Fatalf("minio is not installed, and CI must run this test: %s", how)
		}
		t.Skipf("minio is not installed (%s)", how)
	}
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		t.Fatal(err)
	}
	pool := writeLoopbackCert(t, certs)
	var secret [16]byte
	rand.Read(secret[:])
	m := &MinIO{
		AccessKey: "haven-test",
		SecretKey: hex.EncodeToString(secret[:]),
		DataDir:   filepath.Join(dir, "data"),
		CAFile:    filepath.Join(certs, "public.crt"),
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		done:      make(chan struct{}),
	}
	m.Endpoint = freeAddr(t)
	m.cmd = exec.Command(bin, "server", "--quiet", "--address", m.Endpoint, "--console-address", freeAddr(t),
		"--certs-dir", certs, m.DataDir)
	m.cmd.Env = append(outsideEnv(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CONFIG_ENV_FILE=")
	m.cmd.Stdout, m.cmd.Stderr = m, m
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	t.Cleanup(func() { m.cmd.Process.Kill(); <-m.done })

	client := &http.Client{Transport: m.Transport, Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get("https://" + m.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m
			}
		}
		select {
		case <-m.done:
			t.Fatalf("minio exited early:\n%s", m.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("minio did not become ready: %v\n%s", err, m.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Write collects the server's output for failure messages.
func (m *MinIO) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.log.Len() < 1<<20 {
		m.log.Write(p)
	}
	return len(p), nil
}

// Log returns what the server printed.
func (m *MinIO) Log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log.String()
}

// MakeBucket creates a bucket through the S3 API.
func (m *MinIO) MakeBucket(t testing.TB, name string) {
	t.Helper()
	c, err := minio.New(m.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""), Secure: true,
		Region: "us-east-1", Transport: m.Transport})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("minio: make bucket %s: %v", name, err)
	}
}

// FilesContaining returns the files under the server's data directory
// whose bytes contain needle: a plaintext that must never reach storage.
func (m *MinIO) FilesContaining(t testing.TB, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(m.DataDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), string(needle)) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// freeAddr returns a loopback address no one listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeLoopbackCert writes a self-signed certificate for 127.0.0.1 as
// MinIO expects it (public.crt, private.key) and returns a pool holding it.
func writeLoopbackCert(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "haven test minio"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "public.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "private.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// outsideEnv is this process's environment for a server we did not write,
// without GODEBUG: under make test-fips it holds fips140=only, which
// governs Haven's cryptography, not the engine's (MinIO, for one, takes an
// MD5 of its own binary as it starts).
func outsideEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	return env
}

package main_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var havenBin string

// TestMain builds the real binary once; these tests run it as an operator
// would, as a separate process.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "haven-bin-")
	if err != nil {
		panic(err)
	}
	havenBin = filepath.Join(dir, "haven")
	if out, err := exec.Command("go", "build", "-o", havenBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runHaven runs the binary to completion and returns its exit code and output.
func runHaven(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(havenBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HAVEN_") {
			env = append(env, kv)
		}
	}
	return env
}

// server is a running haven serve process.
type server struct {
	cmd    *exec.Cmd
	URL    string
	out    *syncBuffer
	errOut *lockedWriter // the log
	done   chan error
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServe starts haven serve on a free loopback port and waits until
// it answers /healthz.
func startServe(t *testing.T, dataDir string, extra ...string) *server {
	t.Helper()
	return startServeEnv(t, nil, dataDir, extra...)
}

// startServeEnv is startServe with env added to the process's environment.
func startServeEnv(t *testing.T, env []string, dataDir string, extra ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0", "--turn-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(havenBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	stdout, _ := cmd.StdoutPipe()
	errBuf := &lockedWriter{}
	cmd.Stderr = errBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, out: &syncBuffer{}, errOut: errBuf, done: make(chan error, 1)}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`serving (https://\S+)`)
		for sc.Scan() {
			s.out.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case s.URL = <-urlc:
	case err := <-s.done:
		t.Fatalf("serve exited early: %v\n%s", err, errBuf.String())
	case <-time.After(3 * time.Minute): // generous: CI machines are shared and --demo hashes passwords
		t.Fatalf("serve did not start\n%s", errBuf.String())
	}
	return s
}

var insecureClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

func TestServeAnswersAndShutsDownGracefully(t *testing.T) {
	s := startServe(t, t.TempDir())
	resp, err := insecureClient.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("readyz %d over %x", resp.StatusCode, resp.TLS.Version)
	}
	if !strings.Contains(s.out.String(), "fingerprint") {
		t.Fatalf("no fingerprint printed:\n%s", s.out)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no graceful shutdown after SIGTERM")
	}
}

// TestWrongConfigurationExitsWithOneClearLine checks each misconfiguration
// an operator is likely to make: non-zero exit, one line naming the
// setting, and no database created.
func TestWrongConfigurationExitsWithOneClearLine(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, []byte("x"), 0o600)

	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"BadDBURL", nil, []string{"--db", "mysql://root@localhost/haven"}, "--db"},
		{"UnreachablePostgres", nil, []string{"--db", "postgres://haven:s3cret@127.0.0.1:1/haven?connect_timeout=2"}, "cannot reach database"},
		{"UnreadableCert", nil, []string{"--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"}, "--tls-cert"},
		{"CertWithoutKey", nil, []string{"--tls-cert", notADir}, "--tls-key"},
		{"GarbageCert", nil, []string{"--tls-cert", notADir, "--tls-key", notADir}, "--tls-cert"},
		{"PortInUse", nil, []string{"--addr", busy.Addr().String()}, "address already in use"},
		{"BadAddr", nil, []string{"--addr", "nonsense"}, "--addr"},
		{"PublicURLIsAnIP", nil, []string{"--public-url", "https://10.0.0.5:8443"}, "--public-url"},
		{"UnwritableDataDir", nil, []string{"--data-dir", filepath.Join(notADir, "sub")}, "--data-dir"},
		{"BadEnvBool", []string{"HAVEN_DEMO=maybe"}, nil, "HAVEN_DEMO"},
		{"UnreadableSecretFile", []string{"HAVEN_DB_FILE=/nonexistent/db-url"}, nil, "HAVEN_DB_FILE"},
		{"SMTPPasswordInURL", nil, []string{"--smtp-url", "smtp://haven:s3cret@mail.example.org", "--mail-from", "no-reply@clinic.example"}, "--smtp-url"},
		{"SMTPPlainHTTP", nil, []string{"--smtp-url", "http://mail.example.org", "--mail-from", "no-reply@clinic.example"}, "--smtp-url"},
		{"SMTPWithoutFrom", nil, []string{"--smtp-url", "smtp://mail.example.org"}, "--mail-from"},
		{"BadMailFrom", nil, []string{"--mail-from", "Clinic <no-reply@clinic.example>"}, "--mail-from"},
		{"SMTPUserWithoutPassword", nil, []string{"--smtp-url", "smtp://haven@mail.example.org", "--mail-from", "no-reply@clinic.example"}, "--smtp-password"},
		{"StripeKeyWithoutWebhookSecret", nil, []string{"--stripe-key", "sk_test_s3cret"}, "--stripe-webhook-secret"},
		{"StripePublishableKey", nil, []string{"--stripe-key", "pk_test_s3cret", "--stripe-webhook-secret", "whsec_s3cret"}, "--stripe-key"},
		{"StripeBadWebhookSecret", []string{"HAVEN_STRIPE_KEY=sk_test_s3cret", "HAVEN_STRIPE_WEBHOOK_SECRET=s3cret"}, nil, "--stripe-webhook-secret"},
		{"SMTPCAUnreadable", nil, []string{"--smtp-url", "smtp://mail.example.org", "--mail-from", "no-reply@clinic.example", "--smtp-ca", "/nonexistent/ca.pem"}, "--smtp-ca"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			args := append([]string{"serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0"}, tc.args...)
			code, stdout, stderr := runHaven(t, tc.env, args...)
			if code == 0 {
				t.Fatalf("exit 0; stdout %q", stdout)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("want one line mentioning %q, got:\n%s", tc.want, stderr)
			}
			if strings.Contains(stderr, "s3cret") {
				t.Fatalf("password leaked: %s", stderr)
			}
			if _, err := os.Stat(filepath.Join(dataDir, "haven.db")); err == nil {
				t.Fatal("a database was created despite the bad configuration")
			}
		})
	}
}

func TestMigrateAndVersionAndHelp(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runHaven(t, nil, "migrate", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "schema version") {
		t.Fatalf("migrate: %d %s %s", code, out, errOut)
	}
	code, out, _ = runHaven(t, nil, "migrate", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "applied 0 migration") {
		t.Fatalf("second migrate: %d %s", code, out)
	}
	code, out, _ = runHaven(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "haven ") {
		t.Fatalf("version: %d %q", code, out)
	}
	for _, cmd := range []string{"serve", "migrate", "version"} {
		code, _, errOut := runHaven(t, nil, cmd, "--help")
		if code != 0 || !strings.Contains(errOut, "Usage: haven "+cmd) {
			t.Fatalf("%s --help: %d %q", cmd, code, errOut)
		}
	}
	code, _, errOut = runHaven(t, nil, "frobnicate")
	if code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown: %d %q", code, errOut)
	}
}

func TestEnvironmentConfiguresServe(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runHaven(t, []string{"HAVEN_DATA_DIR=" + dir, "HAVEN_ADDR=nonsense"}, "serve")
	if code != 1 || !strings.Contains(errOut, "--addr") {
		t.Fatalf("HAVEN_ADDR not honoured: %d %q", code, errOut)
	}
	urlFile := filepath.Join(dir, "db-url")
	os.WriteFile(urlFile, []byte("postgres://x:topsecret@127.0.0.1:1/x?connect_timeout=1\n"), 0o600)
	code, _, errOut = runHaven(t, []string{"HAVEN_DATA_DIR=" + dir, "HAVEN_DB_FILE=" + urlFile}, "migrate")
	if code != 1 || !strings.Contains(errOut, "cannot reach database") || strings.Contains(errOut, "topsecret") {
		t.Fatalf("HAVEN_DB_FILE: %d %q", code, errOut)
	}
}

// lockedWriter is an io.Writer safe to read while a process writes to it.
type lockedWriter struct{ syncBuffer }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.WriteString(string(p))
	return len(p), nil
}

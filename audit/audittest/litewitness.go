package audittest

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"haven/internal/testkit"
)

// Litewitness is an independent C2SP tlog-witness (filippo.io/torchwood's
// litewitness, v0.6.1) running as a separate process, for tests that must
// show Haven speaks the protocol as others implement it.
type Litewitness struct {
	URL         string // its submission prefix
	VerifierKey string // its cosignature key, as it announced it
	db, ctl     string
	cmd         *exec.Cmd
}

// StartLitewitness starts litewitness trusting each log origin's verifier
// key (origin -> key). Outside CI a missing binary skips the test; in CI
// it fails it, since CI installs it (.ci/run).
func StartLitewitness(t testing.TB, logs map[string]string) *Litewitness {
	t.Helper()
	bin, ctl := testkit.FindTool("litewitness"), testkit.FindTool("witnessctl")
	if bin == "" || ctl == "" {
		const how = "go install filippo.io/torchwood/cmd/litewitness@v0.6.1 filippo.io/torchwood/cmd/witnessctl@v0.6.1"
		if os.Getenv("CI") == "true" {
			t.Fatalf("litewitness or witnessctl is not installed, and CI must run this test: %s", how)
		}
		t.Skipf("litewitness or witnessctl is not installed (%s)", how)
	}
	// A short directory: a unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "lw-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	w := &Litewitness{db: filepath.Join(dir, "witness.db"), ctl: ctl}
	for origin, key := range logs {
		w.AddLog(t, origin, key)
	}

	// litewitness signs through the ssh-agent protocol; serve one holding
	// a fresh Ed25519 key.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	sshPub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	port, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := port.Addr().String()
	port.Close()

	w.cmd = exec.Command(bin, "-db", w.db, "-name", "witness.test/litewitness", "-key", ssh.FingerprintSHA256(sshPub),
		"-ssh-agent", sock, "-listen", addr)
	stderr, _ := w.cmd.StderrPipe()
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.cmd.Process.Kill(); w.cmd.Wait() })
	var mu sync.Mutex
	var logText strings.Builder
	vkeyc, ready := make(chan string, 1), make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		vk := regexp.MustCompile(`vkey=(\S+)`)
		for sc.Scan() {
			mu.Lock()
			logText.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := vk.FindStringSubmatch(sc.Text()); m != nil {
				vkeyc <- m[1]
			}
			if strings.Contains(sc.Text(), "listening") {
				ready <- struct{}{}
			}
		}
	}()
	deadline := time.After(30 * time.Second)
	for w.VerifierKey == "" || w.URL == "" {
		select {
		case w.VerifierKey = <-vkeyc:
		case <-ready:
			w.URL = "http://" + addr
		case <-deadline:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("litewitness did not start:\n%s", logText.String())
		}
	}
	// Listening is logged just before the listener opens: wait for it.
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-deadline:
			t.Fatalf("litewitness does not accept connections on %s", addr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return w
}

// AddLog tells the witness about a log origin and the key it trusts for
// it (with witnessctl, while it runs).
func (w *Litewitness) AddLog(t testing.TB, origin, key string) {
	t.Helper()
	if out, err := exec.Command(w.ctl, "add-log", "-db", w.db, "-origin", origin).CombinedOutput(); err != nil {
		t.Fatalf("witnessctl add-log: %v\n%s", err, out)
	}
	w.AddKey(t, origin, key)
}

// AddKey makes the witness trust one more key for a known log.
func (w *Litewitness) AddKey(t testing.TB, origin, key string) {
	t.Helper()
	if out, err := exec.Command(w.ctl, "add-key", "-db", w.db, "-origin", origin, "-key", key).CombinedOutput(); err != nil {
		t.Fatalf("witnessctl add-key: %v\n%s", err, out)
	}
}

// Entry is the --audit-witness setting for this witness.
func (w *Litewitness) Entry() string { return w.URL + " " + w.VerifierKey }

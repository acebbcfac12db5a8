package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestKeysRotateAndStatus rotates every practice key and then the root of
// a seeded install through the CLI, and checks that the server still opens
// every key afterwards and that status shows the old versions retired.
func TestKeysRotateAndStatus(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir, "--demo")
	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done

	code, out, errOut := runHaven(t, nil, "keys", "rotate", "--all", "--data-dir", dataDir)
	if code != 0 || strings.Count(out, "old version retired") != 2 {
		t.Fatalf("rotate --all: %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "[==============================]") {
		t.Fatalf("no progress shown: %q", errOut)
	}
	oldRoot, _ := os.ReadFile(filepath.Join(dataDir, "keys", "root.key"))
	code, out, errOut = runHaven(t, nil, "keys", "rotate", "--root", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "root rotated") {
		t.Fatalf("rotate --root: %d\n%s%s", code, out, errOut)
	}
	newRoot, _ := os.ReadFile(filepath.Join(dataDir, "keys", "root.key"))
	if string(oldRoot) == string(newRoot) {
		t.Fatal("the root key file did not change")
	}
	code, out, _ = runHaven(t, nil, "keys", "status", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "retired") || strings.Contains(out, "old root") {
		t.Fatalf("status:\n%s", out)
	}
	// The server starts on the rotated keys (it opens every practice key's
	// wrapping at start) and the audit log, which records the rotations, verifies.
	s = startServe(t, dataDir)
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-s.done; err != nil {
		t.Fatalf("serve after rotation: %v", err)
	}
	code, out, _ = runHaven(t, nil, "audit", "verify", "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("audit verify after rotation:\n%s", out)
	}
	// With the retired root instead of the current one, Haven refuses to start.
	retired, _ := filepath.Glob(filepath.Join(dataDir, "keys", "root.key.retired-*"))
	if len(retired) != 1 {
		t.Fatalf("retired root file: %v", retired)
	}
	code, _, errOut = runHaven(t, nil, "keys", "status", "--data-dir", dataDir, "--root-key", retired[0])
	if code == 0 || !strings.Contains(errOut, "root key") {
		t.Fatalf("wrong root accepted: %d %s", code, errOut)
	}
}

// TestWrongRootKeyStopsServeWithoutWrites starts serve with a different
// root key file: it must exit with one clear line and change no file.
func TestWrongRootKeyStopsServeWithoutWrites(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir, "--demo")
	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done
	db := filepath.Join(dataDir, "haven.db")
	before, _ := os.ReadFile(db)
	other := filepath.Join(t.TempDir(), "other.key")
	code, _, errOut := runHaven(t, nil, "keys", "status", "--data-dir", t.TempDir(), "--root-key", other) // makes a fresh, unrelated key
	if code != 0 {
		t.Fatalf("making another key: %s", errOut)
	}
	code, _, errOut = runHaven(t, nil, "serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0", "--root-key", other)
	if code == 0 || len(strings.Split(strings.TrimSpace(errOut), "\n")) != 1 || !strings.Contains(errOut, "root key") {
		t.Fatalf("wrong root: %d %q", code, errOut)
	}
	after, _ := os.ReadFile(db)
	if string(before) != string(after) {
		t.Fatal("the database changed")
	}
	os.Remove(filepath.Join(dataDir, "keys", "root.key"))
	code, _, errOut = runHaven(t, nil, "serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errOut, "root-key") {
		t.Fatalf("missing root: %d %q", code, errOut)
	}
}

package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRefusesAHalfConfiguredMLLPListener: the listener recognises
// labs only by their client certificates, so an address without the CAs
// that issue them (or CAs that are not PEM) stops serve before any data
// is touched, naming the flags.
func TestServeRefusesAHalfConfiguredMLLPListener(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runHaven(t, nil, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--mllp-addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "--mllp-addr and --mllp-client-ca") {
		t.Fatalf("address without CAs: %d %q", code, errOut)
	}
	bad := filepath.Join(dir, "ca.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	code, _, errOut = runHaven(t, nil, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--mllp-addr", "127.0.0.1:0", "--mllp-client-ca", bad)
	if code != 1 || !strings.Contains(errOut, "--mllp-client-ca") || !strings.Contains(errOut, "no PEM certificate") {
		t.Fatalf("CAs that are not PEM: %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "haven.db")); err == nil {
		t.Fatal("serve opened the database before refusing its configuration")
	}
}

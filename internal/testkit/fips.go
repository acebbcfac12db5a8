package testkit

import (
	"crypto/fips140"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InFIPSMode makes the calling test run with Go's FIPS 140-3 module
// enforced (GODEBUG=fips140=only: non-approved algorithms return errors
// or panic). FIPS mode is fixed when a program starts, so outside it the
// test binary runs itself again, for this test only, with the setting,
// reports the child's result and returns false: the caller returns at
// once. Inside FIPS mode (the child, or make test-fips) it returns true
// and the test goes on. So make test covers the FIPS paths as well.
func InFIPSMode(t *testing.T) bool {
	t.Helper()
	if fips140.Enabled() {
		if !fips140.Enforced() {
			t.Fatal("FIPS 140-3 mode is on but not enforced: run with GODEBUG=fips140=only")
		}
		return true
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatal("InFIPSMode runs a whole top-level test again; call it before any subtest")
	}
	if testing.Short() {
		t.Skip("FIPS 140-3 child run left out of -short")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=fips140=only")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("under GODEBUG=fips140=only: %v\n%s", err, out)
	}
	return false
}

// OutsideEnv is this process's environment for a server we did not write,
// without GODEBUG: under make test-fips it holds fips140=only, which
// governs Haven's cryptography, not the engine's (MinIO, for one, takes an
// MD5 of its own binary as it starts; Vault and LiveKit use algorithms of
// their own choosing).
func OutsideEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	return env
}

package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"haven/video/livekit/livekittest"
)

// `haven serve --video-engine livekit` registers LiveKit in the vendor
// registry and refuses to start until it has a current agreement covering
// full PHI (video is PHI); with one recorded, it serves. The API secret is
// read from a file, named by HAVEN_LIVEKIT_API_SECRET_FILE or by the flag
// --livekit-api-secret_FILE, as other secrets are.
func TestServeWithLiveKitNeedsItsAgreement(t *testing.T) {
	lk := livekittest.Start(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "livekit-secret")
	if err := os.WriteFile(secret, []byte(lk.APISecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HAVEN_LIVEKIT_API_SECRET_FILE=" + secret}
	dataDir := filepath.Join(dir, "data")
	args := []string{"serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0", "--video-engine", "livekit",
		"--livekit-url", lk.URL, "--livekit-api-key", lk.APIKey}

	code, out, errOut := runHaven(t, env, args...)
	m := regexp.MustCompile(`LiveKit \(\S+\) has no current business associate agreement.*--id ([a-z0-9]+)`).FindStringSubmatch(errOut)
	if code == 0 || m == nil {
		t.Fatalf("serve without LiveKit's agreement: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runHaven(t, nil, "vendors", "update", "--data-dir", dataDir, "--id", m[1],
		"--baa-signed", "2026-01-05", "--baa-expires", "2099-12-31", "--phi", "full"); code != 0 {
		t.Fatalf("vendors update: exit %d\n%s%s", code, out, errOut)
	}
	s := startServeEnv(t, nil, dataDir, "--video-engine", "livekit", "--livekit-url", lk.URL, "--livekit-api-key", lk.APIKey,
		"--livekit-api-secret_FILE", secret)
	if strings.Contains(s.out.String(), "without a current business associate agreement") {
		t.Fatalf("serve still says LiveKit lacks an agreement:\n%s", s.out)
	}

	// The settings are checked before anything starts.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--video-engine", "jitsi"}, "--video-engine"},
		{[]string{"--video-engine", "livekit", "--livekit-api-key", "k"}, "--livekit-url"},
		{[]string{"--livekit-url", "wss://livekit.example"}, "need --video-engine livekit"},
		{[]string{"--video-engine", "livekit", "--livekit-url", "wss://livekit.example", "--livekit-api-key", "k", "--livekit-api-secret_FILE", filepath.Join(dir, "missing")}, "livekit-api-secret_FILE"},
		{[]string{"--video-engine", "livekit", "--livekit-url", "ws://livekit.example", "--livekit-api-key", "k", "--livekit-api-secret", strings.Repeat("s", 40)}, "wss://"},
	} {
		code, _, errOut := runHaven(t, nil, append([]string{"serve", "--data-dir", filepath.Join(dir, "other"), "--addr", "127.0.0.1:0"}, c.args...)...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("serve %v: exit %d, %q (want it to name %s)", c.args, code, errOut, c.want)
		}
	}
}

package main_test

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
)

// fipsOnly is the environment of a Haven in FIPS 140-3 mode with every
// non-approved algorithm made to fail, so anything Haven still reaches
// outside the module breaks the test instead of passing quietly.
var fipsOnly = []string{"GODEBUG=fips140=only"}

// TestServeInFIPSMode starts haven serve --fips under fips140=only with the
// demo practices (whose passwords are hashed and records sealed at start),
// signs a clinician in with password and authenticator, registers a patient
// and reads the chart back (sealed and opened), and checks that TLS uses
// the approved key exchanges: the post-quantum hybrid when offered, P-256
// for a classical client, and no bare X25519.
func TestServeInFIPSMode(t *testing.T) {
	dataDir := t.TempDir()
	s := startServeEnv(t, fipsOnly, dataDir, "--fips", "--demo")
	if !strings.Contains(s.out.String(), "FIPS 140-3 mode: only") {
		t.Fatalf("serve did not report FIPS mode:\n%s", s.out)
	}

	host := strings.TrimPrefix(s.URL, "https://")
	if u, err := url.Parse(s.URL); err == nil {
		host = u.Host
	}
	for _, tc := range []struct {
		name   string
		offer  []tls.CurveID
		want   tls.CurveID
		refuse bool
	}{
		{"browser default", nil, tls.X25519MLKEM768, false},
		{"NIST hybrid", []tls.CurveID{tls.SecP256r1MLKEM768}, tls.SecP256r1MLKEM768, false},
		{"classical P-256", []tls.CurveID{tls.CurveP256}, tls.CurveP256, false},
		{"bare X25519", []tls.CurveID{tls.X25519}, 0, true},
	} {
		conn, err := tls.DialWithDialer(&net.Dialer{}, "tcp", host, &tls.Config{InsecureSkipVerify: true, CurvePreferences: tc.offer})
		if tc.refuse {
			if err == nil {
				conn.Close()
				t.Fatalf("%s: handshake succeeded with %v; FIPS mode must refuse it", tc.name, conn.ConnectionState().CurveID)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		st := conn.ConnectionState()
		conn.Close()
		if st.Version != tls.VersionTLS13 || st.CurveID != tc.want {
			t.Fatalf("%s: version %x key exchange %v, want TLS 1.3 with %v", tc.name, st.Version, st.CurveID, tc.want)
		}
	}

	c := newAPIClient(t, s.URL)
	c.signInWorkforce("frontdesk@riverside.example")
	var out struct {
		PatientID string `json:"patient_id"`
	}
	const name = "Fips Mode Marker"
	if code, err := c.call("POST", "/api/v1/patients", map[string]any{"mrn": "FIPS-1",
		"demographics": map[string]string{"name": name, "date_of_birth": "1990-01-01"},
		"contact":      map[string]string{"email": "fips@patient.example"}}, &out); err != nil || code != http.StatusCreated {
		t.Fatalf("register a patient in FIPS mode: %d %v", code, err)
	}
	var chart json.RawMessage
	if code, err := c.call("GET", "/api/v1/patients/"+out.PatientID, nil, &chart); err != nil || code != http.StatusOK || !strings.Contains(string(chart), name) {
		t.Fatalf("read the chart back in FIPS mode: %d %v %s", code, err, chart)
	}

	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-s.done; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.errOut.String())
	}
	if strings.Contains(s.errOut.String(), "panic") {
		t.Fatalf("a panic in FIPS mode:\n%s", s.errOut.String())
	}
}

// TestFIPSFlagWithoutFIPSModeRefusesToStart: --fips is an assertion; a
// process not in Go's FIPS mode exits with one line saying how to fix it.
func TestFIPSFlagWithoutFIPSModeRefusesToStart(t *testing.T) {
	code, _, stderr := runHaven(t, []string{"GODEBUG=fips140=off"}, "serve", "--fips", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "--fips") || !strings.Contains(stderr, "GODEBUG=fips140=on") {
		t.Fatalf("serve --fips outside FIPS mode: exit %d, %q", code, stderr)
	}
}

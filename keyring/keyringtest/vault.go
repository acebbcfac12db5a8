package keyringtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"haven/internal/testkit"
)

// VaultVersion is the Vault server the KMS tests run against (.ci/run
// builds it from its module source when missing).
const VaultVersion = "github.com/hashicorp/vault@v1.21.1"

// Vault is a real HashiCorp Vault server run as a separate process on a
// free loopback port, with file storage in the test's own directory,
// initialised and unsealed by the test, with the transit engine mounted:
// the KMS a deployment beyond one machine keeps its root key in. Unlike
// Vault's dev mode, its storage outlives the process, so the test can stop
// it (an outage) and start it again (the recovery) with the same keys.
type Vault struct {
	Addr  string // http://127.0.0.1:port
	Token string // the root token

	bin, config, unsealKey string
	t                      testing.TB

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *testkit.ServerLog
}

// StartVault starts, initialises and unseals a Vault server with the
// transit engine mounted at transit/, and stops it when the test ends.
// Outside CI a missing binary skips the test; in CI it fails it.
func StartVault(t testing.TB) *Vault {
	t.Helper()
	bin := testkit.FindTool("vault")
	if bin == "" {
		how := "build " + VaultVersion + " as .ci/run does"
		if testkit.InCI() {
			t.Fatalf("vault is not installed, and CI must run this test: %s", how)
		}
		t.Skipf("vault is not installed (%s)", how)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	v := &Vault{Addr: "http://" + addr, bin: bin, t: t, config: filepath.Join(dir, "vault.hcl"), log: &testkit.ServerLog{}}
	hcl := fmt.Sprintf(`storage "file" { path = %q }
listener "tcp" {
  address     = %q
  tls_disable = true
}
disable_mlock = true
api_addr      = %q
ui            = false
`, filepath.Join(dir, "data"), addr, v.Addr)
	if err := os.WriteFile(v.config, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	v.launch()

	var init struct {
		Keys      []string `json:"keys_base64"`
		RootToken string   `json:"root_token"`
	}
	v.call("PUT", "sys/init", map[string]any{"secret_shares": 1, "secret_threshold": 1}, &init)
	if len(init.Keys) != 1 || init.RootToken == "" {
		t.Fatalf("vault init answered %+v", init)
	}
	v.unsealKey, v.Token = init.Keys[0], init.RootToken
	v.unseal()
	v.call("POST", "sys/mounts/transit", map[string]any{"type": "transit"}, nil)
	return v
}

// launch starts the process and waits until it answers.
func (v *Vault) launch() {
	t := v.t
	t.Helper()
	cmd := exec.Command(v.bin, "server", "-config", v.config)
	cmd.Env = append(testkit.OutsideEnv(), "VAULT_DISABLE_MLOCK=true", "SKIP_SETCAP=1")
	cmd.Stdout, cmd.Stderr = v.log, v.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	v.mu.Lock()
	v.cmd, v.done = cmd, done
	v.mu.Unlock()
	v.waitHealth(func(code int) bool { return code != 0 }, done)
}

// waitHealth polls sys/health until ok accepts its status code (0: no
// answer).
func (v *Vault) waitHealth(ok func(code int) bool, done chan struct{}) {
	t := v.t
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code := 0
		if resp, err := client.Get(v.Addr + "/v1/sys/health"); err == nil {
			code = resp.StatusCode
			resp.Body.Close()
		}
		if ok(code) {
			return
		}
		select {
		case <-done:
			t.Fatalf("vault exited:\n%s", v.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault did not become ready (health %d):\n%s", code, v.log)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func (v *Vault) unseal() {
	v.t.Helper()
	v.call("PUT", "sys/unseal", map[string]any{"key": v.unsealKey}, nil)
	v.mu.Lock()
	done := v.done
	v.mu.Unlock()
	v.waitHealth(func(code int) bool { return code == http.StatusOK }, done)
}

// Stop kills the server at once, as a crash or a network cut would look
// to Haven. Its storage stays for Start.
func (v *Vault) Stop() {
	v.mu.Lock()
	cmd, done := v.cmd, v.done
	v.cmd = nil
	v.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		<-done
	}
}

// Start brings a stopped server back on the same address and storage,
// unsealed: the same transit keys as before the outage.
func (v *Vault) Start() {
	v.t.Helper()
	v.launch()
	v.unseal()
}

// CreateTransitKey makes a transit key named name.
func (v *Vault) CreateTransitKey(name string) {
	v.t.Helper()
	v.call("POST", "transit/keys/"+name, map[string]any{"type": "aes256-gcm96"}, nil)
}

// RotateTransitKey makes a new version of the key, which encrypts from now
// on; older versions still decrypt until MinDecryptionVersion is raised.
// It returns the new version.
func (v *Vault) RotateTransitKey(name string) int {
	v.t.Helper()
	v.call("POST", "transit/keys/"+name+"/rotate", map[string]any{}, nil)
	var out struct {
		Data struct {
			LatestVersion int `json:"latest_version"`
		} `json:"data"`
	}
	v.call("GET", "transit/keys/"+name, nil, &out)
	return out.Data.LatestVersion
}

// SetMinDecryptionVersion stops the key's older versions from decrypting:
// what an operator does once every ciphertext was re-wrapped.
func (v *Vault) SetMinDecryptionVersion(name string, version int) {
	v.t.Helper()
	v.call("POST", "transit/keys/"+name+"/config", map[string]any{"min_decryption_version": version}, nil)
}

// Env returns the variables through which Haven's hashivault:// keeper
// reaches this server.
func (v *Vault) Env() []string {
	return []string{"VAULT_ADDR=" + v.Addr, "VAULT_TOKEN=" + v.Token}
}

// Log returns what the server printed.
func (v *Vault) Log() string { return v.log.String() }

// call sends one request to the Vault HTTP API and fails the test on any
// error status.
func (v *Vault) call(method, path string, in, out any) {
	t := v.t
	t.Helper()
	var body bytes.Buffer
	if in != nil {
		json.NewEncoder(&body).Encode(in)
	}
	req, err := http.NewRequest(method, v.Addr+"/v1/"+path, &body)
	if err != nil {
		t.Fatal(err)
	}
	if v.Token != "" {
		req.Header.Set("X-Vault-Token", v.Token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("vault %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("vault %s %s: %d %s", method, path, resp.StatusCode, raw.String())
	}
	if out != nil {
		if err := json.Unmarshal(raw.Bytes(), out); err != nil {
			t.Fatalf("vault %s %s: %v in %s", method, path, err, raw.String())
		}
	}
}

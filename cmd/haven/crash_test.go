package main_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"haven/auth/totp"
	"haven/demo"
)

// apiClient talks to a running haven over HTTPS with a bearer session.
type apiClient struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

func newAPIClient(t *testing.T, base string) *apiClient {
	return &apiClient{t: t, base: base, hc: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 16}}}
}

func (c *apiClient) call(method, path string, body any, out any) (int, error) {
	var buf bytes.Buffer
	if body != nil {
		json.NewEncoder(&buf).Encode(body)
	}
	req, _ := http.NewRequest(method, c.base+path, &buf)
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}

// signInWorkforce signs a demo workforce member in through the JSON API,
// enrolling an authenticator with a code computed by the test.
func (c *apiClient) signInWorkforce(email string) {
	c.t.Helper()
	var res struct{ Stage, Pending, Token string }
	if code, err := c.call("POST", "/api/v1/session", map[string]string{"email": email, "password": demo.Password}, &res); err != nil || res.Stage != "enrol" {
		c.t.Fatalf("sign-in: %d %v %+v", code, err, res)
	}
	var en struct{ Secret string }
	c.call("POST", "/api/v1/session/enrol", map[string]string{"pending": res.Pending}, &en)
	code, _ := totp.Code(en.Secret, time.Now())
	c.call("POST", "/api/v1/session/enrol/confirm", map[string]string{"pending": res.Pending, "code": code}, &res)
	if res.Token == "" {
		c.t.Fatal("no session after enrolment")
	}
	c.token = res.Token
}

// TestKillDuringWritesLosesNothingAcknowledged registers patients from
// many concurrent clients, kills the server with SIGKILL in the middle,
// restarts it on the same data, and checks that every registration the
// server acknowledged (201) is there and readable, and that the audit log
// still verifies.
func TestKillDuringWritesLosesNothingAcknowledged(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir, "--demo")
	c := newAPIClient(t, s.URL)
	c.signInWorkforce("frontdesk@riverside.example")

	var mu sync.Mutex
	acked := map[string]string{} // patient id → MRN
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mrn := fmt.Sprintf("CRASH-%d-%d", w, i)
				var out struct {
					PatientID string `json:"patient_id"`
				}
				code, err := c.call("POST", "/api/v1/patients", map[string]any{"mrn": mrn,
					"demographics": map[string]string{"name": "Crash Test " + mrn, "date_of_birth": "1990-01-01"},
					"contact":      map[string]string{"email": strings.ToLower(mrn) + "@crash.example"}}, &out)
				if err != nil {
					return // the server is gone
				}
				if code == http.StatusCreated {
					mu.Lock()
					acked[out.PatientID] = mrn
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(3 * time.Second)
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	close(stop)
	wg.Wait()
	if len(acked) < 5 {
		t.Fatalf("only %d registrations acknowledged before the kill: the test proves too little", len(acked))
	}

	s2 := startServe(t, dataDir)
	c.base = s2.URL // the session is server-side, so it survives the restart
	for id, mrn := range acked {
		var chart struct {
			MRN string `json:"mrn"`
		}
		if code, err := c.call("GET", "/api/v1/patients/"+id, nil, &chart); err != nil || code != http.StatusOK || chart.MRN != mrn {
			t.Fatalf("acknowledged patient %s lost after kill -9: %d %v %+v", id, code, err, chart)
		}
	}
	s2.cmd.Process.Signal(syscall.SIGTERM)
	<-s2.done
	if code, out, _ := runHaven(t, nil, "audit", "verify", "--data-dir", dataDir); code != 0 {
		t.Fatalf("audit log does not verify after the crash:\n%s", out)
	}
	t.Logf("%d acknowledged registrations survived kill -9", len(acked))
}

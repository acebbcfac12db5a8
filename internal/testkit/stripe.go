package testkit

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
)

// StripeMock returns the address of a running stripe-mock, Stripe's own
// fake of its API, named by HAVEN_TEST_STRIPE (for example
// http://127.0.0.1:12111; .ci/run installs and starts one). Outside CI,
// with none named, the test is skipped; in CI it fails.
func StripeMock(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("HAVEN_TEST_STRIPE")
	if u == "" {
		if InCI() {
			tb.Fatal("HAVEN_TEST_STRIPE is not set: CI must run the payment tests against stripe-mock")
		}
		tb.Skip("HAVEN_TEST_STRIPE not set; payment processor tests skipped outside CI")
	}
	return u
}

// StripeMockIfAny is StripeMock for a test that also covers more than
// payments: outside CI, with no stripe-mock named, it reports false
// instead of skipping the test, which then leaves its payment part out.
func StripeMockIfAny(tb testing.TB) (string, bool) {
	tb.Helper()
	if os.Getenv("HAVEN_TEST_STRIPE") == "" && !InCI() {
		return "", false
	}
	return StripeMock(tb), true
}

// Recorder is an HTTP transport that keeps a copy of every request it
// carries, headers and body, before passing it on: what an outside system
// was told, for tests that search it for PHI.
type Recorder struct {
	Next http.RoundTripper // nil means http.DefaultTransport

	mu   sync.Mutex
	reqs [][]byte
}

// RoundTrip records req (method, address, headers and body as the
// processor reads them) and sends it.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	var dump bytes.Buffer
	fmt.Fprintf(&dump, "%s %s\r\n", req.Method, req.URL)
	req.Header.Write(&dump)
	dump.WriteString("\r\n")
	dump.Write(body)
	r.mu.Lock()
	r.reqs = append(r.reqs, dump.Bytes())
	r.mu.Unlock()
	next := r.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(req)
}

// Requests returns every request recorded so far, as sent on the wire.
func (r *Recorder) Requests() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.reqs...)
}

// Hits counts the recorded requests that contain marker (as is, any case).
func (r *Recorder) Hits(marker string) int {
	n := 0
	for _, req := range r.Requests() {
		if bytes.Contains(bytes.ToLower(req), bytes.ToLower([]byte(marker))) {
			n++
		}
	}
	return n
}

// Field is the value of name in the form body of the i-th request
// recorded (Stripe's API takes forms), or "".
func (r *Recorder) Field(i int, name string) string {
	reqs := r.Requests()
	if i < 0 || i >= len(reqs) {
		return ""
	}
	_, body, _ := bytes.Cut(reqs[i], []byte("\r\n\r\n"))
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return ""
	}
	return form.Get(name)
}

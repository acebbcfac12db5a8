// Package load drives HTTPS requests at a server on this machine and
// measures throughput and latency. It is the engine of bench/loadgen, kept
// apart from the command so the measurement can be tested, and its Result is
// the JSON that bench/run reads back.
//
// It must never be pointed at another machine: it refuses any target that
// is not a loopback address, because it skips certificate verification (the
// servers it measures use self-signed certificates) and because a load
// generator aimed at someone else's host is an attack, not a benchmark.
package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options bound one load run in count and in time.
type Options struct {
	URL    string
	Method string      // GET when empty
	Header http.Header // sent with every request
	// Body is sent with every request, if not empty; each {{n}} in it
	// becomes a token no other request of any run sends, so a row can
	// create records that must be unique (an MRN, an email address).
	Body        []byte
	Connections int           // concurrent keep-alive connections, one worker each
	Duration    time.Duration // how long to measure
	MaxRequests int64         // stop measuring after this many requests, whichever comes first
	Warmup      time.Duration // load applied, but not measured, before Duration starts
	Timeout     time.Duration // per request
}

// Result is what one run measured. Latencies are of successful requests.
type Result struct {
	URL         string  `json:"url"`
	Connections int     `json:"connections"`
	Seconds     float64 `json:"seconds"`
	Requests    int64   `json:"requests"` // successful (2xx) requests
	Errors      int64   `json:"errors"`   // transport errors and non-2xx answers
	RPS         float64 `json:"rps"`
	P50us       float64 `json:"p50_us"`
	P90us       float64 `json:"p90_us"`
	P99us       float64 `json:"p99_us"`
	MaxUs       float64 `json:"max_us"`
	Proto       string  `json:"proto"`       // e.g. HTTP/1.1
	TLSVersion  string  `json:"tls_version"` // e.g. TLS 1.3
}

// CheckLoopback returns an error unless rawURL is an https URL whose host is
// a loopback IP address or "localhost". Names other than localhost are
// refused without being resolved.
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("bad target URL: %w", err)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("target must be https, not %q", u.Scheme)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("target host %q is not a loopback address: this load generator only measures servers on this machine", host)
}

// Run applies load as opts says and returns the measurement.
func Run(ctx context.Context, opts Options) (Result, error) {
	if err := CheckLoopback(opts.URL); err != nil {
		return Result{}, err
	}
	if opts.Connections < 1 || opts.Duration <= 0 || opts.MaxRequests < 1 {
		return Result{}, fmt.Errorf("connections, duration and max requests must be positive")
	}
	if opts.Method == "" {
		opts.Method = http.MethodGet
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	workers := make([]*worker, opts.Connections)
	for i := range workers {
		workers[i] = newWorker(opts)
	}
	defer func() {
		for _, w := range workers {
			w.client.CloseIdleConnections()
		}
	}()

	// Open every connection before the clock starts, so handshakes are not
	// measured, then warm up.
	for _, w := range workers {
		if err := w.do(ctx); err != nil {
			return Result{}, fmt.Errorf("first request: %w", err)
		}
	}
	if opts.Warmup > 0 {
		phase(ctx, workers, opts.Warmup, opts.MaxRequests, false)
	}
	for _, w := range workers {
		w.latencies = w.latencies[:0]
		w.errors = 0
	}
	elapsed := phase(ctx, workers, opts.Duration, opts.MaxRequests, true)
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	var all []time.Duration
	res := Result{URL: opts.URL, Connections: opts.Connections, Seconds: elapsed.Seconds()}
	for _, w := range workers {
		all = append(all, w.latencies...)
		res.Errors += w.errors
	}
	res.Requests = int64(len(all))
	res.RPS = float64(res.Requests) / elapsed.Seconds()
	slices.Sort(all)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	res.P50us = us(Percentile(all, 0.50))
	res.P90us = us(Percentile(all, 0.90))
	res.P99us = us(Percentile(all, 0.99))
	res.MaxUs = us(Percentile(all, 1))
	res.Proto, res.TLSVersion = workers[0].proto, workers[0].tlsVersion
	return res, nil
}

// phase runs every worker until d has passed or max requests were issued,
// and returns the wall time it took. A request in flight at the deadline is
// allowed to finish rather than cancelled: cancelling it would close its
// connection and make the next phase pay for a new handshake.
func phase(ctx context.Context, workers []*worker, d time.Duration, max int64, record bool) time.Duration {
	var issued atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) && issued.Add(1) <= max {
				t0 := time.Now()
				err := w.do(ctx)
				lat := time.Since(t0)
				if !record {
					continue
				}
				if err != nil {
					w.errors++
				} else {
					w.latencies = append(w.latencies, lat)
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// Percentile returns the q-quantile (0 < q <= 1) of sorted by the nearest-
// rank method, or 0 for no samples.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// uniqueMark in a body is replaced per request by runToken and a count.
var (
	uniqueMark = []byte("{{n}}")
	runToken   = strconv.FormatInt(time.Now().UnixNano(), 36) + "x"
	unique     atomic.Int64
)

type worker struct {
	opts       Options
	client     *http.Client
	latencies  []time.Duration
	errors     int64
	proto      string
	tlsVersion string
}

func newWorker(opts Options) *worker {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	tr := &http.Transport{
		// The servers measured here present self-signed certificates;
		// CheckLoopback keeps this from ever reaching another machine.
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13},
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		DisableCompression:  true,
		Protocols:           &protocols,
	}
	return &worker{opts: opts, client: &http.Client{Transport: tr, Timeout: opts.Timeout}}
}

func (w *worker) do(ctx context.Context) error {
	var body io.Reader
	if len(w.opts.Body) > 0 {
		b := w.opts.Body
		if bytes.Contains(b, uniqueMark) {
			b = bytes.ReplaceAll(b, uniqueMark, []byte(fmt.Sprintf("%s%d", runToken, unique.Add(1))))
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, w.opts.Method, w.opts.URL, body)
	if err != nil {
		return err
	}
	for k, v := range w.opts.Header {
		req.Header[k] = v
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	// Read the whole body so the connection is reused.
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if w.proto == "" {
		w.proto = resp.Proto
		if resp.TLS != nil {
			w.tlsVersion = tls.VersionName(resp.TLS.Version)
		}
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// ParseHeader turns "Name: value" into a header entry.
func ParseHeader(h http.Header, line string) error {
	name, value, ok := strings.Cut(line, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q is not Name: value", line)
	}
	h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	return nil
}

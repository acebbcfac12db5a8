// Command loadgen drives HTTPS load at a server on this machine and prints
// requests per second and latency percentiles as JSON on stdout. It runs as
// its own process so the load it generates is not scheduled inside the
// server it measures. It refuses any target that is not a loopback address
// (see package bench/internal/load) and is bounded by both -d and -n.
//
//	loadgen -url https://127.0.0.1:8443/healthz -c 8 -d 5s -warmup 1s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"haven/bench/internal/load"
)

type headers http.Header

func (h headers) String() string     { return fmt.Sprint(http.Header(h)) }
func (h headers) Set(v string) error { return load.ParseHeader(http.Header(h), v) }

func main() {
	opts := load.Options{Header: http.Header{}}
	flag.StringVar(&opts.URL, "url", "", "target URL, https on a loopback address (required)")
	flag.StringVar(&opts.Method, "method", "GET", "request method")
	flag.Var(headers(opts.Header), "H", "request header `Name: value` (repeatable)")
	body := flag.String("body", "", "request body sent with every request")
	flag.IntVar(&opts.Connections, "c", 8, "concurrent keep-alive connections")
	flag.DurationVar(&opts.Duration, "d", 5*time.Second, "measurement duration")
	flag.Int64Var(&opts.MaxRequests, "n", 2_000_000, "maximum requests per phase (bounds memory and time)")
	flag.DurationVar(&opts.Warmup, "warmup", time.Second, "unmeasured load before the measurement")
	flag.DurationVar(&opts.Timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.Parse()
	opts.Body = []byte(*body)
	if opts.URL == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if opts.Duration > 10*time.Minute {
		fmt.Fprintln(os.Stderr, "loadgen: -d above 10m refused")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := load.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

package main

import (
	"context"
	"net/http"
)

// A loadSuite is one row of the HTTPS load table: a request that loadgen
// drives at the running haven with the same connections, duration and
// warm-up as the baseline row, so the two can be divided. To add a row,
// append to loadSuites; Setup can sign in and return the headers (a session
// cookie, say) every request must carry.
type loadSuite struct {
	Name   string // shown in the table
	Path   string // request path on haven
	Method string // GET when empty
	Setup  func(ctx context.Context, havenURL string) (http.Header, error)
}

// loadSuites are the rows measured against haven. The baseline row, a bare
// Go TLS 1.3 server answering GET /healthz, is always measured first and
// is not listed here.
var loadSuites = []loadSuite{
	{Name: "haven: GET /healthz", Path: "/healthz"},
}

// goBenchPackages are the packages whose Go benchmarks bench/run runs and
// prints. Each benchmark should have a same-run baseline sibling named
// "baseline" (BenchmarkPut/baseline beside BenchmarkPut/store), or a
// top-level BenchmarkXBaseline beside BenchmarkX, so a ratio can be given.
// To add rows, add a package here (or pass -pkgs).
var goBenchPackages = []string{
	"./blob/dir",
	"./blob/s3",
	"./keyring",        // field seal/open and stream throughput vs raw AES-256-GCM
	"./audit/memlog",   // verify per event vs SHA-256; group commit vs one commit per event
	"./store/sqlstore", // audit group commit vs one commit per event on SQLite
	"./service",        // audited chart read vs the same read without the audit append
	"./video/sfu",      // admission to first RTP packet (p50/p95) vs direct pion peers; CPU per forwarded packet
}

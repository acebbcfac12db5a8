package web_test

import (
	"net/http"
	"testing"

	"haven/internal/testkit"
	"haven/web"
)

// BenchmarkAddressLimit is the cost of counting every request (in memory,
// flushed to the database every DefaultRateFlush): the same request through a server without limits (the
// baseline, in the same run) and with them, counted on SQLite and, where
// there is one, on PostgreSQL. Compare the lines' ns/op; no assertion on
// time.
func BenchmarkAddressLimit(b *testing.B) {
	type run struct {
		name   string
		limits *web.RateLimits
	}
	runs := []run{{"baseline", nil}}
	for name, dsn := range testkit.Databases(b) {
		runs = append(runs, run{"counted-" + name, &web.RateLimits{Counter: openDBB(b, dsn), PerAddress: 1 << 30}})
	}
	for _, c := range runs {
		b.Run(c.name, func(b *testing.B) {
			h := newWebServer(b, web.Config{Limits: c.limits}).Handler()
			for b.Loop() {
				if w := send(h, "GET", "/nowhere", "192.0.2.1:4000", nil); w.Code == http.StatusTooManyRequests {
					b.Fatal("limited")
				}
			}
		})
	}
}

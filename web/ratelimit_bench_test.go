package web_test

import (
	"net/http"
	"testing"

	"haven/internal/testkit"
	"haven/web"
)

// BenchmarkAddressLimit is the cost of counting every request in the
// database: the same request through a server without limits (the
// baseline, in the same run) and with them, on SQLite. Compare the two
// lines' ns/op; no assertion on time.
func BenchmarkAddressLimit(b *testing.B) {
	db := openDBB(b, testkit.SQLite(b))
	for _, c := range []struct {
		name   string
		limits *web.RateLimits
	}{
		{"baseline", nil},
		{"counted", &web.RateLimits{Counter: db, PerAddress: 1 << 30}},
	} {
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

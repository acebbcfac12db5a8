package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"haven/web"
)

const metricsToken = "scrape-me-with-this-token-0123"

func scrape(t *testing.T, client *http.Client, url, token string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

// TestMetricsNeedTheToken: /metrics answers only a scraper with the
// metrics token; with no token configured it answers no one.
func TestMetricsNeedTheToken(t *testing.T) {
	t.Parallel()
	base, client, _ := startServer(t, newWebServer(t, web.Config{MetricsToken: metricsToken}))
	if code, body, hdr := scrape(t, client, base+"/metrics", ""); code != http.StatusUnauthorized || strings.Contains(body, "haven_http") ||
		!strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("without the token: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	if code, body, _ := scrape(t, client, base+"/metrics", metricsToken+"x"); code != http.StatusUnauthorized || strings.Contains(body, "haven_http") {
		t.Fatalf("with a wrong token: %d", code)
	}
	if code, body, _ := scrape(t, client, base+"/metrics", metricsToken); code != http.StatusOK || !strings.Contains(body, "haven_http_requests_total") {
		t.Fatalf("with the token: %d\n%s", code, body)
	}

	off, client, _ := startServer(t, newWebServer(t, web.Config{}))
	for _, token := range []string{"", metricsToken} {
		if code, body, _ := scrape(t, client, off+"/metrics", token); code != http.StatusForbidden || strings.Contains(body, "haven_http") {
			t.Fatalf("metrics off, token %q: %d", token, code)
		}
	}
}

// TestInventedMethodsAddNoMetricSeries: the method label takes HTTP's
// standard methods and one value for every other, so a client inventing
// methods cannot grow the server's memory series by series.
func TestInventedMethodsAddNoMetricSeries(t *testing.T) {
	t.Parallel()
	srv := newWebServer(t, web.Config{MetricsToken: metricsToken})
	base, client, _ := startServer(t, srv)
	series := func() (n int, methods map[string]bool) {
		t.Helper()
		mfs, err := srv.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		methods = map[string]bool{}
		for _, mf := range mfs {
			if mf.GetName() != "haven_http_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				n++
				for _, l := range m.GetLabel() {
					if l.GetName() == "method" {
						methods[l.GetValue()] = true
					}
				}
			}
		}
		return n, methods
	}
	invent := func(i int) {
		t.Helper()
		req, _ := http.NewRequest("M"+strings.Repeat("X", i%7)+string(rune('A'+i%26))+string(rune('A'+i/26%26)), base+"/healthz", nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	invent(0)
	before, _ := series()
	for i := 1; i <= 300; i++ {
		invent(i)
	}
	after, methods := series()
	if after != before {
		t.Errorf("300 invented methods added %d series", after-before)
	}
	for m := range methods {
		if m != web.OtherMethod && m != http.MethodGet {
			t.Errorf("a series is labelled with the method %q", m)
		}
	}
}

// TestStaticDirectoryIsNotListed: /static/ serves its files and lists
// nothing.
func TestStaticDirectoryIsNotListed(t *testing.T) {
	t.Parallel()
	base, client, _ := startServer(t, newWebServer(t, web.Config{}))
	for path, want := range map[string]int{"/static/": 404, "/static/haven.css": 200, "/static/./": 404} {
		res, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want || strings.Contains(string(body), "session.js") {
			t.Errorf("GET %s: %d, want %d\n%s", path, res.StatusCode, want, body)
		}
	}
}

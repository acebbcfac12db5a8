package main

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"haven/bench/internal/load"
)

const benchOutput = `goos: linux
goarch: amd64
pkg: haven/blob/dir
cpu: Some CPU
BenchmarkPut/baseline-2         	     272	   1231790 ns/op	 851.26 MB/s	     250 B/op	       5 allocs/op
BenchmarkPut/store-2            	      51	   9153415 ns/op	 114.56 MB/s	   33988 B/op	      37 allocs/op
BenchmarkSeal-2                 	    1000	      2000 ns/op
BenchmarkSealBaseline-2         	    1000	       500 ns/op
BenchmarkSize/n-16-2            	    1000	       100 ns/op
PASS
ok  	haven/blob/dir	1.794s
pkg: haven/audit
BenchmarkAppend/store-2 	 10	 300 ns/op
--- FAIL: BenchmarkBroken
ok  	haven/audit	0.5s
`

func TestParseBenchReadsEveryResultLine(t *testing.T) {
	rs := parseBench(strings.NewReader(benchOutput), 2)
	var names []string
	for _, r := range rs {
		names = append(names, r.Pkg+" "+r.Name)
	}
	want := []string{
		"haven/blob/dir BenchmarkPut/baseline",
		"haven/blob/dir BenchmarkPut/store",
		"haven/blob/dir BenchmarkSeal",
		"haven/blob/dir BenchmarkSealBaseline",
		"haven/blob/dir BenchmarkSize/n-16",
		"haven/audit BenchmarkAppend/store",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Fatalf("parsed\n%s\nwant\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	if v := rs[1].Values; v["ns/op"] != 9153415 || v["MB/s"] != 114.56 || v["B/op"] != 33988 || v["allocs/op"] != 37 {
		t.Fatalf("values of %s: %v", rs[1].Name, v)
	}
}

func TestBenchRatiosDivideBySameRunBaseline(t *testing.T) {
	var out bytes.Buffer
	writeBenchTable(&out, parseBench(strings.NewReader(benchOutput), 2))
	for _, want := range []string{
		"| haven/blob/dir | Put/baseline | 1231790 | 851.3 | 250 | 5 | baseline |",
		"| haven/blob/dir | Put/store | 9153415 | 114.6 | 33988 | 37 | 7.43 |",
		"| haven/blob/dir | Seal | 2000 |  |  |  | 4.00 |",
		"| haven/audit | Append/store | 300 |  |  |  | — |", // no baseline in its package
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBaselineOf(t *testing.T) {
	for name, want := range map[string]string{
		"BenchmarkPut/store":       "BenchmarkPut/baseline",
		"BenchmarkPut/1MiB/store":  "BenchmarkPut/1MiB/baseline",
		"BenchmarkPut/baseline":    "",
		"BenchmarkSeal":            "BenchmarkSealBaseline",
		"BenchmarkSealBaseline":    "",
		"BenchmarkX/baseline-ish":  "BenchmarkX/baseline",
		"BenchmarkHTTP/haven/tls3": "BenchmarkHTTP/haven/baseline",
	} {
		if got := baselineOf(name); got != want {
			t.Errorf("baselineOf(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestLoadTableRatiosAgainstFirstRowAndDurableFloor(t *testing.T) {
	var out bytes.Buffer
	writeLoadTable(&out, []loadRow{
		{Name: "baseline", Result: load.Result{RPS: 20000, P50us: 250, P90us: 900, P99us: 1500, MaxUs: 12000}},
		{Name: "haven: GET /healthz", Result: load.Result{RPS: 5000, P50us: 1000, P90us: 2000, P99us: 3000, MaxUs: 4000}, Errors: 2},
		{Name: "haven: later row", Note: "skipped: cmd/haven not found"},
		{Name: "floor", Result: load.Result{RPS: 4000, P50us: 4000, P90us: 4000, P99us: 4000, MaxUs: 4000}},
		{Name: "haven: audited read", Result: load.Result{RPS: 1000, P50us: 1000, P90us: 2000, P99us: 3000, MaxUs: 4000}, Floor: "floor",
			CPU: &cpuPerRequest{Server: 250, Machine: 1200}, RSS: 96 << 20},
		{Name: "haven: audited read, floor not measured", Result: load.Result{RPS: 1000, P50us: 1000, P90us: 2000, P99us: 3000, MaxUs: 4000}, Floor: "other"},
	})
	for _, want := range []string{
		"| baseline | 20,000 | 250 µs | 900 µs | 1.50 ms | 12.00 ms | 0 | 1.00 |  |",
		"| haven: GET /healthz | 5,000 | 1.00 ms | 2.00 ms | 3.00 ms | 4.00 ms | 2 | 0.25 |  |",
		"| haven: later row | skipped: cmd/haven not found |",
		"| haven: audited read | 1,000 | 1.00 ms | 2.00 ms | 3.00 ms | 4.00 ms | 0 | 0.05 | 0.25 | 250 µs | 1.20 ms | 96 MiB |",
		"| haven: audited read, floor not measured | 1,000 | 1.00 ms | 2.00 ms | 3.00 ms | 4.00 ms | 0 | 0.05 |  |  |  |  |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestChartReadsAreDividedByTheirDatabasesFloor(t *testing.T) {
	audited := 0
	for _, s := range loadSuites {
		if !strings.Contains(s.Path, "/api/v1/patients/{patient}") {
			continue
		}
		if !s.Audited {
			t.Errorf("%s: a chart read, not marked Audited", s.Name)
		}
		audited++
		db := database(cmp.Or(s.Server, "sqlite"))
		if want := map[string]string{"sqlite": "SQLite", "postgres": "PostgreSQL"}[db]; !strings.Contains(s.Name, want) {
			t.Errorf("%s: divided by the %s floor", s.Name, db)
		}
	}
	if audited == 0 {
		t.Fatal("no chart read rows")
	}
	for db, name := range floorNames {
		if !regexp.MustCompile(`^baseline`).MatchString(name) || database(db) != db {
			t.Errorf("floor %s: name %q", db, name)
		}
	}
}

// TestCPUPerRequestCountsTheServerAndTheMachine: the CPU a process spent
// is read from /proc, grows as it works, and is divided by the requests
// served; the machine's total is never less than the process's own.
func TestCPUPerRequestCountsTheServerAndTheMachine(t *testing.T) {
	self := []int{os.Getpid()}
	before := sampleCPU(self)
	if !before.ok {
		if runtime.GOOS == "linux" {
			t.Fatal("cannot read this process's CPU time from /proc")
		}
		t.Skip("no /proc")
	}
	// Work until this process has spent 300 ms more of CPU (not of the
	// wall clock: the machine may be busy with other work).
	var after cpuSample
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		for range 100 {
			sha256.Sum256(make([]byte, 4096))
		}
		if after = sampleCPU(self); after.procs-before.procs >= 0.3 {
			break
		}
	}
	c, ok := perRequest(before, after, 1000)
	if !ok {
		t.Fatal("no CPU per request from two good samples")
	}
	// 300 ms of work over 1000 requests is 300 µs each. Ticks are 10 ms
	// (10 µs a request here), and the machine's are sampled per CPU while a
	// process's are not: a few ticks either way are no disagreement.
	if c.Server < 300 || c.Server > 2000 || c.Machine+50 < c.Server {
		t.Errorf("CPU per request: server %.0f µs, machine %.0f µs, after 300 ms of work over 1000 requests", c.Server, c.Machine)
	}
	if _, ok := perRequest(before, sampleCPU([]int{1 << 30}), 1000); ok {
		t.Error("a process that does not exist gave a CPU time")
	}
}

// TestPeakRSSGrowsWithWhatAProcessTouches: the peak resident memory read
// from /proc rises by what this process writes into new memory, counts
// every process given, and is not given for one that does not exist.
func TestPeakRSSGrowsWithWhatAProcessTouches(t *testing.T) {
	self := []int{os.Getpid()}
	before, ok := peakRSS(self)
	if !ok {
		if runtime.GOOS == "linux" {
			t.Fatal("cannot read this process's peak memory from /proc")
		}
		t.Skip("no /proc")
	}
	const grow = 256 << 20
	b := make([]byte, grow)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1 // resident only once written
	}
	after, _ := peakRSS(self)
	runtime.KeepAlive(b)
	if after-before < grow*9/10 {
		t.Errorf("peak RSS grew by %d MiB after writing %d MiB", (after-before)>>20, grow>>20)
	}
	if twice, _ := peakRSS([]int{os.Getpid(), os.Getpid()}); twice < 2*after {
		t.Errorf("two processes' peak RSS %d, one's %d", twice, after)
	}
	if _, ok := peakRSS([]int{1 << 30}); ok {
		t.Error("a process that does not exist gave a peak memory")
	}
}

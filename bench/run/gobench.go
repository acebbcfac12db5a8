package main

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// benchResult is one line of `go test -bench` output.
type benchResult struct {
	Pkg    string
	Name   string // without the -GOMAXPROCS suffix
	N      int64
	Values map[string]float64 // by unit: ns/op, MB/s, B/op, allocs/op, custom units
}

// parseBench reads `go test -bench` output. procs is the -cpu value the
// benchmarks ran with; Go appends "-procs" to names when it is not 1.
func parseBench(r io.Reader, procs int) []benchResult {
	var out []benchResult
	pkg := ""
	suffix := ""
	if procs != 1 {
		suffix = "-" + strconv.Itoa(procs)
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		res := benchResult{Pkg: pkg, Name: strings.TrimSuffix(f[0], suffix), N: n, Values: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res.Values[f[i+1]] = v
		}
		out = append(out, res)
	}
	return out
}

// baselineOf names the benchmark that name is compared with: its sibling
// "baseline" sub-benchmark, or BenchmarkXBaseline for a top-level
// BenchmarkX. It returns "" for a baseline itself.
func baselineOf(name string) string {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		if name[i+1:] == "baseline" {
			return ""
		}
		return name[:i+1] + "baseline"
	}
	if strings.HasSuffix(name, "Baseline") {
		return ""
	}
	return name + "Baseline"
}

// isBaseline reports whether name is a baseline benchmark.
func isBaseline(name string) bool { return baselineOf(name) == "" }

package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"haven/bench/internal/load"
)

// loadRow is one measured row of the HTTPS load table.
type loadRow struct {
	Name   string
	Result load.Result
	Errors int64 // over every round
	Note   string
	Floor  string         // the name of the durable floor row it is also divided by, if any
	CPU    *cpuPerRequest // of the median round; nil where it could not be read
	RSS    int64          // the serving processes' peak resident bytes after the median round; 0 where unread
}

// writeLoadTable divides every row by the first (the bare TLS baseline)
// and each audited row also by its database's durable floor, when that
// row was measured.
func writeLoadTable(w io.Writer, rows []loadRow) {
	fmt.Fprintln(w, "| row | req/s | p50 | p90 | p99 | max | errors | req/s ÷ baseline | req/s ÷ durable floor | CPU/req: server | CPU/req: machine | peak RSS: server |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	var base float64
	floors := map[string]float64{}
	for _, r := range rows {
		if r.Note == "" {
			floors[r.Name] = r.Result.RPS
		}
	}
	for i, r := range rows {
		if r.Note != "" {
			fmt.Fprintf(w, "| %s | %s | | | | | | | | | | |\n", r.Name, r.Note)
			continue
		}
		floor := ""
		if f := floors[r.Floor]; r.Floor != "" && f > 0 {
			floor = fmt.Sprintf("%.2f", r.Result.RPS/f)
		}
		res := r.Result
		if i == 0 {
			base = res.RPS
		}
		ratio := "—"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", res.RPS/base)
		}
		server, machine := "", ""
		if r.CPU != nil {
			server, machine = latency(r.CPU.Server), latency(r.CPU.Machine)
		}
		rss := ""
		if r.RSS > 0 {
			rss = fmt.Sprintf("%.0f MiB", float64(r.RSS)/(1<<20))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s |\n", r.Name, thousands(res.RPS),
			latency(res.P50us), latency(res.P90us), latency(res.P99us), latency(res.MaxUs), r.Errors, ratio, floor, server, machine, rss)
	}
}

func writeBenchTable(w io.Writer, results []benchResult) {
	fmt.Fprintln(w, "| package | benchmark | ns/op | MB/s | B/op | allocs/op | ns/op ÷ baseline | reported |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
	type key struct{ pkg, name string }
	byName := map[key]benchResult{}
	for _, r := range results {
		byName[key{r.Pkg, r.Name}] = r
	}
	for _, r := range results {
		ratio := "—"
		if isBaseline(r.Name) {
			ratio = "baseline"
		} else if b, ok := byName[key{r.Pkg, baselineOf(r.Name)}]; ok && b.Values["ns/op"] > 0 {
			ratio = fmt.Sprintf("%.2f", r.Values["ns/op"]/b.Values["ns/op"])
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Pkg, strings.TrimPrefix(r.Name, "Benchmark"),
			value(r.Values, "ns/op", "%.0f"), value(r.Values, "MB/s", "%.1f"),
			value(r.Values, "B/op", "%.0f"), value(r.Values, "allocs/op", "%.0f"), ratio, reported(r.Values))
	}
}

// reported lists a benchmark's own metrics (b.ReportMetric: latency
// percentiles, CPU per packet), which are often the figure an issue asks
// for.
func reported(v map[string]float64) string {
	var units []string
	for u := range v {
		switch u {
		case "ns/op", "MB/s", "B/op", "allocs/op":
		default:
			units = append(units, u)
		}
	}
	sort.Strings(units)
	parts := make([]string, len(units))
	for i, u := range units {
		parts[i] = fmt.Sprintf("%.4g %s", v[u], u)
	}
	return strings.Join(parts, ", ")
}

func value(v map[string]float64, unit, format string) string {
	x, ok := v[unit]
	if !ok {
		return ""
	}
	return fmt.Sprintf(format, x)
}

func latency(us float64) string {
	if us < 1000 {
		return fmt.Sprintf("%.0f µs", us)
	}
	return fmt.Sprintf("%.2f ms", us/1000)
}

func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

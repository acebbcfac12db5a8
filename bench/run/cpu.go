package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// CPU per request and peak memory: on two shared cores an audited read is bound by CPU
// more than by its commit, so the table shows where the cores went. Each
// row's run reads, before and after, the CPU time of the processes that
// served it (a haven node, a baseline server; every node of a cluster)
// and of the whole machine (every process and the kernel: loadgen, a
// database server, the network stack), and divides both by the requests
// the run answered, warm-up included; and the serving processes' peak
// resident memory so far, read after the run. Linux only (/proc);
// elsewhere the columns stay empty.

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every
// Linux architecture Go runs on.
const clockTicks = 100

// cpuSample is the CPU time, in seconds, of some processes and of the
// whole machine at one moment; ok is false where /proc is not readable.
type cpuSample struct {
	procs, machine float64
	ok             bool
}

// sampleCPU reads the CPU time of pids and of the machine.
func sampleCPU(pids []int) cpuSample {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}
	}
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return cpuSample{}
	}
	s := cpuSample{ok: true}
	// user nice system idle iowait irq softirq: all but idle and iowait.
	for _, i := range []int{1, 2, 3, 6, 7} {
		v, _ := strconv.ParseFloat(f[i], 64)
		s.machine += v / clockTicks
	}
	for _, pid := range pids {
		t, ok := processCPU(pid)
		if !ok {
			return cpuSample{}
		}
		s.procs += t
	}
	return s
}

// processCPU is pid's user and system time so far, in seconds.
func processCPU(pid int) (float64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ")". utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (u + st) / clockTicks, true
}

// cpuPerRequest is the CPU a run spent per request, in microseconds: by
// the serving processes, and by the whole machine.
type cpuPerRequest struct {
	Server, Machine float64
}

// perRequest divides the CPU spent between two samples by requests.
func perRequest(before, after cpuSample, requests float64) (cpuPerRequest, bool) {
	if !before.ok || !after.ok || requests <= 0 {
		return cpuPerRequest{}, false
	}
	return cpuPerRequest{Server: (after.procs - before.procs) * 1e6 / requests,
		Machine: (after.machine - before.machine) * 1e6 / requests}, true
}

// peakRSS is the sum of pids' peak resident memory so far (VmHWM), in
// bytes: the memory a server must be given for the load it has met, which
// a cheaper request can trade for (a larger heap between collections, a
// cache). ok is false where /proc is not readable.
func peakRSS(pids []int) (bytes int64, ok bool) {
	if len(pids) == 0 {
		return 0, false
	}
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			return 0, false
		}
		_, rest, found := strings.Cut(string(b), "\nVmHWM:")
		kib, _, _ := strings.Cut(rest, "\n")
		v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(kib), " kB"), 10, 64)
		if !found || err != nil {
			return 0, false
		}
		bytes += v * 1024
	}
	return bytes, true
}

// pids are the processes serving s: the server itself, and the nodes
// behind it when it is a balancer.
func (s *server) pids() []int {
	var out []int
	if s.cmd != nil && s.cmd.Process != nil {
		out = append(out, s.cmd.Process.Pid)
	}
	for _, n := range s.nodes {
		out = append(out, n.pids()...)
	}
	return out
}

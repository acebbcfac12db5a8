// Command run is `make bench`: it builds haven, starts it on a loopback
// port with a throw-away data directory, starts the bare TLS baseline
// server beside it, drives both with bench/loadgen in a separate process
// (same parameters, alternating order, warm-up before each measurement),
// stops them, runs the Go benchmarks of the packages listed in suites.go,
// and prints markdown tables whose ratios compare each row with a baseline
// measured in the same run. Ratios, not absolute numbers, are what carry
// from one machine to another.
//
// Every step is bounded (each row by -d and -rounds, each Go benchmark by
// its -benchtime), so a run ends; the growth rows' seeding of a million
// audit events makes the default run take several minutes on two cores.
// See bench/README.md.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"haven/bench/internal/load"
)

type config struct {
	connections  int
	duration     time.Duration
	warmup       time.Duration
	rounds       int
	benchtime    string
	pkgs         []string
	browser      bool
	requireHaven bool
	startTimeout time.Duration
	keep         bool
	postgres     string         // server URL for the PostgreSQL instances; "" for none
	only         *regexp.Regexp // rows to measure; nil for all
}

func main() {
	var cfg config
	pkgs := strings.Join(goBenchPackages, ",")
	flag.IntVar(&cfg.connections, "c", 16, "concurrent keep-alive connections per load run")
	flag.DurationVar(&cfg.duration, "d", 5*time.Second, "measured duration of each load run")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured warm-up before each load run")
	flag.IntVar(&cfg.rounds, "rounds", 3, "load rounds per row; the median round by req/s is shown")
	flag.StringVar(&cfg.benchtime, "benchtime", "500ms", "-benchtime for the Go benchmarks")
	flag.StringVar(&pkgs, "pkgs", pkgs, "comma-separated packages whose Go benchmarks run (empty for none)")
	flag.BoolVar(&cfg.requireHaven, "require-haven", false, "fail, rather than skip the haven rows, when cmd/haven is missing")
	flag.DurationVar(&cfg.startTimeout, "start-timeout", 60*time.Second, "how long haven may take to answer /healthz")
	flag.BoolVar(&cfg.browser, "browser", true, "also run the browser benchmarks (headless Chromium; skipped when it is not installed)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (binaries, logs, data) for inspection")
	pg := flag.String("postgres", "", "PostgreSQL server for the PostgreSQL rows (a database is created and dropped on it; default HAVEN_TEST_POSTGRES, else the local server when one answers; \"off\" to skip)")
	only := flag.String("only", "", "measure only the load rows whose name matches this regular expression (the bare baseline always runs; the durable floors when they match)")
	flag.Parse()
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -only:", err)
			os.Exit(2)
		}
		cfg.only = re
	}
	for p := range strings.SplitSeq(pkgs, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.pkgs = append(cfg.pkgs, p)
		}
	}
	if cfg.connections < 1 || cfg.duration <= 0 || cfg.rounds < 1 || cfg.duration > 2*time.Minute || cfg.rounds > 20 {
		fmt.Fprintln(os.Stderr, "bench: need -c >= 1, 0 < -d <= 2m, 1 <= -rounds <= 20")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.postgres = postgresServer(ctx, *pg)
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

func run(ctx context.Context, cfg config, out io.Writer) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "haven-bench-")
	if err != nil {
		return err
	}
	if cfg.keep {
		logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	haveHaven, err := hasPackage(filepath.Join(root, "cmd", "haven"))
	if err != nil {
		return err
	}
	if !haveHaven {
		if cfg.requireHaven {
			return errors.New("cmd/haven not found: there is no haven binary to measure yet")
		}
		logf("cmd/haven not found: skipping the haven rows; only the baseline is measured")
	}

	bins := map[string]string{"loadgen": "./bench/loadgen", "baseline": "./bench/baseline", "seed": "./bench/seed"}
	if haveHaven {
		bins["haven"] = "./cmd/haven"
	}
	for name, pkg := range bins {
		logf("building %s", pkg)
		bin := filepath.Join(tmp, name)
		if err := goCmd(ctx, root, "build", "-o", bin, pkg); err != nil {
			return fmt.Errorf("building %s: %w", pkg, err)
		}
		bins[name] = bin
	}

	base, err := startBaseline(ctx, bins["baseline"], tmp, "baseline")
	if err != nil {
		return err
	}
	defer base.stop()
	floors, err := startFloors(ctx, cfg, bins["baseline"], tmp)
	if err != nil {
		return err
	}
	defer stopFloors(floors)

	havens := map[string]*server{}
	if haveHaven {
		for _, in := range instances(cfg) {
			if !in.needed(cfg) {
				continue
			}
			hv, err := in.start(ctx, cfg, bins, tmp)
			if err != nil {
				return err
			}
			defer hv.stop()
			havens[in.key] = hv
		}
	}

	rows, err := measureLoad(ctx, cfg, bins["loadgen"], base, floors, havens)
	if err != nil {
		return err
	}
	base.stop()
	stopFloors(floors)
	for _, hv := range havens {
		hv.stop()
	}

	fmt.Fprintf(out, "## Haven benchmarks\n\n%s\n\n", environment(ctx, root))
	fmt.Fprintf(out, "### HTTPS load\n\n%d keep-alive connections over HTTP/1.1 and TLS 1.3, %s warm-up then %s measured per run, median of %d rounds by req/s; loadgen, server and baseline share this machine.\n\n",
		cfg.connections, cfg.warmup, cfg.duration, cfg.rounds)
	writeLoadTable(out, rows)

	if len(cfg.pkgs) == 0 {
		fmt.Fprintln(out, "\nNo Go benchmark packages listed.")
	} else if err := goBench(ctx, root, out, "Go benchmarks", ".", cfg.benchtime, cfg.pkgs); err != nil {
		return err
	}
	if len(cfg.pkgs) > 0 {
		if err := goBench(ctx, root, out, "File benchmarks", fileBenchPattern, cfg.benchtime, fileBenchPackages); err != nil {
			return err
		}
	}
	if !cfg.browser {
		return nil
	}
	if _, err := exec.LookPath("chromium"); err != nil {
		logf("chromium not found: skipping the browser benchmarks (-browser=false to silence)")
		return nil
	}
	// A browser visit takes seconds per iteration and each needs a fresh
	// slot within the check-in window, so these run a fixed count.
	return goBench(ctx, root, out, "Browser benchmarks", browserBenchPattern, browserBenchTime, browserBenchPackages)
}

// goBench runs the Go benchmarks matching pattern in pkgs and writes their
// table under title.
func goBench(ctx context.Context, root string, out io.Writer, title, pattern, benchtime string, pkgs []string) error {
	procs := runtime.GOMAXPROCS(0)
	args := append([]string{"test", "-run", "^$", "-bench", pattern, "-benchmem", "-count", "1", "-p", "1",
		"-benchtime", benchtime, "-cpu", strconv.Itoa(procs), "-timeout", "5m"}, pkgs...)
	logf("go %s", strings.Join(args, " "))
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Stdout = &buf
	cmd.Stderr = os.Stderr
	benchErr := cmd.Run()
	results := parseBench(&buf, procs)
	fmt.Fprintf(out, "\n### %s\n\n`go test -run '^$' -bench '%s' -benchmem -benchtime %s %s`; the ratio divides ns/op by the same-run baseline benchmark.\n\n",
		title, pattern, benchtime, strings.Join(pkgs, " "))
	writeBenchTable(out, results)
	if benchErr != nil {
		// Show what failed, then fail the run: a broken benchmark is a bug.
		os.Stderr.Write(buf.Bytes())
		return fmt.Errorf("go test -bench: %w", benchErr)
	}
	return nil
}

// measureLoad runs loadgen rounds times against the baseline and every
// suite, alternating the order each round so neither side always runs on
// a cooler or hotter machine, and keeps the median round of each row.
func measureLoad(ctx context.Context, cfg config, loadgen string, base *server, floors []floor, havens map[string]*server) ([]loadRow, error) {
	type target struct {
		name     string
		floor    string // the durable floor row this one is also divided by
		url      string
		method   string
		body     string
		header   http.Header
		note     string
		flood    *flood
		floodURL string
		srv      *server // what serves it, for its CPU (cpu.go)
	}
	targets := []target{{name: "baseline: bare Go TLS 1.3, GET /healthz", url: base.url + "/healthz", srv: base}}
	floorOf := map[string]string{} // database → name of its measured floor row
	for _, f := range floors {
		targets = append(targets, target{name: f.name, url: f.server.url + "/durable", srv: f.server})
		floorOf[f.db] = f.name
	}
	for _, s := range loadSuites {
		if cfg.only != nil && !cfg.only.MatchString(s.Name) {
			continue
		}
		t := target{name: s.Name, method: s.Method, body: s.Body, flood: s.Flood}
		if s.Audited {
			t.floor = floorOf[database(cmp.Or(s.Server, "sqlite"))]
		}
		hv := havens[cmp.Or(s.Server, "sqlite")]
		switch {
		case len(havens) == 0:
			t.note = "skipped: cmd/haven not found"
		case hv == nil:
			t.note = "skipped: " + skipReason(cfg, cmp.Or(s.Server, "sqlite"))
		default:
			path := s.Path
			if strings.Contains(path, "{patient}") {
				id, err := patientID(ctx, hv.url)
				if err != nil {
					return nil, fmt.Errorf("setting up %s: %w", s.Name, err)
				}
				path = strings.ReplaceAll(path, "{patient}", id)
			}
			if strings.Contains(path, "{thread}") {
				id, err := newThread(ctx, hv.url)
				if err != nil {
					return nil, fmt.Errorf("setting up %s: %w", s.Name, err)
				}
				path = strings.ReplaceAll(path, "{thread}", id)
			}
			t.url, t.srv = hv.url+path, hv
			if s.Flood != nil {
				t.floodURL = hv.url + s.Flood.Path
			}
			if s.Setup != nil {
				h, err := s.Setup(ctx, hv.url)
				if err != nil {
					return nil, fmt.Errorf("setting up %s: %w", s.Name, err)
				}
				t.header = h
			}
		}
		targets = append(targets, t)
	}

	// One round's result of a row, with the CPU it cost and the servers'
	// peak memory after it.
	type measured struct {
		load.Result
		cpu *cpuPerRequest
		rss int64
	}
	results := make([][]measured, len(targets))
	errs := make([]int64, len(targets))
	for round := range cfg.rounds {
		order := make([]int, len(targets))
		for i := range order {
			order[i] = i
		}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			t := targets[i]
			if t.note != "" {
				continue
			}
			logf("round %d/%d: %s", round+1, cfg.rounds, t.name)
			var stopFlood func() error
			if t.flood != nil {
				stopFlood = startFlood(ctx, loadgen, cfg, t.floodURL, t.flood)
			}
			before := sampleCPU(t.srv.pids())
			res, err := runLoadgen(ctx, loadgen, cfg, t.url, t.method, t.body, t.header)
			after := sampleCPU(t.srv.pids())
			if stopFlood != nil {
				if ferr := stopFlood(); ferr != nil && err == nil {
					err = fmt.Errorf("flood: %w", ferr)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			m := measured{Result: res}
			// Requests during the warm-up are counted at the measured rate.
			if c, ok := perRequest(before, after, res.RPS*(cfg.warmup+cfg.duration).Seconds()); ok {
				m.cpu = &c
			}
			m.rss, _ = peakRSS(t.srv.pids())
			results[i] = append(results[i], m)
			errs[i] += res.Errors
		}
	}
	rows := make([]loadRow, len(targets))
	for i, t := range targets {
		rows[i] = loadRow{Name: t.name, Note: t.note, Errors: errs[i], Floor: t.floor}
		if rs := results[i]; len(rs) > 0 {
			slices.SortFunc(rs, func(a, b measured) int { return cmp.Compare(a.RPS, b.RPS) })
			median := rs[len(rs)/2]
			rows[i].Result, rows[i].CPU, rows[i].RSS = median.Result, median.cpu, median.rss
		}
	}
	return rows, nil
}

// startFlood runs a second loadgen against f for the whole of the measured
// run (its warm-up included), and returns a function that waits for it.
func startFlood(ctx context.Context, bin string, cfg config, url string, f *flood) func() error {
	args := []string{"-url", url, "-method", f.Method, "-c", strconv.Itoa(f.Connections), "-d", (cfg.warmup + cfg.duration + time.Second).String(),
		"-warmup", "0s", "-body", f.Body, "-H", "Content-Type: application/json"}
	ctx, cancel := context.WithTimeout(ctx, cfg.warmup+cfg.duration+time.Minute)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	err := cmd.Start()
	return func() error {
		defer cancel()
		if err != nil {
			return err
		}
		if err := cmd.Wait(); err != nil {
			return err
		}
		// Show what the flood achieved: a flood the server turned away
		// (throttled, refused) would make the row meaningless.
		var res load.Result
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			return fmt.Errorf("flood output: %w", err)
		}
		logf("flood: %.0f successful %s %s/s, %d errors", res.RPS, f.Method, f.Path, res.Errors)
		return nil
	}
}

func runLoadgen(ctx context.Context, bin string, cfg config, url, method, body string, header http.Header) (load.Result, error) {
	args := []string{"-url", url, "-c", strconv.Itoa(cfg.connections), "-d", cfg.duration.String(), "-warmup", cfg.warmup.String()}
	if method != "" {
		args = append(args, "-method", method)
	}
	if body != "" {
		args = append(args, "-body", body, "-H", "Content-Type: application/json")
	}
	for k, vs := range header {
		for _, v := range vs {
			args = append(args, "-H", k+": "+v)
		}
	}
	// Bounded in time even if loadgen hangs.
	ctx, cancel := context.WithTimeout(ctx, cfg.warmup+cfg.duration+time.Minute)
	defer cancel()
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return load.Result{}, fmt.Errorf("loadgen: %w", err)
	}
	var res load.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return load.Result{}, fmt.Errorf("loadgen output: %w", err)
	}
	return res, nil
}

// server is a child process serving HTTPS on loopback.
type server struct {
	name    string
	cmd     *exec.Cmd
	url     string
	logPath string
	exited  chan struct{}
	stopped bool
	cleanup func()    // after it stopped (drops its database); may be nil
	nodes   []*server // behind this balancer (cluster.go)
}

// startBaseline starts bench/baseline named name with extra flags.
func startBaseline(ctx context.Context, bin, tmp, name string, extra ...string) (*server, error) {
	s := &server{name: name, logPath: filepath.Join(tmp, name+".log")}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s.cmd = exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, extra...)...)
	s.cmd.Stderr = logFile
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	// The baseline prints its URL once it is listening.
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case u, ok := <-line:
		if !ok || !strings.HasPrefix(u, "https://") {
			s.stop()
			return nil, fmt.Errorf("%s did not start:\n%s", name, tail(s.logPath, 20))
		}
		s.url = u
		return s, nil
	case <-time.After(10 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s did not start within 10s", name)
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

// startHaven starts `haven serve --demo` named name, with its data
// directory under tmp and, when db is not empty, that database.
func startHaven(ctx context.Context, bin, tmp, name, db string, timeout time.Duration, extra ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &server{name: name, url: "https://" + addr, logPath: filepath.Join(tmp, name+".log")}
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	// --demo: the signed-in rows sign in as a demo user.
	turn, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	// Several instances run at once, beside other programs: each takes its
	// own TURN port and SFU port range instead of the defaults.
	media := 51000 + 200*(turn%40)
	args := []string{"serve", "--demo", "--data-dir", filepath.Join(tmp, name), "--addr", addr,
		"--turn-addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(turn)), "--media-ports", fmt.Sprintf("%d-%d", media, media+100)}
	if db != "" {
		args = append(args, "--db", db)
	}
	// The rate limits are on by default, and counted here too, at a
	// ceiling the load (all from one address) never reaches: the rows
	// measure the default configuration's counting without refusals.
	args = append(args, "--rate-limit-address", "1000000000", "--rate-limit-user", "1000000000")
	args = append(args, extra...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	logf("starting %s: haven serve on %s", name, addr)
	if err := s.start(); err != nil {
		return nil, err
	}
	if err := s.waitFor(ctx, "/healthz", timeout); err != nil {
		return nil, err
	}
	return s, nil
}

// waitFor polls path on s until it answers 200, s exits, ctx ends or
// timeout passes; on failure s is stopped and its log's tail is in the
// error.
func (s *server) waitFor(ctx context.Context, path string, timeout time.Duration) error {
	client := insecureClient()
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+path, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited before answering %s:\n%s", s.name, path, tail(s.logPath, 40))
		case <-ctx.Done():
			s.stop()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("%s did not answer %s with 200 within %s:\n%s", s.name, path, timeout, tail(s.logPath, 40))
		}
	}
}

func (s *server) start() error {
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.name, err)
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	return nil
}

// stop asks the server to shut down and kills it if it has not within ten
// seconds. It is safe to call twice.
func (s *server) stop() {
	if s.stopped || s.cmd.Process == nil {
		return
	}
	s.stopped = true
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		logf("%s ignored SIGTERM for 10s; killing it", s.name)
		s.cmd.Process.Kill()
		<-s.exited
	}
	if s.cleanup != nil {
		s.cleanup()
	}
}

// insecureClient talks to the self-signed servers this program started on
// loopback, and to nothing else.
func insecureClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13},
		},
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run this from inside the haven module")
	}
	return filepath.Dir(gomod), nil
}

// hasPackage reports whether dir holds Go source files.
func hasPackage(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go") {
			return true, nil
		}
	}
	return false, nil
}

func goCmd(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func environment(ctx context.Context, root string) string {
	commit := "unknown"
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%s, commit %s, %s %s/%s, %d CPUs.", time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

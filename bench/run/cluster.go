package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The several-nodes row: the same chart read as the one-node PostgreSQL
// row, against three haven serve on one database behind HAProxy, in the
// same run. On one machine the nodes share its cores with the database
// and loadgen, so the ratio says what the balancer and two more processes
// cost here, not what three machines would give.

// haproxyPath is the HAProxy binary, or "" when none is installed
// (Debian puts it in /usr/sbin, which may not be on the PATH).
func haproxyPath() string {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy"
	}
	return ""
}

// startCluster starts n haven serve named name-1 … name-n on db, each on
// its own data directory with copies of the first node's key files, and
// HAProxy in front of them; the returned server is the balancer.
func startCluster(ctx context.Context, cfg config, bin, tmp, name, db string, n int) (*server, error) {
	var nodes []*server
	stopAll := func() {
		for _, s := range nodes {
			s.stop()
		}
	}
	for i := 1; i <= n; i++ {
		node := fmt.Sprintf("%s-%d", name, i)
		if i > 1 {
			for _, f := range []string{"root.key", "audit.key", "audit.pub", "video.key"} {
				if err := copyKey(filepath.Join(tmp, name+"-1", "keys", f), filepath.Join(tmp, node, "keys", f)); err != nil {
					stopAll()
					return nil, err
				}
			}
		}
		s, err := startHaven(ctx, bin, tmp, node, db, cfg.startTimeout, "--audit-witness", filepath.Join(tmp, name+"-witness"))
		if err != nil {
			stopAll()
			return nil, err
		}
		nodes = append(nodes, s)
	}
	lb, err := startHAProxy(ctx, tmp, name, nodes)
	if err != nil {
		stopAll()
		return nil, err
	}
	lb.nodes = nodes
	return lb, nil
}

// stopNodes stops the nodes behind a balancer.
func (s *server) stopNodes() {
	for _, n := range s.nodes {
		n.stop()
	}
}

func copyKey(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// startHAProxy balances round-robin over the nodes, TLS at the front (with
// the first node's self-signed certificate) and to each node, health
// checking /readyz as deploy/haproxy.cfg does.
func startHAProxy(ctx context.Context, tmp, name string, nodes []*server) (*server, error) {
	dir := filepath.Join(tmp, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	first := filepath.Join(tmp, nodes[0].name, "tls")
	cert, err := os.ReadFile(filepath.Join(first, "cert.pem"))
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(filepath.Join(first, "key.pem"))
	if err != nil {
		return nil, err
	}
	pem := filepath.Join(dir, "front.pem")
	if err := os.WriteFile(pem, append(append(cert, '\n'), key...), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var servers strings.Builder
	for i, n := range nodes {
		fmt.Fprintf(&servers, "  server node%d %s\n", i+1, strings.TrimPrefix(n.url, "https://"))
	}
	cfgText := fmt.Sprintf(`global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout check 3s
  retries 2
  option redispatch
  retry-on conn-failure
frontend haven
  bind 127.0.0.1:%d ssl crt %s ssl-min-ver TLSv1.3 alpn http/1.1
  option forwardfor
  default_backend nodes
backend nodes
  balance roundrobin
  option httpchk
  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
  http-check expect status 200
  default-server check inter 2s fall 2 rise 2 ssl verify none ssl-min-ver TLSv1.3
%s`, port, pem, servers.String())
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return nil, err
	}
	s := &server{name: name, url: "https://127.0.0.1:" + strconv.Itoa(port), logPath: filepath.Join(tmp, name+".log")}
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s.cmd = exec.Command(haproxyPath(), "-db", "-f", cfgPath)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	logf("starting %s: HAProxy on 127.0.0.1:%d in front of %d nodes", name, port, len(nodes))
	if err := s.start(); err != nil {
		return nil, err
	}
	// Through HAProxy: it answers once it has a node up behind it.
	if err := s.waitFor(ctx, "/readyz", 30*time.Second); err != nil {
		return nil, err
	}
	return s, nil
}

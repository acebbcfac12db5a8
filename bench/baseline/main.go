// Command baseline is the bare floor that Haven's HTTPS throughput is
// compared with in the same benchmark run: a net/http server with TLS 1.3
// only, an in-memory self-signed ECDSA P-256 certificate, and one handler,
// GET /healthz answering "ok\n" as haven does. It has none of Haven's
// middleware, sessions or storage, so the ratio of Haven to it is the cost
// of everything Haven adds on top of Go's TLS stack on the same machine at
// the same moment.
//
// With -sqlite or -postgres it also serves GET /durable, the same answer
// given only after a durable group-committed append (durable.go).
//
// It listens on -addr (loopback only) and prints its URL on stdout once it
// is accepting connections, then serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	sqlitePath := flag.String("sqlite", "", "serve GET /durable, appending to the SQLite database at this path")
	postgres := flag.String("postgres", "", "serve GET /durable, appending to the PostgreSQL database at this URL")
	flag.Parse()
	if err := run(*addr, *sqlitePath, *postgres); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(addr, sqlitePath, postgres string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr %s is not a loopback address", addr)
	}
	if sqlitePath != "" && postgres != "" {
		return errors.New("-sqlite and -postgres: give one")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var floor *groupCommit
	switch {
	case sqlitePath != "":
		floor, err = openSQLite(ctx, sqlitePath)
	case postgres != "":
		floor, err = openPostgres(ctx, postgres)
	}
	if err != nil {
		return err
	}
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n")) // the same bytes as haven's /healthz
	})
	if floor != nil {
		mux.HandleFunc("GET /durable", func(w http.ResponseWriter, r *http.Request) {
			if err := floor.append(r.Context()); err != nil {
				http.Error(w, "append failed", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("ok\n"))
		})
	}
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	fmt.Printf("https://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if floor != nil {
		fmt.Fprintf(os.Stderr, "durable appends: %d rows in %d commits\n", floor.rows.Load(), floor.commits.Load())
	}
	return nil
}

// selfSigned makes a one-day ECDSA P-256 certificate for the loopback
// addresses, as Haven makes for itself on first start.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "bench baseline"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

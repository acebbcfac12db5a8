package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"haven/hl7"
	"haven/service"
)

// labConfig is how `haven serve` reaches labs: MLLP inside TLS 1.3, with
// the practice server's client certificate when a lab requires one, and
// the roots trusted for the labs' endpoints.
type labConfig struct {
	ClientCert, ClientKey, CA string
	// MLLPAddr is where labs send results over MLLP inside mutual TLS; off
	// when empty. MLLPClientCA holds the CAs that issue labs' client
	// certificates; each lab is then recognised by its own certificate.
	MLLPAddr, MLLPClientCA string

	tls       *tls.Config
	clientCAs *x509.CertPool
}

func (c *labConfig) register(fs *flag.FlagSet) error {
	return registerSettings(fs, []setting{
		{"lab-client-cert", "HAVEN_LAB_CLIENT_CERT", "", "PEM certificate Haven presents to labs when sending orders (mutual TLS)", false, &c.ClientCert},
		{"lab-client-key", "HAVEN_LAB_CLIENT_KEY", "", "PEM private key of --lab-client-cert", false, &c.ClientKey},
		{"lab-ca", "HAVEN_LAB_CA", "", "PEM file of CA certificates trusted for labs' endpoints (default: the system's)", false, &c.CA},
		{"mllp-addr", "HAVEN_MLLP_ADDR", "", "address of the MLLP listener (mutual TLS) for lab results, e.g. :2575; off when empty", false, &c.MLLPAddr},
		{"mllp-client-ca", "HAVEN_MLLP_CLIENT_CA", "", "PEM file of CA certificates that issue labs' client certificates; required with --mllp-addr", false, &c.MLLPClientCA},
	})
}

// validate loads the certificate and roots before any data is touched.
func (c *labConfig) validate() error {
	c.tls = &tls.Config{MinVersion: tls.VersionTLS13}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		return fmt.Errorf("--lab-client-cert and --lab-client-key: give both or neither")
	}
	if c.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return fmt.Errorf("--lab-client-cert: %v", errShort(err))
		}
		c.tls.Certificates = []tls.Certificate{cert}
	}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return fmt.Errorf("--lab-ca: cannot read %s: %v", c.CA, errShort(err))
		}
		c.tls.RootCAs = x509.NewCertPool()
		if !c.tls.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--lab-ca: %s holds no PEM certificate", c.CA)
		}
	}
	if (c.MLLPAddr == "") != (c.MLLPClientCA == "") {
		return fmt.Errorf("--mllp-addr and --mllp-client-ca: give both or neither (labs are recognised by their client certificates)")
	}
	if c.MLLPClientCA != "" {
		pem, err := os.ReadFile(c.MLLPClientCA)
		if err != nil {
			return fmt.Errorf("--mllp-client-ca: cannot read %s: %v", c.MLLPClientCA, errShort(err))
		}
		c.clientCAs = x509.NewCertPool()
		if !c.clientCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--mllp-client-ca: %s holds no PEM certificate", c.MLLPClientCA)
		}
	}
	return nil
}

// startMLLP opens the MLLP listener for lab results when --mllp-addr is
// set, with the server's certificate, and serves it until stop. Each
// message is handed to the service with the lab its certificate names.
func startMLLP(env *Env, st *stack, c *labConfig, cert tls.Certificate) (stop func(), err error) {
	if c.MLLPAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", c.MLLPAddr)
	if err != nil {
		return nil, fmt.Errorf("--mllp-addr: cannot listen on %s: %v", c.MLLPAddr, listenCause(err))
	}
	srv := &hl7.Server{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: c.clientCAs, ClientAuth: tls.RequireAndVerifyClientCert},
		Handler: hl7.HandlerFunc(func(ctx context.Context, peer hl7.Peer, msg []byte) []byte {
			return st.svc.ReceiveHL7(ctx, st.svc.LabByCertificate(ctx, peer.Certificate), msg)
		}),
		Failed: func(err error) { env.Logger.Warn("MLLP connection", "err", oneLine(err)) },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	fmt.Fprintf(env.Stdout, "lab results: MLLP over mutual TLS on %s\n", ln.Addr())
	return func() {
		srv.Close()
		<-done
	}, nil
}

// labEvery is how often the lab sender looks for due orders when nothing
// wakes it.
const labEvery = 30 * time.Second

// startLabOrders runs the lab outbox sender until ctx ends or stop is
// called (service/lab_outbox.go).
func startLabOrders(ctx context.Context, env *Env, st *stack, c *labConfig) (stop func()) {
	sender := service.NewLabSender(st.svc, service.LabSenderConfig{TLS: c.tls})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sender.Run(ctx, labEvery, func(sent int, err error) {
			if err != nil {
				env.Logger.Error("lab outbox", "delivered", sent, "err", err)
				return
			}
			env.Logger.Info("lab orders delivered", "count", sent)
		})
	}()
	return func() {
		cancel()
		<-done
	}
}

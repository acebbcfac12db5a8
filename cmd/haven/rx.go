package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"time"

	"haven/service"
)

// rxConfig is how `haven serve` reaches pharmacies: mutual TLS, with the
// practice server's client certificate and the roots trusted for the
// pharmacies' endpoints.
type rxConfig struct {
	ClientCert, ClientKey, CA string

	tls *tls.Config
}

func (c *rxConfig) register(fs *flag.FlagSet) error {
	return registerSettings(fs, []setting{
		{"rx-client-cert", "HAVEN_RX_CLIENT_CERT", "", "PEM certificate Haven presents to pharmacies (mutual TLS); without it prescriptions wait in the outbox", false, &c.ClientCert},
		{"rx-client-key", "HAVEN_RX_CLIENT_KEY", "", "PEM private key of --rx-client-cert", false, &c.ClientKey},
		{"rx-ca", "HAVEN_RX_CA", "", "PEM file of CA certificates trusted for pharmacies' endpoints (default: the system's)", false, &c.CA},
	})
}

// validate loads the certificate and roots before any data is touched.
func (c *rxConfig) validate() error {
	c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		return fmt.Errorf("--rx-client-cert and --rx-client-key: give both or neither")
	}
	if c.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return fmt.Errorf("--rx-client-cert: %v", errShort(err))
		}
		c.tls.Certificates = []tls.Certificate{cert}
	}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return fmt.Errorf("--rx-ca: cannot read %s: %v", c.CA, errShort(err))
		}
		c.tls.RootCAs = x509.NewCertPool()
		if !c.tls.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--rx-ca: %s holds no PEM certificate", c.CA)
		}
	}
	return nil
}

// rxEvery is how often the prescription sender looks for due messages
// when nothing wakes it.
const rxEvery = 30 * time.Second

// startPrescriptions runs the prescription outbox sender until ctx ends
// or stop is called (service/rx_outbox.go).
func startPrescriptions(ctx context.Context, env *Env, st *stack, c *rxConfig) (stop func()) {
	if len(c.tls.Certificates) == 0 {
		fmt.Fprintln(env.Stdout, "no --rx-client-cert: pharmacies require mutual TLS, so prescriptions wait in the outbox")
	}
	sender := service.NewRxSender(st.svc, service.RxSenderConfig{TLS: c.tls})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sender.Run(ctx, rxEvery, func(sent int, err error) {
			if err != nil {
				env.Logger.Error("prescription outbox", "delivered", sent, "err", err)
				return
			}
			env.Logger.Info("prescriptions delivered", "count", sent)
		})
	}()
	return func() {
		cancel()
		<-done
	}
}

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

// labConfig is how `haven serve` reaches labs: MLLP inside TLS 1.3, with
// the practice server's client certificate when a lab requires one, and
// the roots trusted for the labs' endpoints.
type labConfig struct {
	ClientCert, ClientKey, CA string

	tls *tls.Config
}

func (c *labConfig) register(fs *flag.FlagSet) error {
	return registerSettings(fs, []setting{
		{"lab-client-cert", "HAVEN_LAB_CLIENT_CERT", "", "PEM certificate Haven presents to labs when sending orders (mutual TLS)", false, &c.ClientCert},
		{"lab-client-key", "HAVEN_LAB_CLIENT_KEY", "", "PEM private key of --lab-client-cert", false, &c.ClientKey},
		{"lab-ca", "HAVEN_LAB_CA", "", "PEM file of CA certificates trusted for labs' endpoints (default: the system's)", false, &c.CA},
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
	return nil
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

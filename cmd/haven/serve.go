package main

import (
	"context"
	"crypto/fips140"
	"fmt"
	"net"
	"strconv"
	"time"

	"haven/audit"
	"haven/blob"
	"haven/demo"
	"haven/keyring"
	"haven/smart"
	"haven/store/sqlstore"
	"haven/web"
)

func runServe(ctx context.Context, env *Env, args []string) error {
	var cfg Config
	fs := newFlagSet(env, "serve", "Serves Haven over HTTPS (TLS 1.3 only). With no configuration it uses an\nembedded SQLite database and a self-signed certificate under --data-dir.")
	if err := cfg.register(fs, true); err != nil {
		return err
	}
	var vcfg videoConfig
	if err := vcfg.register(fs); err != nil {
		return err
	}
	var mcfg mailConfig
	if err := mcfg.register(fs); err != nil {
		return err
	}
	var lcfg labConfig
	if err := lcfg.register(fs); err != nil {
		return err
	}
	var rcfg rxConfig
	if err := rcfg.register(fs); err != nil {
		return err
	}
	var pcfg paymentConfig
	if err := pcfg.register(fs); err != nil {
		return err
	}
	var limcfg limitsConfig
	if err := limcfg.register(fs); err != nil {
		return err
	}
	var icfg integrationConfig
	if err := icfg.register(fs); err != nil {
		return err
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	// Everything that can be wrong with the configuration is found before
	// any data is touched: settings, certificate, the port, the database.
	err := cfg.validate(true)
	if err != nil {
		return err
	}
	if err := vcfg.validate(cfg.DataDir); err != nil {
		return err
	}
	if err := mcfg.validate(); err != nil {
		return err
	}
	if err := lcfg.validate(); err != nil {
		return err
	}
	if err := rcfg.validate(); err != nil {
		return err
	}
	if err := pcfg.validate(); err != nil {
		return err
	}
	if err := limcfg.validate(); err != nil {
		return err
	}
	if err := icfg.validate(); err != nil {
		return err
	}
	if cfg.videoKey, err = loadVideoKey(vcfg.KeyPath, env.Stdout); err != nil {
		return fmt.Errorf("--video-key: %s", oneLine(err))
	}
	cert, created, err := web.LoadOrCreateCertificate(cfg.DataDir, cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return fmt.Errorf("TLS certificate: %v", err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("--addr: cannot listen on %s: %v", cfg.Addr, listenCause(err))
	}
	defer ln.Close()
	// The one address browsers use, announced and put in every link: a
	// link to another origin (the listening IP, when links say localhost)
	// would land its reader signed out, on a site their browser treats as
	// another.
	publicURL := cfg.PublicURL
	if publicURL == "" {
		// localhost, not the listening IP: passkeys need a host name.
		publicURL = "https://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	iln, err := icfg.listen(publicURL) // the integration listener (integration.go), or nil
	if err != nil {
		return err
	}
	if iln != nil {
		defer iln.Close()
	}
	// The processor's hosted page sends patients back to that address.
	if cfg.processor, err = pcfg.processor(publicURL); err != nil {
		return err
	}
	st, err := openStack(ctx, env, &cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	st.svc.Passwords().ReserveProcs()
	if cfg.Demo {
		logins, err := demo.Seed(ctx, st.svc)
		if err != nil {
			return fmt.Errorf("demo: %s", oneLine(err))
		}
		demo.Print(env.Stdout, logins, publicURL)
	}
	if err := recognizeVendors(ctx, env, st, &cfg, &mcfg, &vcfg); err != nil {
		return err
	}
	mail, stopMail, err := mcfg.outbox(ctx, cfg.DataDir, env)
	if err != nil {
		return err
	}
	defer stopMail() // after the users of mail below have stopped
	id, passkeys, stopIdentity := startIdentity(ctx, env, st, mail, publicURL)
	defer stopIdentity()                                     // sign-in, sessions, accounts, passkeys (identity.go)
	defer startReminders(ctx, env, st, mail, publicURL)()    // visit reminders, through the same outbox (remind.go)
	defer startNotices(ctx, env, st, mail, publicURL)()      // "you have a new secure message", the same way (notify.go)
	defer startBAAReminders(ctx, env, st, mail, publicURL)() // vendor agreements ending within 30 days (remind.go)
	defer startLabOrders(ctx, env, st, &lcfg)()              // lab orders to labs, over MLLP inside TLS (labs.go)
	defer startPrescriptions(ctx, env, st, &rcfg)()          // signed prescriptions to pharmacies, over mutual TLS (rx.go)
	stopMLLP, err := startMLLP(env, st, &lcfg, cert)         // lab results in, over MLLP inside mutual TLS (labs.go)
	if err != nil {
		return err
	}
	defer stopMLLP()
	// Video visits: the SFU and TURN relay live as long as the server, and
	// closing them ends every call.
	media, err := startVideo(&vcfg, cfg.videoKey)
	if err != nil {
		return err
	}
	defer media.Close()
	var aliases []string
	if icfg.URL != "" {
		aliases = append(aliases, icfg.URL)
	}
	apps, err := smart.New(ctx, st.svc.Gate(), st.db, publicURL, aliases...)
	if err != nil {
		return err
	}
	srv, err := web.NewServer(web.Config{
		Logger:           env.Logger,
		Ready:            readiness{st.db, st.audit, st.keys},
		Service:          st.svc,
		Identity:         id,
		Passkeys:         passkeys,
		Video:            media.web(cfg.videoKey, st.db),
		AuditVerifierKey: st.verifier,
		MetricsToken:     cfg.MetricsToken,
		MetricsAllow:     limcfg.allow,
		TrustedProxies:   limcfg.trusted,
		Limits:           limcfg.limits(st.db),
		SMART:            apps,
		IntegrationURL:   icfg.URL,
	})
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	if created {
		fmt.Fprintf(env.Stdout, "created a self-signed certificate for localhost in %s/tls\n", cfg.DataDir)
	}
	fmt.Fprintln(env.Stdout, fipsStatus())
	if iln != nil {
		fmt.Fprintf(env.Stdout, "integration listener (client certificates asked for): %s on %s\n", icfg.URL, iln.Addr())
	}
	fmt.Fprintf(env.Stdout, "Haven is serving %s (listening on %s, TLS 1.3 only)\ncertificate SHA-256 fingerprint %s\n", publicURL, addr, web.Fingerprint(cert))
	env.Logger.Info("serving", "addr", addr, "db", string(st.db.Dialect()), "cert_sha256", web.Fingerprint(cert), "fips140", fips140.Enabled())
	go st.checkpointEvery(ctx, env, time.Minute)
	go st.sweepBlobsEvery(ctx, env, blob.OrphanAge)
	if own, err := st.db.KeepsOwnStatistics(ctx); err != nil {
		env.Logger.Warn("reading whether the database keeps its statistics", "err", oneLine(err))
	} else if !own {
		go st.optimizeEvery(ctx, env, time.Hour)
	}
	stopIntegration := serveIntegration(ctx, env, srv, iln, cert)
	err = srv.Serve(ctx, ln, web.TLSConfig(cert))
	stopIntegration()
	// A last checkpoint at shutdown, so the witness holds the final state.
	if _, cerr := st.checkpointAll(context.WithoutCancel(ctx)); cerr != nil {
		env.Logger.Error("final audit checkpoint", "err", cerr)
	}
	env.Logger.Info("stopped", "err", err)
	return err
}

// checkpointEvery signs and publishes audit checkpoints on a timer, so the
// witness never lags the log by much.
func (st *stack) checkpointEvery(ctx context.Context, env *Env, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := st.checkpointAll(ctx); err != nil && ctx.Err() == nil {
				env.Logger.Error("audit checkpoint", "err", err)
			}
		}
	}
}

// sweepBlobsEvery removes encrypted blobs that no file row names and
// leftovers of writes that died, once at start and then on a timer. Only
// what is older than blob.OrphanAge goes, and only after the database says
// no row names it, so every node may sweep the same store while others
// upload.
func (st *stack) sweepBlobsEvery(ctx context.Context, env *Env, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		res, err := blob.Sweep(ctx, st.blobs, "files/", st.db.BlobKeysInUse, time.Now().Add(-blob.OrphanAge))
		if err != nil && ctx.Err() == nil {
			env.Logger.Error("blob sweep", "err", err)
		} else if res.Orphans > 0 || res.Leftovers > 0 {
			env.Logger.Info("blob sweep", "orphans_removed", res.Orphans, "leftovers_removed", res.Leftovers, "checked", res.Checked)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// optimizeEvery refreshes the statistics of an engine that does not keep
// them itself on a timer: SQLite, as it advises for long-lived connections
// (PRAGMA optimize re-analyzes the tables whose size moved enough to change
// a plan), and PostgreSQL with autovacuum off (ANALYZE). Hot queries do not
// depend on it (see sqlstore's planner.go); other queries' plans do. With
// autovacuum on, statistics are its job, and Haven analyzes after its own
// bulk changes.
func (st *stack) optimizeEvery(ctx context.Context, env *Env, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := st.db.Analyze(ctx); err != nil && ctx.Err() == nil {
				env.Logger.Warn("refreshing the database statistics", "err", oneLine(err))
			}
		}
	}
}

// readiness is what /readyz asks, and so what a load balancer's health
// check decides on: the database answers with the current schema, the
// audit log can be written and its stored head still verifies, and the key
// hierarchy is usable here (the current root is one this node holds, and
// it wraps). A node that would fail every PHI request closed is taken out
// of rotation, and comes back once all three hold again.
type readiness struct {
	db    *sqlstore.DB
	audit *audit.Log
	keys  *keyring.Keyring
}

func (r readiness) Ready(ctx context.Context) error {
	if err := r.db.Ready(ctx); err != nil {
		return err
	}
	if err := r.audit.Ready(ctx); err != nil {
		return err
	}
	return r.keys.Ready(ctx)
}

// listenCause reduces a listen error to its reason ("address already in use").
func listenCause(err error) error {
	if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
		if se, ok := oe.Err.(interface{ Unwrap() error }); ok && se.Unwrap() != nil {
			return se.Unwrap()
		}
		return oe.Err
	}
	return err
}

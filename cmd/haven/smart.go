package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"haven"
	"haven/smart"
)

func init() {
	commands["smart"] = command{"SMART on FHIR apps and backend systems a practice lets in", runSMART}
}

func runSMART(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] != "clients" {
		fmt.Fprintln(env.Stderr, "Usage: haven smart clients add|list|revoke [flags]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errUsage
	}
	args = args[1:]
	sub := map[string]func(context.Context, *Env, []string) error{"add": runSMARTAdd, "list": runSMARTList, "revoke": runSMARTRevoke}
	if len(args) == 0 || sub[args[0]] == nil {
		fmt.Fprintln(env.Stderr, "Usage: haven smart clients add|list|revoke [flags]\n\n"+
			"  add      register an app (--name, --redirect-uri, --public or a secret, --scope) or a backend\n"+
			"           system (--name, --jwks-file with its public keys and/or --tls-cert with its client\n"+
			"           certificate, --scope system/…, --network)\n"+
			"  list     a practice's apps and systems\n"+
			"  revoke   cut one off (--id): every token it holds ends at once\n\n"+
			"Every command names the practice (--practice, by name or id) and is in its audit log.")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errUsage
	}
	return sub[args[0]](ctx, env, args[1:])
}

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runSMARTAdd(ctx context.Context, env *Env, args []string) error {
	var practice, name, jwksFile, certFile, launchURL string
	var public bool
	var uris, scopes, networks listFlag
	cfg, err := keysFlags(env, "smart clients add", "Registers a SMART app or backend system for a practice.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&practice, "practice", "", "the practice, by name (or id); without it, the practices are listed")
		fs.StringVar(&name, "name", "", "the app's name, as the consent page shows it")
		fs.Var(&uris, "redirect-uri", "where the app receives its code (repeat for several)")
		fs.StringVar(&launchURL, "launch-url", "", "where \"Open in app\" on a chart sends a clinician (EHR launch); optional")
		fs.BoolVar(&public, "public", false, "an app that cannot keep a secret (a browser or phone app): PKCE only")
		fs.Var(&scopes, "scope", "a scope it may ask for, e.g. patient/*.rs, launch/patient, offline_access (repeat, or space-separated)")
		fs.StringVar(&jwksFile, "jwks-file", "", "a backend system's public keys (a JSON Web Key Set, RS384 or ES384)")
		fs.StringVar(&certFile, "tls-cert", "", "a backend system's client certificate (PEM): it then authenticates by presenting it on the integration listener (with --jwks-file, besides its signed assertion), and its tokens are bound to it")
		fs.Var(&networks, "network", "a CIDR network a backend system may call from (repeat); none means anywhere")
	})
	if err != nil {
		return err
	}
	nc := smart.NewClient{Name: name, RedirectURIs: uris, LaunchURL: launchURL, Public: public, Scopes: scopes, Networks: networks}
	if jwksFile != "" {
		b, err := os.ReadFile(jwksFile)
		if err != nil {
			return fmt.Errorf("--jwks-file: %v", err)
		}
		nc.JWKS = string(b)
	}
	if certFile != "" {
		b, err := os.ReadFile(certFile)
		if err != nil {
			return fmt.Errorf("--tls-cert: %v", err)
		}
		nc.TLSCert = string(b)
	}
	st, apps, practice, err := openSMART(ctx, env, cfg, practice)
	if err != nil {
		return err
	}
	defer st.Close()
	reg, err := apps.OperatorAddClient(ctx, practice, nc)
	if err != nil {
		return errors.New(haven.ErrorMessage(err))
	}
	fmt.Fprintf(env.Stdout, "client %s registered: %s\n", reg.Client.ID, reg.Client.Name)
	if reg.Secret != "" {
		fmt.Fprintf(env.Stdout, "client secret (shown once, store it in the app): %s\n", reg.Secret)
	}
	return nil
}

func runSMARTList(ctx context.Context, env *Env, args []string) error {
	var practice string
	cfg, err := keysFlags(env, "smart clients list", "Lists a practice's SMART apps and backend systems.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&practice, "practice", "", "the practice, by name (or id); without it, the practices are listed")
	})
	if err != nil {
		return err
	}
	st, apps, practice, err := openSMART(ctx, env, cfg, practice)
	if err != nil {
		return err
	}
	defer st.Close()
	cs, err := apps.OperatorClients(ctx, practice)
	if err != nil {
		return errors.New(haven.ErrorMessage(err))
	}
	for _, c := range cs {
		kind := "confidential app"
		switch {
		case c.JWKS != "" && c.CertThumbprint != "":
			kind = "backend system (keys and certificate " + c.CertThumbprint + ")"
		case c.CertThumbprint != "":
			kind = "backend system (certificate " + c.CertThumbprint + ")"
		case c.JWKS != "":
			kind = "backend system"
		case c.Public:
			kind = "public app"
		}
		state := "active"
		if !c.RevokedAt.IsZero() {
			state = "revoked " + c.RevokedAt.Format("2006-01-02")
		}
		fmt.Fprintf(env.Stdout, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, kind, strings.Join(c.Scopes, " "), state)
	}
	return nil
}

func runSMARTRevoke(ctx context.Context, env *Env, args []string) error {
	var practice, id string
	cfg, err := keysFlags(env, "smart clients revoke", "Revokes a SMART app or backend system: every token it holds ends at once.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&practice, "practice", "", "the practice, by name (or id); without it, the practices are listed")
		fs.StringVar(&id, "id", "", "the client's id (see haven smart clients list)")
	})
	if err != nil {
		return err
	}
	if id == "" {
		return errors.New("--id is required (see haven smart clients list)")
	}
	st, apps, practice, err := openSMART(ctx, env, cfg, practice)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := apps.OperatorRevokeClient(ctx, practice, id); err != nil {
		return errors.New(haven.ErrorMessage(err))
	}
	fmt.Fprintf(env.Stdout, "client %s revoked\n", id)
	return nil
}

// openSMART opens the stack and the authorization server for the practice
// --practice names (by name or id, as pickPractice finds it), returning
// the practice's id. The caller closes the stack.
func openSMART(ctx context.Context, env *Env, cfg *Config, practice string) (*stack, *smart.Service, string, error) {
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return nil, nil, "", err
	}
	p, err := pickPractice(ctx, env, st, practice)
	if err != nil {
		st.Close()
		return nil, nil, "", err
	}
	apps, err := smart.New(ctx, st.svc.Gate(), st.db, "")
	if err != nil {
		st.Close()
		return nil, nil, "", err
	}
	return st, apps, p.ID, nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"haven"
	"haven/identity"
)

func init() {
	commands["practice"] = command{"create a practice with its first administrator, or list practices", runPractice}
}

func runPractice(ctx context.Context, env *Env, args []string) error {
	sub := map[string]func(context.Context, *Env, []string) error{"create": runPracticeCreate, "list": runPracticeList}
	if len(args) == 0 || sub[args[0]] == nil {
		fmt.Fprintln(env.Stderr, "Usage: haven practice create|list [flags]\n\n"+
			"  create   a new practice (--name) and an invitation for its first administrator (--admin-email);\n"+
			"           the link is emailed (to <data-dir>/outbox, which a server with --smtp-url delivers)\n"+
			"           and printed, to hand over as you would a password\n"+
			"  list     every practice's id, creation time and name")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errUsage
	}
	return sub[args[0]](ctx, env, args[1:])
}

func runPracticeCreate(ctx context.Context, env *Env, args []string) error {
	var name, adminEmail, publicURL string
	defURL := "https://localhost:8443"
	if v, ok := os.LookupEnv("HAVEN_PUBLIC_URL"); ok {
		defURL = v
	}
	cfg, err := keysFlags(env, "practice create", "Creates a practice and invites its first administrator (single use, valid for "+days(identity.InvitationTTL)+").", args, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "the practice's public name, shown to its users and in emails")
		fs.StringVar(&adminEmail, "admin-email", "", "email address of the practice's first administrator")
		fs.StringVar(&publicURL, "public-url", defURL, "the https:// address browsers use, for the invitation link (env HAVEN_PUBLIC_URL)")
	})
	if err != nil {
		return err
	}
	if name == "" || adminEmail == "" {
		return errors.New("--name and --admin-email are required")
	}
	if err := identity.CheckNewPractice(name, adminEmail); err != nil {
		return errors.New(haven.ErrorMessage(err))
	}
	if publicURL, err = checkPublicURL(publicURL); err != nil {
		return err
	}
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	mail, err := outboxDir(cfg.DataDir, env.Stdout)
	if err != nil {
		return err
	}
	id := identity.New(st.svc.Gate(), identity.Config{
		DB:      st.db,
		Outbox:  mail,
		BaseURL: publicURL,
	})
	defer id.Close()
	p, link, err := id.ProvisionPractice(ctx, name, adminEmail)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "practice %s created: %s\n", p.ID, p.Name)
	fmt.Fprintf(env.Stdout, "invitation for its administrator (single use, valid for %s):\n%s\n", days(identity.InvitationTTL), link)
	return nil
}

func runPracticeList(ctx context.Context, env *Env, args []string) error {
	cfg, err := keysFlags(env, "practice list", "Lists every practice: id, creation time and name.", args, nil)
	if err != nil {
		return err
	}
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	ps, err := st.svc.Practices(ctx)
	if err != nil {
		return err
	}
	for _, p := range ps {
		fmt.Fprintf(env.Stdout, "%s  %s  %s\n", p.ID, p.CreatedAt.UTC().Format(time.RFC3339), p.Name)
	}
	return nil
}

func days(d time.Duration) string { return fmt.Sprintf("%d days", int(d/(24*time.Hour))) }

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"haven"
	"haven/identity"
)

func init() {
	commands["practice"] = command{"create a practice with its first administrator, list practices, or set a practice's networks", runPractice}
}

func runPractice(ctx context.Context, env *Env, args []string) error {
	sub := map[string]func(context.Context, *Env, []string) error{"create": runPracticeCreate, "list": runPracticeList, "networks": runPracticeNetworks}
	if len(args) == 0 || sub[args[0]] == nil {
		fmt.Fprintln(env.Stderr, "Usage: haven practice create|list|networks [flags]\n\n"+
			"  create   a new practice (--name) and an invitation for its first administrator (--admin-email);\n"+
			"           the link is emailed (to <data-dir>/outbox, which a server with --smtp-url delivers)\n"+
			"           and printed, to hand over as you would a password\n"+
			"  list     every practice's id, creation time and name\n"+
			"  networks a practice's workforce networks (--practice NAME): shows them, or replaces them\n"+
			"           (--set CIDR,CIDR) or removes them (--clear); the way back in when a list locks\n"+
			"           the practice's administrator out")
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

// runPracticeNetworks shows or sets a practice's workforce networks as the
// operator: the escape hatch for an administrator that a list keeps out
// of the settings page that would change it.
func runPracticeNetworks(ctx context.Context, env *Env, args []string) error {
	var practice, set string
	var clear bool
	cfg, err := keysFlags(env, "practice networks", "Shows a practice's workforce networks, or replaces (--set) or removes (--clear) them,\n"+
		"as one audited operator event in the practice's audit log. Every server on the database\n"+
		"decides on the new list from its next request.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&practice, "practice", "", "the practice, by name (or id); without it, the practices are listed")
		fs.StringVar(&set, "set", "", "the networks the workforce may act from, comma-separated CIDR (such as 203.0.113.0/24)")
		fs.BoolVar(&clear, "clear", false, "remove the list: the workforce may act from any network")
	})
	if err != nil {
		return err
	}
	if clear && set != "" {
		return errors.New("give --set or --clear, not both")
	}
	st, err := openStack(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := pickPractice(ctx, env, st, practice)
	if err != nil {
		return err
	}
	if clear || set != "" {
		var nets []string
		for _, n := range strings.Split(set, ",") {
			if n = strings.TrimSpace(n); n != "" {
				nets = append(nets, n)
			}
		}
		if err := st.svc.OperatorSetWorkforceNetworks(ctx, p.ID, nets); err != nil {
			return errors.New(haven.ErrorMessage(err))
		}
	}
	nets, err := st.svc.OperatorWorkforceNetworks(ctx, p.ID)
	if err != nil {
		return err
	}
	if len(nets) == 0 {
		fmt.Fprintf(env.Stdout, "%s: no workforce networks; its workforce may act from any network\n", p.Name)
		return nil
	}
	fmt.Fprintf(env.Stdout, "%s: its workforce may act only from %s\n", p.Name, strings.Join(nets, ", "))
	return nil
}

// pickPractice finds the practice an operator's --practice names, by name
// (case and surrounding spaces aside) or id. When it names none, or
// several, it lists the practices on standard error to choose from.
func pickPractice(ctx context.Context, env *Env, st *stack, practice string) (*haven.Practice, error) {
	ps, err := st.svc.Practices(ctx)
	if err != nil {
		return nil, err
	}
	var found []*haven.Practice
	for _, p := range ps {
		if practice != "" && (p.ID == practice || strings.EqualFold(strings.TrimSpace(p.Name), strings.TrimSpace(practice))) {
			found = append(found, p)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	if practice == "" {
		fmt.Fprintln(env.Stderr, "Give the practice with --practice NAME. The practices:")
	} else if len(found) == 0 {
		fmt.Fprintf(env.Stderr, "No practice is named %q. The practices:\n", practice)
	} else {
		fmt.Fprintf(env.Stderr, "%d practices are named %q: give the id. The practices:\n", len(found), practice)
	}
	for _, p := range ps {
		fmt.Fprintf(env.Stderr, "  %s  %s\n", p.ID, p.Name)
	}
	if len(ps) == 0 {
		fmt.Fprintln(env.Stderr, "  (none: create one with haven practice create)")
	}
	return nil, errUsage
}

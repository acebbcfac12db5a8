package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
)

func init() {
	commands["compliance"] = command{"the HIPAA evidence report of a practice", runCompliance}
}

func runCompliance(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] != "report" {
		fmt.Fprintln(env.Stderr, "Usage: haven compliance report --practice NAME [--format html|md|json] [--out PATH] [flags]\n\n"+
			"  report   each HIPAA safeguard with the evidence this instance gives of it now (MFA coverage,\n"+
			"           session timeouts, the audit log verified, key dates, agreements, the last restore\n"+
			"           drill, open requests), its status and the tests that prove it; counts, no patient.\n"+
			"           Without --practice it lists the practices.")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errUsage
	}
	return runComplianceReport(ctx, env, args[1:])
}

func runComplianceReport(ctx context.Context, env *Env, args []string) error {
	var practice, format, out string
	cfg, err := keysFlags(env, "compliance report", "Makes a practice's HIPAA evidence report from this instance's live data, as one audited\n"+
		"operator event in the practice's audit log.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&practice, "practice", "", "the practice, by name (or id); without it, the practices are listed")
		fs.StringVar(&format, "format", "md", "html, md or json")
		fs.StringVar(&out, "out", "", "write the report to this file (default: standard output)")
	})
	if err != nil {
		return err
	}
	switch format {
	case "html", "md", "json":
	default:
		return errors.New("--format: html, md or json")
	}
	// Opening the stack may warn (a witness on the same disk): to standard
	// error, so that standard output is the report alone.
	quiet := *env
	quiet.Stdout = env.Stderr
	st, err := openStack(ctx, &quiet, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := pickPractice(ctx, env, st, practice)
	if err != nil {
		return err
	}
	rep, err := st.svc.OperatorComplianceReport(ctx, p.ID)
	if err != nil {
		return err
	}
	body, _, _, err := rep.Render(format)
	if err != nil {
		return err
	}
	if out == "" {
		_, err = env.Stdout.Write(body)
		return err
	}
	if err := os.WriteFile(out, body, 0o600); err != nil {
		return fmt.Errorf("--out: %v", errShort(err))
	}
	fmt.Fprintf(env.Stdout, "report of %s written to %s: %d met, %d need attention, %d not met\n", rep.Practice, out, rep.Met, rep.Attention, rep.NotMet)
	return nil
}

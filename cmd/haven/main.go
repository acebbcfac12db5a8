// Command haven is Haven's one binary: the HTTPS server and every operator
// command (migrations, keys, legal holds, audit, practices). Run "haven help"
// for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"haven"
)

// command is one subcommand. run gets the arguments after the subcommand
// name and returns an error whose text is printed as one line.
type command struct {
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// Env is what a command may touch of the process, so tests can run commands
// in-process with their own output.
type Env struct {
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
}

var commands = map[string]command{}

func init() {
	commands["serve"] = command{"serve Haven over HTTPS (TLS 1.3 only)", runServe}
	commands["migrate"] = command{"apply pending database migrations", runMigrate}
	commands["version"] = command{"print the version", runVersion}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &Env{Stdout: os.Stdout, Stderr: os.Stderr,
		Logger: slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	os.Exit(Main(ctx, env, os.Args[1:]))
}

// Main runs the subcommand named by args[0] and returns the exit status:
// 0 on success, 1 on failure (one line on stderr), 2 on a usage error.
func Main(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "haven: unknown command %q; run 'haven help'\n", args[0])
		return 2
	}
	err := cmd.run(ctx, env, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(env.Stderr, "haven %s: %s\n", args[0], oneLine(err))
	return 1
}

var errUsage = errors.New("usage")

// oneLine renders err for an operator: Haven errors show their client-safe
// message; others show their text, on one line.
func oneLine(err error) string {
	msg := err.Error()
	var he *haven.Error
	if errors.As(err, &he) {
		msg = he.Message
	}
	return strings.Join(strings.Fields(msg), " ")
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: haven <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'haven <command> --help' for a command's flags.")
}

// newFlagSet returns a flag set whose usage names the command and whose
// errors are returned rather than exiting.
func newFlagSet(env *Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("haven "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: haven %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, mapping a bad flag to errUsage (flag has printed why).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return nil
}

func runVersion(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "version", "Prints the version of this binary.")
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "haven", haven.Version)
	return nil
}

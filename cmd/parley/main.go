// Command parley is Parley's single binary: the relay server, the client
// command line, the terminal UI and the local web UI.
//
// It parses flags and prints; everything else is a library call. Output
// rules: data goes to stdout (JSON with --json); diagnostics go to stderr as
// "parley: error: …" and "parley: hint: …".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "devel"

// globals holds the flags accepted before the command name.
type globals struct {
	home   string // profile directory; empty means the default
	json   bool   // machine-readable output
	stdout io.Writer
	stderr io.Writer
	stdin  io.Reader
}

// command is one subcommand of parley.
type command struct {
	summary string
	run     func(ctx context.Context, g *globals, args []string) error
}

// commands lists every subcommand. Each lives in its own file.
func commands() map[string]command {
	return map[string]command{
		"version":   {"print the version", runVersion},
		"relay":     relayCommand,
		"init":      initCommand,
		"invite":    inviteCommand,
		"accept":    acceptCommand,
		"contacts":  contactsCommand,
		"messages":  messagesCommand,
		"send":      sendCommand,
		"receive":   receiveCommand,
		"verify":    verifyCommand,
		"relays":    relaysCommand,
		"daemon":    daemonCommand,
		"chat":      chatCommand,
		"demo":      demoCommand,
		"settings":  settingsCommand,
		"disappear": disappearCommand,
	}
}

// usageError is returned for bad command lines; main prints it with a hint.
type usageError struct{ msg, hint string }

func (e *usageError) Error() string { return e.msg }

// Hint is the usage line or advice printed after the error.
func (e *usageError) Hint() string { return e.hint }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code:
// 0 on success, 1 on failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr, stdin: stdin}
	fs := flag.NewFlagSet("parley", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.home, "home", os.Getenv("PARLEY_HOME"), "profile `directory` (default: under the user's config directory)")
	fs.BoolVar(&g.json, "json", false, "print machine-readable JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "parley: error: %v\nparley: hint: run 'parley help' for usage\n", err)
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] == "help" {
		printUsage(stdout)
		return 0
	}
	cmd, ok := commands()[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "parley: error: unknown command %q\nparley: hint: run 'parley help' for the list of commands\n", rest[0])
		return 2
	}
	if err := cmd.run(ctx, g, rest[1:]); err != nil {
		var ue *usageError
		if errors.As(err, &ue) && misplacedGlobal(rest[1:]) {
			err = &usageError{msg: ue.msg, hint: fmt.Sprintf("--home and --json go before the command name: parley --home DIR --json %s …", rest[0])}
		}
		fmt.Fprintf(stderr, "parley: error: %v\n", err)
		var h interface{ Hint() string }
		if errors.As(err, &h) && h.Hint() != "" {
			fmt.Fprintf(stderr, "parley: hint: %s\n", h.Hint())
		}
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// misplacedGlobal reports whether a command's arguments hold --home or
// --json, flags that belong before the command name.
func misplacedGlobal(args []string) bool {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "home" || name == "json") {
			return true
		}
	}
	return false
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: parley [--home DIR] [--json] COMMAND [ARGS]\n\ncommands:\n")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for name := range cmds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, cmds[name].summary)
	}
}

func runVersion(_ context.Context, g *globals, args []string) error {
	if len(args) != 0 {
		return &usageError{msg: "version takes no arguments", hint: "usage: parley [--json] version"}
	}
	if g.json {
		fmt.Fprintf(g.stdout, "{\"version\":%q}\n", version)
		return nil
	}
	fmt.Fprintf(g.stdout, "parley %s\n", version)
	return nil
}

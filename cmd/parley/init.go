package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/parley-messenger/parley/agent"
)

const initSynopsis = "init [--name NAME] [--no-passphrase]"

var initCommand = command{"create a profile (a device identity; no phone number, no account)", runInit}

// runInit creates a profile: a device identity and, optionally, a display
// name that only contacts ever see (end-to-end encrypted). The passphrase
// comes from PARLEY_PASSPHRASE or the terminal; an empty one is only an
// explicit choice (--no-passphrase), with a warning.
func runInit(_ context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "display `NAME` shown to your contacts")
	noPass := fs.Bool("no-passphrase", false, "store the profile without a passphrase (anyone who can read its files can read your messages)")
	if err := parseFlags(g, fs, args, initSynopsis); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return usage("init: "+err.Error(), initSynopsis)
	}
	if fs.NArg() != 0 {
		return usage("init takes no arguments", initSynopsis)
	}
	home, err := homeDir(g)
	if err != nil {
		return err
	}
	var pass []byte
	if !*noPass {
		p, ok, err := readPassphrase(g, true)
		if err != nil {
			return err
		}
		if !ok || len(p) == 0 {
			return hinted(errors.New("init: no passphrase"), "set %s, run init on a terminal to type one, or pass --no-passphrase to store the profile unprotected", envPassphrase)
		}
		pass = p
	}
	warnings, err := agent.Init(home, pass, *name, &agent.Options{KDF: initKDF(g), AllowEmptyPassphrase: *noPass})
	switch {
	case errors.Is(err, agent.ErrProfileExists):
		return hinted(fmt.Errorf("init: a profile already exists in %s", home), "use it as it is, or give another directory with --home DIR")
	case err != nil:
		return hinted(fmt.Errorf("init: %w", err), "check that %s is a directory you can write", home)
	}
	for _, w := range warnings {
		warn(g, "%s", w)
	}
	a, err := agent.Open(home, pass, &agent.Options{AllowEmptyPassphrase: *noPass})
	if err != nil {
		return hinted(fmt.Errorf("init: reopening the new profile: %w", err), "the profile was created; check it with 'parley --home %s contacts'", home)
	}
	id := a.Identity()
	if err := a.Close(); err != nil {
		return err
	}
	if g.json {
		return printJSON(g.stdout, map[string]string{"home": home, "identity": id.String(), "name": *name})
	}
	fmt.Fprintf(g.stdout, "created a profile in %s\nidentity %s\n", home, id)
	fmt.Fprintf(g.stderr, "parley: hint: add two relays with 'parley relays add parley://…', then 'parley invite' someone\n")
	return nil
}

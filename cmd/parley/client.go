package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/parley-messenger/parley/agent"
	"github.com/parley-messenger/parley/agent/localstore"
)

// Environment variables the client commands read.
const (
	// envPassphrase supplies the profile's passphrase to scripts.
	envPassphrase = "PARLEY_PASSPHRASE"
	// envFastKDF, when "1", makes init derive the profile key with
	// localstore.TestKDF instead of DefaultKDF. It exists for the test
	// suite (hundreds of profile openings under the race detector); a
	// profile made with it is much cheaper to brute-force, so init warns.
	envFastKDF = "PARLEY_INSECURE_FAST_KDF"
)

// hintError is a failure that tells the user what to do next; main's run
// prints its hint as "parley: hint: …" after the error.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }

// Hint is what the user should do next.
func (e *hintError) Hint() string { return e.hint }

func (e *hintError) Unwrap() error { return e.err }

// hinted wraps err with a hint.
func hinted(err error, hint string, args ...any) error {
	return &hintError{err: err, hint: fmt.Sprintf(hint, args...)}
}

// usage returns a usage error for cmd.
func usage(msg, synopsis string) error {
	return &usageError{msg: msg, hint: "usage: parley [--home DIR] [--json] " + synopsis}
}

// homeDir is the profile directory: --home, $PARLEY_HOME, or parley/profile
// under the user's config directory.
func homeDir(g *globals) (string, error) {
	if g.home != "" {
		return g.home, nil
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return "", hinted(fmt.Errorf("finding the config directory: %w", err), "give the profile directory with --home DIR")
	}
	return filepath.Join(cfg, "parley", "profile"), nil
}

// isTerminal reports whether f is an *os.File on a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// readPassphrase gets the passphrase from $PARLEY_PASSPHRASE or, on a
// terminal, by prompting without echo. ok is false when neither is
// available.
func readPassphrase(g *globals, confirm bool) (pass []byte, ok bool, err error) {
	// An empty PARLEY_PASSPHRASE counts as none: an empty passphrase is
	// only ever chosen explicitly (init --no-passphrase).
	if v := os.Getenv(envPassphrase); v != "" {
		return []byte(v), true, nil
	}
	in, isFile := g.stdin.(*os.File)
	if !isFile || !isTerminal(in) {
		return nil, false, nil
	}
	fmt.Fprint(g.stderr, "passphrase: ")
	p, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return nil, false, fmt.Errorf("reading the passphrase: %w", err)
	}
	if confirm {
		fmt.Fprint(g.stderr, "passphrase again: ")
		p2, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(g.stderr)
		if err != nil {
			return nil, false, fmt.Errorf("reading the passphrase: %w", err)
		}
		if string(p) != string(p2) {
			return nil, false, hinted(errors.New("the passphrases differ"), "run the command again and type the same passphrase twice")
		}
	}
	return p, true, nil
}

// warn prints a warning on stderr.
func warn(g *globals, format string, args ...any) {
	fmt.Fprintf(g.stderr, "parley: warning: "+format+"\n", args...)
}

// openProfile opens the profile in the home directory and starts its
// agent. Without a passphrase from the environment or the terminal it
// tries the empty one (a profile made with init --no-passphrase).
func openProfile(g *globals) (*agent.Agent, error) {
	home, err := homeDir(g)
	if err != nil {
		return nil, err
	}
	pass, ok, err := readPassphrase(g, false)
	if err != nil {
		return nil, err
	}
	a, err := agent.Open(home, pass, &agent.Options{AllowEmptyPassphrase: len(pass) == 0})
	switch {
	case errors.Is(err, agent.ErrNoProfile):
		return nil, hinted(fmt.Errorf("no profile in %s", home), "create one with 'parley --home %s init', or pick another with --home DIR", home)
	case errors.Is(err, agent.ErrProfileInUse):
		return nil, hinted(fmt.Errorf("the profile in %s is in use by another parley process", home), "stop it (a 'parley daemon', 'chat' or 'demo'), or send your requests to the running daemon on its socket %s", filepath.Join(home, socketName))
	case errors.Is(err, agent.ErrWrongPassphrase) && !ok:
		return nil, hinted(errors.New("the profile is locked with a passphrase"), "set %s, or run the command on a terminal to be asked for it", envPassphrase)
	case errors.Is(err, agent.ErrWrongPassphrase):
		return nil, hinted(errors.New("wrong passphrase"), "check %s (or what you typed) and try again", envPassphrase)
	case err != nil:
		return nil, hinted(fmt.Errorf("opening the profile in %s: %w", home, err), "check that no other parley process uses this profile, and that the directory is yours")
	}
	for _, w := range a.Warnings() {
		warn(g, "%s", w)
	}
	return a, nil
}

// findContact resolves a CONTACT argument, with hints.
func findContact(a *agent.Agent, name string) (agent.Contact, error) {
	c, err := a.FindContact(name)
	switch {
	case errors.Is(err, agent.ErrUnknownContact):
		return c, hinted(fmt.Errorf("no contact %q", name), "list your contacts with 'parley contacts'")
	case errors.Is(err, agent.ErrAmbiguousContact):
		return c, hinted(fmt.Errorf("more than one contact matches %q", name), "give the contact's full ID from 'parley contacts'")
	}
	return c, err
}

// relayHint explains ErrNotEnoughRelays.
func relayErr(err error) error {
	if errors.Is(err, agent.ErrNotEnoughRelays) {
		return hinted(errors.New("not enough reachable relays (each connection uses at least two)"), "add relays with 'parley relays add parley://…' (run one with 'parley relay'), and check they are running with 'parley relays list'")
	}
	return err
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// contactJSON is a contact in --json output.
type contactJSON struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Alias           string `json:"alias,omitempty"`
	DisplayName     string `json:"displayName,omitempty"`
	Identity        string `json:"identity"`
	Verified        bool   `json:"verified"`
	IdentityChanged bool   `json:"identityChanged,omitempty"`
	Connected       bool   `json:"connected"`
	DisappearAfter  string `json:"disappearAfter,omitempty"`
}

func toContactJSON(c agent.Contact) contactJSON {
	j := contactJSON{
		ID: string(c.ID), Name: c.Name(), Alias: c.Alias, DisplayName: c.DisplayName,
		Verified: c.Verified, IdentityChanged: c.IdentityChanged, Connected: c.Connected,
	}
	if !c.Identity.IsZero() {
		j.Identity = c.Identity.String()
	}
	if c.DisappearAfter > 0 {
		j.DisappearAfter = c.DisappearAfter.String()
	}
	return j
}

// messageJSON is a message in --json output.
type messageJSON struct {
	ID       string    `json:"id"`
	Contact  string    `json:"contact"`
	Name     string    `json:"name,omitempty"`
	Outgoing bool      `json:"outgoing"`
	Text     string    `json:"text,omitempty"`
	Status   string    `json:"status"`
	Order    uint64    `json:"order"`
	Sent     time.Time `json:"sent"`
	Received time.Time `json:"received"`
}

func toMessageJSON(m agent.Message, name string) messageJSON {
	return messageJSON{
		ID: string(m.ID), Contact: string(m.Contact), Name: name, Outgoing: m.Outgoing,
		Text: m.Text, Status: m.Status.String(), Order: m.Order, Sent: m.Sent, Received: m.Received,
	}
}

// eventJSON is one event in receive --json and the daemon's notifications.
type eventJSON struct {
	Type    string       `json:"type"`
	Contact *contactJSON `json:"contact,omitempty"`
	Message *messageJSON `json:"message,omitempty"`
	Typing  *bool        `json:"typing,omitempty"`
	Relay   string       `json:"relay,omitempty"`
	Up      *bool        `json:"up,omitempty"`
	Error   string       `json:"error,omitempty"`
}

// toEventJSON converts ev; name resolves contact names for messages.
func toEventJSON(ev agent.Event, name func(agent.ContactID) string) eventJSON {
	j := eventJSON{Type: ev.Type.String()}
	if ev.Contact != nil {
		c := toContactJSON(*ev.Contact)
		j.Contact = &c
	}
	if ev.Message != nil {
		m := toMessageJSON(*ev.Message, name(ev.Message.Contact))
		j.Message = &m
	}
	switch ev.Type {
	case agent.EventTyping:
		t := ev.Typing
		j.Typing = &t
	case agent.EventRelayStatus:
		j.Relay = ev.Relay
		up := ev.Up
		j.Up = &up
	case agent.EventError:
		if ev.Err != nil {
			j.Error = ev.Err.Error()
		}
	}
	return j
}

// contactNamer returns a function naming contacts, cached.
func contactNamer(a *agent.Agent) func(agent.ContactID) string {
	cache := map[agent.ContactID]string{}
	return func(id agent.ContactID) string {
		if n, ok := cache[id]; ok {
			return n
		}
		c, err := a.Contact(id)
		if err != nil {
			return string(id)
		}
		cache[id] = c.Name()
		return c.Name()
	}
}

// flushOutbox waits up to d for the outbox to reach a relay. It reports
// whether it did; the messages stay in the outbox either way.
func flushOutbox(ctx context.Context, a *agent.Agent, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return a.Flush(ctx) == nil
}

// shortID abbreviates a contact ID for text output.
func shortID(id agent.ContactID) string {
	s := string(id)
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// oneLine makes text safe to print on one terminal line: control
// characters (escape sequences a contact could send) become U+FFFD.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// fastKDF returns the KDF init uses.
func initKDF(g *globals) localstore.KDFParams {
	if os.Getenv(envFastKDF) == "1" {
		warn(g, "%s=1: the profile key is derived with a weak test setting; use it only in tests", envFastKDF)
		return localstore.TestKDF
	}
	return localstore.KDFParams{}
}

// errHelpShown: the command's help was printed; the command does nothing.
var errHelpShown = errors.New("help shown")

// parseFlags parses a command's flags. -h or --help prints the synopsis
// and the flags to stdout and returns errHelpShown.
func parseFlags(g *globals, fs *flag.FlagSet, args []string, synopsis string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(g.stdout, "usage: parley [--home DIR] [--json] %s\n", synopsis)
		fs.SetOutput(g.stdout)
		fs.PrintDefaults()
		return errHelpShown
	}
	return err
}

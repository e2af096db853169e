package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/parley-messenger/parley/agent"
	"github.com/parley-messenger/parley/relay/client"
)

const (
	contactsSynopsis = "contacts"
	messagesSynopsis = "messages CONTACT"
	verifySynopsis   = "verify [--confirm | --reject] CONTACT"
	relaysSynopsis   = "relays add ADDRESS | relays remove ADDRESS | relays list"
)

var (
	contactsCommand = command{"list your contacts", runContacts}
	messagesCommand = command{"show the conversation with a contact", runMessages}
	verifyCommand   = command{"show a contact's safety number; --confirm marks it verified", runVerify}
	relaysCommand   = command{"add, remove or list your relays", runRelays}
)

func runContacts(_ context.Context, g *globals, args []string) error {
	if len(args) != 0 {
		return usage("contacts takes no arguments", contactsSynopsis)
	}
	a, err := openProfile(g)
	if err != nil {
		return err
	}
	defer a.Close()
	cs, err := a.Contacts()
	if err != nil {
		return err
	}
	for _, c := range cs {
		if g.json {
			if err := printJSON(g.stdout, toContactJSON(c)); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(g.stdout, "%s  %-20s %s\n", shortID(c.ID), oneLine(c.Name()), contactState(c))
	}
	if len(cs) == 0 && !g.json {
		fmt.Fprintln(g.stderr, "parley: hint: no contacts yet; make one with 'parley invite' or 'parley accept LINK'")
	}
	return nil
}

// contactState describes a contact in one short phrase.
func contactState(c agent.Contact) string {
	var s []string
	switch {
	case c.IdentityChanged:
		s = append(s, "IDENTITY KEY CHANGED (run parley verify)")
	case c.Verified:
		s = append(s, "verified")
	default:
		s = append(s, "unverified")
	}
	if !c.Connected {
		s = append(s, "connecting")
	}
	if c.DisappearAfter > 0 {
		s = append(s, "disappearing after "+c.DisappearAfter.String())
	}
	return strings.Join(s, ", ")
}

func runMessages(_ context.Context, g *globals, args []string) error {
	if len(args) != 1 {
		return usage("messages takes one contact", messagesSynopsis)
	}
	a, err := openProfile(g)
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := findContact(a, args[0])
	if err != nil {
		return err
	}
	msgs, err := a.Messages(c.ID)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if g.json {
			if err := printJSON(g.stdout, toMessageJSON(m, c.Name())); err != nil {
				return err
			}
			continue
		}
		printMessage(g.stdout, m, c.Name())
	}
	return nil
}

// printMessage prints one message as a line of text.
func printMessage(w io.Writer, m agent.Message, name string) {
	t := m.Sent.Local().Format(time.DateTime)
	if m.Outgoing {
		fmt.Fprintf(w, "%s  to %s: %s [%s]\n", t, oneLine(name), oneLine(m.Text), m.Status)
		return
	}
	fmt.Fprintf(w, "%s  %s: %s\n", t, oneLine(name), oneLine(m.Text))
}

func runVerify(_ context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	confirm := fs.Bool("confirm", false, "mark the contact verified (you compared the safety number)")
	reject := fs.Bool("reject", false, "mark the contact unverified")
	if err := parseFlags(g, fs, reorder(args), verifySynopsis); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return usage("verify: "+err.Error(), verifySynopsis)
	}
	if fs.NArg() != 1 {
		return usage("verify takes one contact", verifySynopsis)
	}
	if *confirm && *reject {
		return usage("verify: --confirm and --reject exclude each other", verifySynopsis)
	}
	a, err := openProfile(g)
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := findContact(a, fs.Arg(0))
	if err != nil {
		return err
	}
	sn, err := a.SafetyNumber(c.ID)
	if err != nil {
		return hinted(fmt.Errorf("verify: %w", err), "the connection with %s may not be complete yet; run 'parley receive' and try again", oneLine(c.Name()))
	}
	if *confirm || *reject {
		if err := a.Verify(c.ID, *confirm); err != nil {
			return err
		}
		c.Verified, c.IdentityChanged = *confirm, false
	}
	if g.json {
		return printJSON(g.stdout, map[string]any{"contact": toContactJSON(c), "safetyNumber": sn.Digits()})
	}
	fmt.Fprintf(g.stdout, "safety number with %s:\n%s\n", oneLine(c.Name()), sn)
	if !*confirm && !*reject && isTerminal(g.stdin) && isTerminal(g.stderr) {
		// On a terminal, ask: the user is looking at the number now.
		if c.IdentityChanged {
			fmt.Fprintf(g.stderr, "parley: warning: %s's identity key CHANGED since you first connected; sending is blocked\n", oneLine(c.Name()))
		}
		fmt.Fprintf(g.stderr, "compare it with %s's, in person or on a call you trust. Do they match? [y/N] ", oneLine(c.Name()))
		answer, _ := bufio.NewReader(g.stdin).ReadString('\n')
		if ans := strings.ToLower(strings.TrimSpace(answer)); ans == "y" || ans == "yes" {
			if err := a.Verify(c.ID, true); err != nil {
				return hinted(fmt.Errorf("verify: %w", err), "nothing was changed; try again")
			}
			fmt.Fprintf(g.stdout, "%s is now verified\n", oneLine(c.Name()))
			return nil
		}
		fmt.Fprintf(g.stdout, "%s stays %s\n", oneLine(c.Name()), contactState(c))
		return nil
	}
	switch {
	case *confirm:
		fmt.Fprintf(g.stdout, "%s is now verified\n", oneLine(c.Name()))
	case *reject:
		fmt.Fprintf(g.stdout, "%s is now unverified\n", oneLine(c.Name()))
	case c.IdentityChanged:
		fmt.Fprintf(g.stderr, "parley: warning: %s's identity key CHANGED since you first connected; sending is blocked\n", oneLine(c.Name()))
		fmt.Fprintf(g.stderr, "parley: hint: compare the number with %s in person or by a call you trust, then run 'parley verify --confirm %s'\n", oneLine(c.Name()), c.ID)
	default:
		fmt.Fprintf(g.stderr, "parley: hint: compare this number with %s's in person or by a call you trust; if they match, run 'parley verify --confirm %s'\n", oneLine(c.Name()), c.ID)
	}
	return nil
}

func runRelays(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return usage("relays needs a subcommand: add, remove or list", relaysSynopsis)
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "add", "remove":
		if len(rest) != 1 {
			return usage("relays "+sub+" takes one relay address", relaysSynopsis)
		}
		if sub == "add" {
			if strings.HasPrefix(strings.TrimSpace(rest[0]), agent.InvitePrefix) {
				return hinted(errors.New("relays add: that is an invitation link, not a relay address"), "accept it with 'parley accept LINK'; a relay address looks like parley://FINGERPRINT@host:port")
			}
			if err := checkRelayAddress(strings.TrimSpace(rest[0])); err != nil {
				return hinted(fmt.Errorf("relays add: %w", err), "a relay address looks like parley://FINGERPRINT@host:port, as 'parley relay' prints it; copy it whole")
			}
		}
	case "list":
		if len(rest) != 0 {
			return usage("relays list takes no arguments", relaysSynopsis)
		}
	default:
		return usage(fmt.Sprintf("unknown relays subcommand %q", sub), relaysSynopsis)
	}
	a, err := openProfile(g)
	if err != nil {
		return err
	}
	defer a.Close()
	switch sub {
	case "add":
		addr := strings.TrimSpace(rest[0])
		if err := a.AddRelay(addr); err != nil {
			return hinted(fmt.Errorf("relays add: %w", err), "a relay address looks like parley://FINGERPRINT@host:port, as 'parley relay' prints it")
		}
		// Say at once when the new relay does not answer (a wrong port,
		// a relay not started): the user is still looking at the address.
		up := waitRelayUp(a, addr, 3*time.Second)
		if g.json {
			return printJSON(g.stdout, map[string]any{"address": addr, "up": up})
		}
		fmt.Fprintf(g.stdout, "added %s\n", addr)
		if !up {
			warn(g, "%s does not answer now; it stays in your list", addr)
			fmt.Fprintln(g.stderr, "parley: hint: check that the relay runs and that the address is exactly the one it printed; 'parley relays remove ADDRESS' takes it out")
		}
		return nil
	case "remove":
		if !hasRelay(a, strings.TrimSpace(rest[0])) {
			return hinted(fmt.Errorf("relays remove: %s is not in your list", truncate(rest[0], 80)), "see your relays with 'parley relays list'")
		}
		if err := a.RemoveRelay(rest[0]); err != nil {
			return hinted(fmt.Errorf("relays remove: %w", err), "see your relays with 'parley relays list' and try again")
		}
		moved, failed := moveConnections(ctx, a)
		if g.json {
			return printJSON(g.stdout, map[string]any{"address": strings.TrimSpace(rest[0]), "removed": true, "moved": moved, "notMoved": failed})
		}
		fmt.Fprintf(g.stdout, "removed %s; moved %d connection(s) to your other relays\n", strings.TrimSpace(rest[0]), moved)
		if failed > 0 {
			warn(g, "%d connection(s) still receive on the removed relay", failed)
			fmt.Fprintln(g.stderr, "parley: hint: keep at least two reachable relays in your list ('parley relays add ADDRESS'); meanwhile those contacts still reach you through your other relays")
		}
		return nil
	}
	// list: give the connections a moment to come up, so "up" means
	// something.
	waitRelaysUp(a, 3*time.Second)
	rs, err := a.Relays()
	if err != nil {
		return err
	}
	for _, r := range rs {
		if g.json {
			if err := printJSON(g.stdout, map[string]any{"address": r.Address, "up": r.Up}); err != nil {
				return err
			}
			continue
		}
		state := "down"
		if r.Up {
			state = "up"
		}
		fmt.Fprintf(g.stdout, "%s  %s\n", r.Address, state)
	}
	if len(rs) < 2 && !g.json {
		fmt.Fprintln(g.stderr, "parley: hint: each connection uses two relays; add more with 'parley relays add ADDRESS'")
	}
	return nil
}

// moveConnections moves every connected contact's queues (the ones the
// contact sends to) onto the relays now in the list, by the agent's queue
// rotation, so that leaving a relay loses no contact. It returns how many
// connections moved and how many could not (fewer than two relays left,
// or a relay not answering).
func moveConnections(ctx context.Context, a *agent.Agent) (moved, failed int) {
	rs, err := a.Relays()
	if err != nil {
		return 0, 0
	}
	addrs := make([]string, len(rs))
	for i, r := range rs {
		addrs[i] = r.Address
	}
	cs, err := a.Contacts()
	if err != nil {
		return 0, 0
	}
	for _, c := range cs {
		if !c.Connected {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.RotateQueues(cctx, c.ID, addrs)
		cancel()
		if err != nil {
			failed++
			continue
		}
		moved++
	}
	if moved > 0 {
		// The rotation messages are in the outbox: hand them to a relay
		// before this process exits, or the contacts learn of the move
		// only at the next run.
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := a.Flush(fctx); err != nil {
			return 0, moved + failed
		}
	}
	return moved, failed
}

func hasRelay(a *agent.Agent, addr string) bool {
	rs, err := a.Relays()
	if err != nil {
		return false
	}
	for _, r := range rs {
		if r.Address == addr {
			return true
		}
	}
	return false
}

// checkRelayAddress checks the form parley://FINGERPRINT@host:port before
// the address is stored (the agent only checks the outline), with the
// relay client's own parser, which accepts one spelling per address.
func checkRelayAddress(addr string) error {
	rest, ok := strings.CutPrefix(addr, "parley://")
	if !ok || strings.HasPrefix(addr, agent.InvitePrefix) {
		return fmt.Errorf("%q is not a relay address", truncate(addr, 80))
	}
	_, hostport, ok := strings.Cut(rest, "@")
	if !ok {
		return fmt.Errorf("%q has no fingerprint before '@'", truncate(addr, 80))
	}
	if host, port, err := net.SplitHostPort(hostport); err != nil || host == "" || port == "" {
		return fmt.Errorf("%q does not end with host:port", truncate(addr, 80))
	}
	if err := client.CheckAddress(addr); err != nil {
		return fmt.Errorf("the fingerprint in %q is not 32 bytes of base64url", truncate(addr, 80))
	}
	return nil
}

// waitRelayUp waits until the relay addr is up, or d passes.
func waitRelayUp(a *agent.Agent, addr string, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		rs, err := a.Relays()
		if err != nil {
			return false
		}
		for _, r := range rs {
			if r.Address == addr && r.Up {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// waitRelaysUp waits until every relay of the list is up, or d passes.
func waitRelaysUp(a *agent.Agent, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		rs, err := a.Relays()
		if err != nil {
			return
		}
		all := true
		for _, r := range rs {
			all = all && r.Up
		}
		if all {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

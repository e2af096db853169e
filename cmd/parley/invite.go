package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"rsc.io/qr"

	"github.com/parley-messenger/parley/agent"
)

const (
	inviteSynopsis = "invite [--name ALIAS] [--qr=auto|always|never]"
	acceptSynopsis = "accept [--name ALIAS] LINK"
)

var (
	inviteCommand = command{"print a one-time invitation link (and a QR code on a terminal, when it fits)", runInvite}
	acceptCommand = command{"accept an invitation link", runAccept}
)

// runInvite creates a one-time invitation and prints its link.
func runInvite(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("invite", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	alias := fs.String("name", "", "local `ALIAS` for the contact who accepts")
	qrMode := fs.String("qr", "auto", "print a QR code: auto (on a terminal), always or never")
	if err := parseFlags(g, fs, args, inviteSynopsis); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return usage("invite: "+err.Error(), inviteSynopsis)
	}
	if fs.NArg() != 0 {
		return usage("invite takes no arguments", inviteSynopsis)
	}
	if *qrMode != "auto" && *qrMode != "always" && *qrMode != "never" {
		return usage(fmt.Sprintf("invite: --qr=%s", *qrMode), inviteSynopsis)
	}
	a, err := openProfile(g)
	if err != nil {
		return err
	}
	defer a.Close()
	// A full invitation carries the ML-KEM-1024 prekey bundle (about
	// 4.6 KB), more than a QR code holds (2,953 bytes at level L). For a
	// QR code the agent makes a short invitation instead: the full one is
	// stored, encrypted under a key in the link, on one of the relays.
	wantQR := !g.json && (*qrMode == "always" || (*qrMode == "auto" && isTerminal(g.stdout)))
	invite := a.Invite
	if wantQR {
		invite = a.InviteShort
	}
	link, err := invite(ctx, *alias)
	if err != nil {
		return relayErr(fmt.Errorf("invite: %w", err))
	}
	if g.json {
		return printJSON(g.stdout, map[string]string{"link": link, "alias": *alias})
	}
	fmt.Fprintln(g.stdout, link)
	if wantQR {
		code, err := qr.Encode(link, qr.L)
		if err != nil {
			warn(g, "the link is too long for a QR code (%d bytes): %v", len(link), err)
			fmt.Fprintln(g.stderr, "parley: hint: send the link as text instead, over a channel you trust")
		} else {
			fmt.Fprint(g.stdout, renderQR(code))
		}
	}
	fmt.Fprintln(g.stderr, "parley: hint: give this link to one person over a channel you trust; it works once. When they have accepted, run 'parley receive'")
	return nil
}

// renderQR draws code with half-block characters, two modules per
// character cell, dark modules as spaces on a light quiet zone of four
// modules (ISO/IEC 18004 §6.3.8), so it scans on dark and light terminals.
func renderQR(code *qr.Code) string {
	const quiet = 4
	n := code.Size
	dark := func(x, y int) bool {
		return x >= 0 && y >= 0 && x < n && y < n && code.Black(x, y)
	}
	var b strings.Builder
	for y := -quiet; y < n+quiet; y += 2 {
		for x := -quiet; x < n+quiet; x++ {
			top, bottom := dark(x, y), dark(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune(' ')
			case top:
				b.WriteRune('▄')
			case bottom:
				b.WriteRune('▀')
			default:
				b.WriteRune('█')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// runAccept completes a connection from an invitation link.
func runAccept(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("accept", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	alias := fs.String("name", "", "local `ALIAS` for the new contact")
	if err := parseFlags(g, fs, reorder(args, "name"), acceptSynopsis); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return usage("accept: "+err.Error(), acceptSynopsis)
	}
	if fs.NArg() != 1 {
		return usage("accept takes one invitation link", acceptSynopsis)
	}
	// A link copied from a terminal may carry the line breaks where the
	// screen wrapped it; an invitation has no white space of its own.
	link := strings.Join(strings.Fields(fs.Arg(0)), "")
	if !strings.HasPrefix(link, agent.InvitePrefix) {
		return hinted(fmt.Errorf("accept: %q is not an invitation link", truncate(link, 40)), "an invitation starts with %s; ask the other person for the whole link printed by 'parley invite'", agent.InvitePrefix)
	}
	a, err := openProfile(g)
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := a.Accept(ctx, link, *alias)
	if err != nil {
		return acceptErr(err)
	}
	// The initial message must reach a relay before we exit.
	if !flushOutbox(ctx, a, flushWait) {
		warn(g, "the answer to the invitation is still in the outbox: no relay of the invitation took it yet")
		fmt.Fprintln(g.stderr, "parley: hint: run 'parley receive' later to retry")
	}
	if g.json {
		return printJSON(g.stdout, toContactJSON(c))
	}
	fmt.Fprintf(g.stdout, "accepted: contact %s (%s)\n", oneLine(c.Name()), shortID(c.ID))
	fmt.Fprintln(g.stderr, "parley: hint: the connection completes when they run 'parley receive' and you then run 'parley receive'")
	return nil
}

// acceptErr explains an error of agent.Accept (the command and the
// daemon's "accept" method).
func acceptErr(err error) error {
	switch {
	case errors.Is(err, agent.ErrBadInvitation):
		return hinted(errors.New("accept: the invitation link is damaged"), "copy the whole link again, or ask for a new one")
	case errors.Is(err, agent.ErrInvitationExpired):
		return hinted(errors.New("accept: the invitation has expired"), "ask the other person for a new one with 'parley invite'")
	case errors.Is(err, agent.ErrInvitationUsed):
		return hinted(errors.New("accept: this invitation was already accepted"), "invitations work once; ask for a new one with 'parley invite'")
	}
	return relayErr(fmt.Errorf("accept: %w", err))
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	s = oneLine(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// reorder moves flags (with their values) named in withValue and any
// -x/--x flags to the front of args, so that "accept LINK --name bob"
// parses as well as "accept --name bob LINK". A lone "--" stops it.
func reorder(args []string, withValue ...string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && i+1 < len(args) {
				for _, w := range withValue {
					if name == w {
						flags = append(flags, args[i+1])
						i++
						break
					}
				}
			}
			continue
		}
		rest = append(rest, a)
	}
	return append(append(flags, "--"), rest...)
}

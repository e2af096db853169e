package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parley-messenger/parley/agent"
)

const sendSynopsis = "send [--wait DURATION] CONTACT TEXT"

// flushWait is how long a command waits for a relay to take what it put in
// the outbox before it exits (the outbox keeps it either way).
const flushWait = 10 * time.Second

var sendCommand = command{"send a text message (it waits in the outbox if no relay is reachable)", runSend}

func runSend(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	wait := fs.Duration("wait", flushWait, "wait up to `DURATION` for a relay to take the message")
	if err := parseFlags(g, fs, args, sendSynopsis); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return usage("send: "+err.Error(), sendSynopsis)
	}
	if fs.NArg() < 2 {
		return usage("send takes a contact and a text", sendSynopsis)
	}
	text := strings.Join(fs.Args()[1:], " ")
	if strings.TrimSpace(text) == "" {
		return usage("send: the text is empty", sendSynopsis)
	}
	if len(text) > agent.MaxTextSize {
		return hinted(fmt.Errorf("send: the text is %d bytes, longer than %d", len(text), agent.MaxTextSize), "split it into several messages")
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
	// The agent takes a message for a contact whose side of the
	// connection is not complete yet, but the contact's agent cannot read
	// it from the invitation queue; refuse it here.
	if !c.Connected {
		err = agent.ErrNotConnected
	}
	var m agent.Message
	if err == nil {
		m, err = a.Send(ctx, c.ID, text)
	}
	switch {
	case errors.Is(err, agent.ErrIdentityChanged):
		return hinted(fmt.Errorf("send: %s's identity key changed; nothing was sent", oneLine(c.Name())), "compare safety numbers with 'parley verify %s', then confirm with 'parley verify --confirm %s'", c.ID, c.ID)
	case errors.Is(err, agent.ErrNotConnected):
		return hinted(fmt.Errorf("send: the connection with %s is not complete yet; nothing was sent", oneLine(c.Name())), "wait for them to run 'parley receive', then run 'parley receive' yourself and send again")
	case err != nil:
		return hinted(fmt.Errorf("send: %w", err), "nothing was sent; try again, and if it fails the same way, report it with this message")
	}
	if flushOutbox(ctx, a, *wait) {
		m.Status = agent.StatusSent
	} else {
		warn(g, "no relay is reachable now; the message waits in the outbox")
		fmt.Fprintln(g.stderr, "parley: hint: it is sent the next time parley runs with a relay up ('parley receive', 'parley daemon' or 'parley chat')")
	}
	if g.json {
		return printJSON(g.stdout, toMessageJSON(m, c.Name()))
	}
	fmt.Fprintf(g.stdout, "%s %s\n", m.ID, m.Status)
	return nil
}

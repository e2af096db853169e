package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/parley-messenger/parley/agent"
)

const receiveSynopsis = "receive [--json] [--timeout DURATION]"

// connectWait bounds how long receive waits for its relays to connect
// before its --timeout starts to run.
const connectWait = 5 * time.Second

var receiveCommand = command{"receive messages, receipts and new contacts, print them and exit", runReceive}

// runReceive works as signal-cli's receive: it connects, processes what
// the relays hold (pending connection handshakes included), waits until
// nothing new has come for --timeout, prints what arrived and exits.
//
// A message is shown once: receive prints the unread messages of the
// profile (those that arrived since the last receive, even if a previous
// run was killed before it could print them), then marks them read —
// which sends read receipts when they are on.
func runReceive(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("receive", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&g.json, "json", g.json, "print JSON (also accepted before the command name)")
	timeout := fs.Duration("timeout", 5*time.Second, "exit after `DURATION` with nothing new (negative: wait until interrupted)")
	if err := parseFlags(g, fs, args, receiveSynopsis); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return usage("receive: "+err.Error(), receiveSynopsis)
	}
	if fs.NArg() != 0 {
		return usage("receive takes no arguments", receiveSynopsis)
	}
	start := time.Now()
	a, err := openProfile(g)
	if err != nil {
		return err
	}
	defer a.Close()
	r := &receiver{g: g, a: a, name: contactNamer(a), printed: map[agent.MessageID]bool{}, read: map[agent.ContactID]bool{}}

	// What arrived before and was never shown.
	unread, err := unreadMessages(a, func(m agent.Message) bool { return m.Status == agent.StatusReceived })
	if err != nil {
		return err
	}
	for _, m := range unread {
		r.message(m)
	}

	// The wait for news starts once every relay has been tried (connected
	// and subscribed, or its first attempt failed), or after connectWait,
	// so that a slow connection does not eat the timeout. Events queue in
	// the agent meanwhile.
	rctx, rcancel := context.WithTimeout(ctx, connectWait)
	a.Ready(rctx)
	rcancel()
	var idle <-chan time.Time
	var timer *time.Timer
	if *timeout >= 0 {
		timer = time.NewTimer(*timeout)
		defer timer.Stop()
		idle = timer.C
	}
	events := a.Events()
loop:
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				break loop
			}
			if r.event(ev) && timer != nil {
				timer.Reset(*timeout)
			}
		case <-idle:
			break loop
		case <-ctx.Done():
			break loop
		}
	}

	// Mark read what was shown; anything the marking caught that had not
	// been shown yet is shown now, so nothing is marked read unseen.
	for id := range r.read {
		if err := a.MarkRead(id); err != nil {
			return hinted(fmt.Errorf("receive: marking read: %w", err), "the messages above were received and stay in 'parley messages CONTACT'; run receive again to retry the marking")
		}
	}
	late, err := unreadMessages(a, func(m agent.Message) bool {
		return m.Status == agent.StatusRead && !m.Received.Before(start) && !r.printed[m.ID]
	})
	if err != nil {
		return err
	}
	for _, m := range late {
		r.message(m)
	}
	// Receipts and handshake answers must reach a relay before we exit.
	if !flushOutbox(context.WithoutCancel(ctx), a, flushWait) {
		warn(g, "receipts or connection answers are still in the outbox: no relay took them")
		fmt.Fprintln(g.stderr, "parley: hint: they are sent the next time parley runs with a relay up")
	}
	return nil
}

// unreadMessages lists the incoming messages that keep returns true for,
// across contacts, in conversation order.
func unreadMessages(a *agent.Agent, keep func(agent.Message) bool) ([]agent.Message, error) {
	cs, err := a.Contacts()
	if err != nil {
		return nil, err
	}
	var out []agent.Message
	for _, c := range cs {
		ms, err := a.Messages(c.ID)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if !m.Outgoing && keep(m) {
				out = append(out, m)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Order < out[j].Order })
	return out, nil
}

type receiver struct {
	g       *globals
	a       *agent.Agent
	name    func(agent.ContactID) string
	printed map[agent.MessageID]bool
	read    map[agent.ContactID]bool
}

// message prints an incoming message once.
func (r *receiver) message(m agent.Message) {
	if r.printed[m.ID] {
		return
	}
	r.printed[m.ID] = true
	r.read[m.Contact] = true
	if r.g.json {
		printJSON(r.g.stdout, toEventJSON(agent.Event{Type: agent.EventMessage, Message: &m}, r.name))
		return
	}
	printMessage(r.g.stdout, m, r.name(m.Contact))
}

// event prints ev and reports whether it is news that restarts the idle
// timer (relay status changes are not).
func (r *receiver) event(ev agent.Event) bool {
	switch ev.Type {
	case agent.EventMessage:
		if ev.Message != nil && !ev.Message.Outgoing {
			r.message(*ev.Message)
		}
		return true
	case agent.EventRelayStatus, agent.EventError:
		if r.g.json {
			printJSON(r.g.stdout, toEventJSON(ev, r.name))
		} else if ev.Type == agent.EventError && ev.Err != nil {
			warn(r.g, "%v", ev.Err)
		}
		return false
	}
	if r.g.json {
		printJSON(r.g.stdout, toEventJSON(ev, r.name))
		return true
	}
	switch ev.Type {
	case agent.EventStatus:
		if m := ev.Message; m != nil {
			fmt.Fprintf(r.g.stdout, "message %s to %s: %s\n", m.ID, oneLine(r.name(m.Contact)), m.Status)
		}
	case agent.EventContactAdded:
		if c := ev.Contact; c != nil {
			fmt.Fprintf(r.g.stdout, "new contact %s (%s)\n", oneLine(c.Name()), shortID(c.ID))
		}
	case agent.EventContactUpdated:
		if c := ev.Contact; c != nil {
			fmt.Fprintf(r.g.stdout, "contact %s: %s\n", oneLine(c.Name()), contactState(*c))
		}
	case agent.EventVerification:
		if c := ev.Contact; c != nil {
			fmt.Fprintf(r.g.stdout, "contact %s: %s\n", oneLine(c.Name()), contactState(*c))
			if c.IdentityChanged {
				warn(r.g, "%s's identity key CHANGED; sending to them is blocked", oneLine(c.Name()))
				fmt.Fprintf(r.g.stderr, "parley: hint: compare safety numbers with 'parley verify %s' before you trust it\n", c.ID)
			}
		}
	case agent.EventTyping:
		if c := ev.Contact; c != nil && ev.Typing {
			fmt.Fprintf(r.g.stdout, "%s is typing\n", oneLine(c.Name()))
		}
	}
	return true
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parley-messenger/parley/agent"
	"github.com/parley-messenger/parley/cmd/parley/internal/tui"
	"github.com/parley-messenger/parley/relay"
	"github.com/parley-messenger/parley/relay/store/boltstore"
)

const demoSynopsis = "demo [--dir DIR] [--ports P1,P2] [--no-ui]"

var demoCommand = command{"try Parley on this machine: two local relays, your profile and an echo contact, in the chat", runDemo}

// runDemo is the newcomer's first minute: it runs two relays in this
// process on loopback, makes (once) a profile for the user and one for an
// echo bot, connects them by invitation, and opens the chat. Everything
// lives under DIR and is reused by the next run; the relay addresses stay
// the same, so a second profile (parley --home …) can join.
func runDemo(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "", "keep the demo's relays and profiles in `DIR` (default: parley/demo under the user's config directory)")
	ports := fs.String("ports", "15223,15224", "the two relays' loopback `PORTS`")
	noUI := fs.Bool("no-ui", false, "do not open the chat: run the relays and the echo bot until interrupted")
	if err := parseFlags(g, fs, args, demoSynopsis); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return usage("demo: "+err.Error(), demoSynopsis)
	}
	if fs.NArg() != 0 {
		return usage("demo takes no arguments", demoSynopsis)
	}
	if *dir == "" {
		cfg, err := os.UserConfigDir()
		if err != nil {
			return hinted(fmt.Errorf("demo: finding the config directory: %w", err), "give a directory with --dir DIR")
		}
		*dir = filepath.Join(cfg, "parley", "demo")
	}
	p := strings.Split(*ports, ",")
	if len(p) != 2 {
		return usage("demo: --ports takes two ports", demoSynopsis)
	}
	if !*noUI && (!isTerminal(g.stdin) || !isTerminal(g.stdout)) {
		return hinted(errors.New("demo: the chat needs a terminal"), "run it in a terminal, or pass --no-ui to run only the relays and the echo bot")
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var addrs []string
	for i, port := range p {
		addr, err := demoRelay(ctx, &wg, filepath.Join(*dir, fmt.Sprintf("relay%d", i+1)), net.JoinHostPort("127.0.0.1", strings.TrimSpace(port)))
		if err != nil {
			return err
		}
		addrs = append(addrs, addr)
	}

	youHome, echoHome := filepath.Join(*dir, "you"), filepath.Join(*dir, "echo")
	opts := &agent.Options{AllowEmptyPassphrase: true}
	fresh := false
	for _, pr := range []struct{ home, name string }{{youHome, "you"}, {echoHome, "Echo"}} {
		if _, err := os.Stat(filepath.Join(pr.home, agent.ProfileFile)); err == nil {
			continue
		}
		fresh = true
		if _, err := agent.Init(pr.home, nil, pr.name, opts); err != nil {
			return hinted(fmt.Errorf("demo: creating the %s profile: %w", pr.name, err), "check that you can write to %s, or pick another directory with --dir DIR", *dir)
		}
	}
	warn(g, "the demo's profiles have no passphrase; they are for trying Parley, not for real conversations")
	you, err := agent.Open(youHome, nil, opts)
	if err != nil {
		return hinted(fmt.Errorf("demo: %w", err), "is another demo running? Stop it, or use another --dir")
	}
	defer you.Close()
	echo, err := agent.Open(echoHome, nil, opts)
	if err != nil {
		return hinted(fmt.Errorf("demo: %w", err), "is another demo running? Stop it, or use another --dir")
	}
	defer echo.Close()
	if fresh {
		for _, addr := range addrs {
			if err := you.AddRelay(addr); err != nil {
				return err
			}
			if err := echo.AddRelay(addr); err != nil {
				return err
			}
		}
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		link, err := echo.Invite(sctx, "you")
		if err == nil {
			var c agent.Contact
			if c, err = you.Accept(sctx, link, "Echo"); err == nil {
				err = waitConnected(sctx, you, c.ID)
			}
		}
		scancel()
		if err != nil {
			return hinted(fmt.Errorf("demo: connecting you and the echo bot: %w", err), "remove %s and run the demo again", *dir)
		}
	}
	wg.Go(func() { echoBot(ctx, echo) })

	fmt.Fprintf(g.stderr, "parley: demo: relays %s and %s\n", addrs[0], addrs[1])
	fmt.Fprintf(g.stderr, "parley: hint: a second profile joins with: parley --home DIR init; parley --home DIR relays add %s; parley --home DIR relays add %s; then /invite in the chat and parley --home DIR accept LINK\n", addrs[0], addrs[1])
	if *noUI {
		<-ctx.Done()
		return nil
	}
	return tui.Run(ctx, you, tui.Options{Input: g.stdin, Output: g.stdout, Notice: "say something to Echo; /relays shows the addresses a second profile needs; /help"})
}

// demoRelay runs one relay in this process until ctx ends.
func demoRelay(ctx context.Context, wg *sync.WaitGroup, dir, listen string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	key, err := relay.LoadOrCreateKey(filepath.Join(dir, "relay.key"))
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", hinted(fmt.Errorf("demo: %w", err), "is another demo running? Stop it, or pick free ports with --ports P1,P2 (a second profile must then add the new addresses)")
	}
	st, err := boltstore.Open(filepath.Join(dir, "relay.db"), boltstore.Options{})
	if err != nil {
		ln.Close()
		return "", fmt.Errorf("demo: relay store: %w", err)
	}
	srv, err := relay.NewServer(relay.Config{Key: key, Store: st})
	if err != nil {
		ln.Close()
		st.Close()
		return "", err
	}
	wg.Go(func() {
		defer st.Close()
		srv.Serve(ctx, ln)
	})
	return srv.Address(ln.Addr().String()), nil
}

// echoBot answers every message the echo profile receives.
func echoBot(ctx context.Context, a *agent.Agent) {
	for {
		select {
		case ev, ok := <-a.Events():
			if !ok {
				return
			}
			if ev.Type != agent.EventMessage || ev.Message == nil || ev.Message.Outgoing {
				continue
			}
			a.MarkRead(ev.Message.Contact)
			a.Send(ctx, ev.Message.Contact, "echo: "+ev.Message.Text)
		case <-ctx.Done():
			return
		}
	}
}

// waitConnected waits until the contact's side of the connection is
// complete, so that the first message typed can be sent.
func waitConnected(ctx context.Context, a *agent.Agent, id agent.ContactID) error {
	for {
		c, err := a.Contact(id)
		if err != nil {
			return err
		}
		if c.Connected {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

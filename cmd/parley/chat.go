package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"github.com/parley-messenger/parley/cmd/parley/internal/tui"
)

const chatSynopsis = "chat"

var chatCommand = command{"open the terminal chat", runChat}

func runChat(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := parseFlags(g, fs, args, chatSynopsis); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return usage("chat: "+err.Error(), chatSynopsis)
	}
	if fs.NArg() != 0 {
		return usage("chat takes no arguments", chatSynopsis)
	}
	if !isTerminal(g.stdin) || !isTerminal(g.stdout) {
		return hinted(errors.New("chat needs a terminal"), "in scripts use 'parley send' and 'parley receive', or 'parley daemon' for JSON-RPC")
	}
	a, err := openProfile(g)
	if err != nil {
		return err
	}
	defer a.Close()
	rs, err := a.Relays()
	if err != nil {
		return err
	}
	if len(rs) < 2 {
		return hinted(errors.New("chat: the profile has fewer than two relays"), "add two with 'parley relays add ADDRESS', or try everything on this machine with 'parley demo'")
	}
	return tui.Run(ctx, a, tui.Options{Input: g.stdin, Output: g.stdout, Notice: "type /help for commands"})
}

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-messenger/parley/agent"
)

const (
	settingsSynopsis  = "settings [read-receipts on|off | typing on|off | name DISPLAY-NAME]"
	disappearSynopsis = "disappear CONTACT DURATION|off"
)

// maxDisappear is the longest timer the agent accepts.
const maxDisappear = 365 * 24 * time.Hour

var (
	settingsCommand  = command{"show or change read receipts, typing indicators and your display name", runSettings}
	disappearCommand = command{"set a conversation's disappearing-message timer (both sides)", runDisappear}
)

// settingsJSON is the profile's settings in --json output.
type settingsJSON struct {
	DisplayName      string `json:"displayName"`
	ReadReceipts     bool   `json:"readReceipts"`
	TypingIndicators bool   `json:"typingIndicators"`
}

// runSettings shows the settings, or changes one: read receipts (on by
// default), typing indicators (off by default) or the display name (sent,
// end-to-end encrypted, to every contact).
func runSettings(_ context.Context, g *globals, args []string) error {
	var change func(*agent.Settings)
	switch {
	case len(args) == 0:
	case len(args) == 2 && (args[0] == "read-receipts" || args[0] == "typing"):
		on, err := onOff(args[1])
		if err != nil {
			return usage(fmt.Sprintf("settings %s: %v", args[0], err), settingsSynopsis)
		}
		if args[0] == "read-receipts" {
			change = func(s *agent.Settings) { s.ReadReceipts = on }
		} else {
			change = func(s *agent.Settings) { s.TypingIndicators = on }
		}
	case len(args) >= 2 && args[0] == "name":
		name := strings.TrimSpace(strings.Join(args[1:], " "))
		if name == "" {
			return usage("settings name: the name is empty", settingsSynopsis)
		}
		change = func(s *agent.Settings) { s.DisplayName = name }
	case args[0] == "read-receipts" || args[0] == "typing" || args[0] == "name":
		return usage("settings "+args[0]+" takes one value", settingsSynopsis)
	default:
		return usage(fmt.Sprintf("unknown setting %q", args[0]), settingsSynopsis)
	}
	a, err := openProfile(g)
	if err != nil {
		return err
	}
	defer a.Close()
	if change != nil {
		if err := a.UpdateSettings(change); err != nil {
			return hinted(fmt.Errorf("settings: %w", err), "nothing was changed; check with 'parley settings' and try again")
		}
	}
	s, err := a.Settings()
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	if change != nil && args[0] == "name" && !flushOutbox(context.Background(), a, flushWait) {
		warn(g, "the new name is still in the outbox: no relay took it yet")
		fmt.Fprintln(g.stderr, "parley: hint: it is sent the next time parley runs with a relay up")
	}
	if g.json {
		return printJSON(g.stdout, settingsJSON{s.DisplayName, s.ReadReceipts, s.TypingIndicators})
	}
	fmt.Fprintf(g.stdout, "name           %s\n", oneLine(s.DisplayName))
	fmt.Fprintf(g.stdout, "read-receipts  %s\n", onOffString(s.ReadReceipts))
	fmt.Fprintf(g.stdout, "typing         %s\n", onOffString(s.TypingIndicators))
	return nil
}

func onOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "yes":
		return true, nil
	case "off", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q is neither on nor off", v)
}

func onOffString(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// runDisappear sets a conversation's disappearing-message timer on both
// sides (the agent tells the contact); "off" or 0 turns it off.
func runDisappear(ctx context.Context, g *globals, args []string) error {
	if len(args) != 2 {
		return usage("disappear takes a contact and a duration", disappearSynopsis)
	}
	var d time.Duration
	if v := args[1]; v != "off" && v != "0" {
		var err error
		d, err = time.ParseDuration(v)
		if err != nil || d < time.Second || d > maxDisappear {
			return usage(fmt.Sprintf("disappear: %q is not a duration from 1s to 8760h (one year)", v), disappearSynopsis+"  (for example 30m, 24h or 168h)")
		}
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
	if !c.Connected {
		return hinted(fmt.Errorf("disappear: the connection with %s is not complete yet", oneLine(c.Name())), "wait for them to run 'parley receive', then run 'parley receive' yourself and try again")
	}
	if err := a.SetDisappearing(c.ID, d); err != nil {
		if errors.Is(err, agent.ErrIdentityChanged) {
			return hinted(fmt.Errorf("disappear: %s's identity key changed; nothing was sent", oneLine(c.Name())), "compare safety numbers with 'parley verify %s', then confirm with 'parley verify --confirm %s'", c.ID, c.ID)
		}
		return hinted(fmt.Errorf("disappear: %w", err), "the timer was not changed; see it with 'parley contacts' and try again")
	}
	if !flushOutbox(ctx, a, flushWait) {
		warn(g, "the new timer is still in the outbox: no relay took it yet")
		fmt.Fprintln(g.stderr, "parley: hint: it is sent the next time parley runs with a relay up")
	}
	c.DisappearAfter = d
	if g.json {
		return printJSON(g.stdout, toContactJSON(c))
	}
	if d == 0 {
		fmt.Fprintf(g.stdout, "messages with %s no longer disappear\n", oneLine(c.Name()))
		return nil
	}
	fmt.Fprintf(g.stdout, "new messages with %s disappear %s after they are sent or received\n", oneLine(c.Name()), d)
	return nil
}

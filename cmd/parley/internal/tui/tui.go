// Package tui is Parley's terminal chat: a contact list, the conversation
// with delivery and read marks, an input line, notices of new messages,
// and screens for invitations and safety-number verification. It drives
// an agent through the small Agent interface and holds no state of its
// own beyond what is on screen.
package tui

import (
	"context"
	"io"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/parley-messenger/parley/agent"
	"github.com/parley-messenger/parley/identity"
)

// Agent is what the terminal UI needs of an agent (*agent.Agent has it).
type Agent interface {
	Events() <-chan agent.Event
	Contacts() ([]agent.Contact, error)
	Messages(agent.ContactID) ([]agent.Message, error)
	Send(context.Context, agent.ContactID, string) (agent.Message, error)
	MarkRead(agent.ContactID) error
	InviteShort(context.Context, string) (string, error)
	Accept(context.Context, string, string) (agent.Contact, error)
	SafetyNumber(agent.ContactID) (identity.SafetyNumber, error)
	Verify(agent.ContactID, bool) error
	SetAlias(agent.ContactID, string) error
	Relays() ([]agent.RelayInfo, error)
	Settings() (agent.Settings, error)
	UpdateSettings(func(*agent.Settings)) error
	SetDisappearing(agent.ContactID, time.Duration) error
	SetTyping(agent.ContactID, bool) error
}

var _ Agent = (*agent.Agent)(nil)

// Options set up Run.
type Options struct {
	Input  io.Reader // default: the terminal
	Output io.Writer // default: the terminal
	// Notice is shown on the status line at start.
	Notice string
}

// Run shows the chat until the user quits or ctx ends.
func Run(ctx context.Context, a Agent, opts Options) error {
	var po []tea.ProgramOption
	po = append(po, tea.WithContext(ctx))
	if opts.Input != nil {
		po = append(po, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		po = append(po, tea.WithOutput(opts.Output))
	}
	m := newModel(ctx, a)
	m.notice = opts.Notice
	_, err := tea.NewProgram(m, po...).Run()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/parley-messenger/parley/agent"
	"github.com/parley-messenger/parley/identity"
)

// fakeAgent records what the UI asks of it.
type fakeAgent struct {
	events   chan agent.Event
	contacts []agent.Contact
	msgs     map[agent.ContactID][]agent.Message
	sent     []string
	read     []agent.ContactID
	verified map[agent.ContactID]bool
	link     string
	accepted []string
	settings agent.Settings
	relays   []agent.RelayInfo
	mu       sync.Mutex // guards typing
	typing   []string
}

func newFake() *fakeAgent {
	return &fakeAgent{
		events: make(chan agent.Event),
		contacts: []agent.Contact{
			{ID: "c1", Alias: "bob", Connected: true},
			{ID: "c2", Alias: "carol", Connected: true},
		},
		msgs:     map[agent.ContactID][]agent.Message{},
		verified: map[agent.ContactID]bool{},
		link:     "parley://invite#x",
		settings: agent.Settings{ReadReceipts: true},
	}
}

func (f *fakeAgent) Events() <-chan agent.Event             { return f.events }
func (f *fakeAgent) Contacts() ([]agent.Contact, error)     { return f.contacts, nil }
func (f *fakeAgent) MarkRead(id agent.ContactID) error      { f.read = append(f.read, id); return nil }
func (f *fakeAgent) Relays() ([]agent.RelayInfo, error)     { return f.relays, nil }
func (f *fakeAgent) SetAlias(agent.ContactID, string) error { return nil }
func (f *fakeAgent) Messages(id agent.ContactID) ([]agent.Message, error) {
	return f.msgs[id], nil
}
func (f *fakeAgent) Send(_ context.Context, id agent.ContactID, text string) (agent.Message, error) {
	f.sent = append(f.sent, string(id)+":"+text)
	return agent.Message{}, nil
}
func (f *fakeAgent) InviteShort(context.Context, string) (string, error) {
	return f.link, nil
}
func (f *fakeAgent) Accept(_ context.Context, link, alias string) (agent.Contact, error) {
	f.accepted = append(f.accepted, link+" "+alias)
	return agent.Contact{}, errors.New("no")
}
func (f *fakeAgent) SafetyNumber(agent.ContactID) (identity.SafetyNumber, error) {
	return identity.SafetyNumber{}, nil
}
func (f *fakeAgent) Verify(id agent.ContactID, ok bool) error { f.verified[id] = ok; return nil }
func (f *fakeAgent) Settings() (agent.Settings, error)        { return f.settings, nil }
func (f *fakeAgent) UpdateSettings(fn func(*agent.Settings)) error {
	fn(&f.settings)
	return nil
}
func (f *fakeAgent) SetTyping(id agent.ContactID, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.typing = append(f.typing, fmt.Sprintf("%s:%v", id, on))
	return nil
}
func (f *fakeAgent) SetDisappearing(id agent.ContactID, d time.Duration) error {
	for i := range f.contacts {
		if f.contacts[i].ID == id {
			f.contacts[i].DisappearAfter = d
		}
	}
	return nil
}

func typeLine(m *model, s string) tea.Cmd {
	for _, r := range s {
		m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	_, cmd := m.Update(tea.KeyPressMsg{Code: tea.KeyEnter})
	return flatten(cmd)
}

// flatten returns a command that runs cmd, or every command of the batch
// it returns, and gives the first message that is not nil.
func flatten(cmd tea.Cmd) tea.Cmd {
	if cmd == nil {
		return nil
	}
	return func() tea.Msg {
		msg := cmd()
		b, ok := msg.(tea.BatchMsg)
		if !ok {
			return msg
		}
		var first tea.Msg
		for _, c := range b {
			if c == nil {
				continue
			}
			if r := flatten(c)(); r != nil && first == nil {
				first = r
			}
		}
		return first
	}
}

func TestSendToSelectedContact(t *testing.T) {
	f := newFake()
	m := newModel(context.Background(), f)
	m.Update(tea.KeyPressMsg{Code: tea.KeyDown})
	cmd := typeLine(m, "hi carol")
	if cmd == nil {
		t.Fatal("enter did not send")
	}
	cmd()
	if len(f.sent) != 1 || f.sent[0] != "c2:hi carol" {
		t.Fatalf("sent %q", f.sent)
	}
	if len(m.input) != 0 {
		t.Fatalf("input not cleared: %q", string(m.input))
	}
}

func TestNotConnectedRefused(t *testing.T) {
	f := newFake()
	f.contacts[0].Connected = false
	m := newModel(context.Background(), f)
	if cmd := typeLine(m, "too early"); cmd != nil {
		cmd()
	}
	if len(f.sent) != 0 || !m.alert {
		t.Fatalf("sent %q before the connection completed (notice %q)", f.sent, m.notice)
	}
}

func TestNewMessageNotice(t *testing.T) {
	f := newFake()
	m := newModel(context.Background(), f) // bob selected
	msg := agent.Message{ID: "m1", Contact: "c2", Text: "psst", Status: agent.StatusReceived, Sent: time.Now()}
	f.msgs["c2"] = []agent.Message{msg}
	m.Update(eventMsg{agent.Event{Type: agent.EventMessage, Message: &msg}})
	if m.unread["c2"] != 1 || !strings.Contains(m.notice, "new message from carol") {
		t.Fatalf("unread %v, notice %q", m.unread, m.notice)
	}
	if !strings.Contains(m.render(), "carol (1)") {
		t.Fatal("the contact list does not show the unread count")
	}
	// Opening the conversation marks it read.
	m.Update(tea.KeyPressMsg{Code: tea.KeyDown})
	if m.unread["c2"] != 0 || len(f.read) != 1 || f.read[0] != "c2" {
		t.Fatalf("unread %v, marked read %v", m.unread, f.read)
	}
	if !strings.Contains(m.render(), "carol: psst") {
		t.Fatal("the conversation does not show the message")
	}
}

func TestDeliveryMarks(t *testing.T) {
	f := newFake()
	now := time.Now()
	f.msgs["c1"] = []agent.Message{
		{ID: "a", Contact: "c1", Outgoing: true, Text: "one", Status: agent.StatusPending, Sent: now},
		{ID: "b", Contact: "c1", Outgoing: true, Text: "two", Status: agent.StatusDelivered, Sent: now},
		{ID: "c", Contact: "c1", Outgoing: true, Text: "three", Status: agent.StatusRead, Sent: now},
	}
	m := newModel(context.Background(), f)
	out := m.render()
	for _, want := range []string{"you: one  …", "you: two  ✓✓", "you: three  ✓✓ read"} {
		if !strings.Contains(out, want) {
			t.Errorf("render lacks %q", want)
		}
	}
}

// TestEscapeSequencesCleaned: a contact's text or name cannot drive the
// terminal.
func TestEscapeSequencesCleaned(t *testing.T) {
	f := newFake()
	f.contacts[0].Alias = "bob\x1b]0;pwned\x07"
	f.msgs["c1"] = []agent.Message{{ID: "a", Contact: "c1", Text: "\x1b[2Jgone", Status: agent.StatusRead, Sent: time.Now()}}
	m := newModel(context.Background(), f)
	if out := m.render(); strings.ContainsAny(out, "\x1b\x07") {
		t.Fatalf("render passes control characters: %q", out)
	}
}

func TestIdentityChangeAlert(t *testing.T) {
	f := newFake()
	m := newModel(context.Background(), f)
	c := f.contacts[0]
	c.IdentityChanged = true
	f.contacts[0] = c
	m.Update(eventMsg{agent.Event{Type: agent.EventVerification, Contact: &c}})
	if !m.alert || !strings.Contains(m.notice, "identity key CHANGED") {
		t.Fatalf("notice %q", m.notice)
	}
	if !strings.Contains(m.render(), "IDENTITY KEY CHANGED") {
		t.Fatal("the title does not flag the change")
	}
}

func TestVerifyScreen(t *testing.T) {
	f := newFake()
	m := newModel(context.Background(), f)
	typeLine(m, "/verify")
	if m.screen != screenVerify || !strings.Contains(m.render(), "Safety number with bob") {
		t.Fatalf("screen %v", m.screen)
	}
	m.Update(tea.KeyPressMsg{Code: 'y', Text: "y"})
	if !f.verified["c1"] || m.screen != screenChat {
		t.Fatalf("verified %v, screen %v", f.verified, m.screen)
	}
}

func TestInviteScreen(t *testing.T) {
	f := newFake()
	m := newModel(context.Background(), f)
	cmd := typeLine(m, "/invite dave")
	m.Update(cmd())
	if m.screen != screenInvite || !strings.Contains(m.render(), "parley://invite#x") {
		t.Fatalf("screen %v", m.screen)
	}
	m.Update(tea.KeyPressMsg{Code: tea.KeyEscape})
	if m.screen != screenChat {
		t.Fatal("esc did not go back")
	}
}

// TestInviteScreenWholeLink: the invitation is shown whole, on full-width
// lines with nothing else on them, so that selecting those lines copies
// the link and nothing but the link.
func TestInviteScreenWholeLink(t *testing.T) {
	f := newFake()
	f.link = "parley://invite#" + strings.Repeat("AbCd-_09", 60)
	m := newModel(context.Background(), f)
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	m.Update(typeLine(m, "/invite dave")())
	var joined strings.Builder
	for line := range strings.Lines(m.render()) {
		line = strings.TrimRight(line, " \n")
		if strings.ContainsAny(line, "│…") && strings.Contains(line, "AbCd") {
			t.Fatalf("a line of the link has other text or is cut: %q", line)
		}
		if strings.HasPrefix(line, "parley://") || (joined.Len() > 0 && strings.Contains(line, "AbCd")) {
			joined.WriteString(line)
		}
	}
	if joined.String() != f.link {
		t.Fatalf("the screen shows\n%s\nnot the link\n%s", joined.String(), f.link)
	}
}

// TestPastedLinkJoined: a link pasted with the line breaks of the screen
// it was copied from arrives whole in /accept.
func TestPastedLinkJoined(t *testing.T) {
	f := newFake()
	m := newModel(context.Background(), f)
	for _, r := range "/accept " {
		m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	m.Update(tea.PasteMsg{Content: "parley://invite#abc\ndef\r\nghi\n"})
	for _, r := range " dave" {
		m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	_, cmd := m.Update(tea.KeyPressMsg{Code: tea.KeyEnter})
	if cmd == nil {
		t.Fatal("/accept did nothing")
	}
	cmd()
	if len(f.accepted) != 1 || f.accepted[0] != "parley://invite#abcdefghi dave" {
		t.Fatalf("accepted %q", f.accepted)
	}
	// Other text keeps its words apart.
	m.Update(tea.PasteMsg{Content: "two\nlines"})
	if string(m.input) != "two lines" {
		t.Fatalf("input %q", string(m.input))
	}
}

// TestSettingsCommands: read receipts and typing indicators are switched
// from the chat, and a disappearing timer is set for the selected contact
// and shown in the title.
func TestSettingsCommands(t *testing.T) {
	f := newFake()
	m := newModel(context.Background(), f)
	typeLine(m, "/receipts off")
	if f.settings.ReadReceipts || m.notice != "read receipts off" {
		t.Fatalf("settings %+v, notice %q", f.settings, m.notice)
	}
	typeLine(m, "/typing on")
	if !f.settings.TypingIndicators {
		t.Fatalf("settings %+v", f.settings)
	}
	typeLine(m, "/receipts maybe")
	if !m.alert || f.settings.ReadReceipts {
		t.Fatalf("a bad value was taken: %+v, notice %q", f.settings, m.notice)
	}
	typeLine(m, "/disappear 1h")
	if f.contacts[0].DisappearAfter != time.Hour || !strings.Contains(m.render(), "(unverified — /verify, timer 1h)") {
		t.Fatalf("timer %v, screen:\n%s", f.contacts[0].DisappearAfter, m.render())
	}
	typeLine(m, "/disappear 10ms")
	if !m.alert || f.contacts[0].DisappearAfter != time.Hour {
		t.Fatalf("a sub-second timer (which would turn it off) was taken: %v", f.contacts[0].DisappearAfter)
	}
	typeLine(m, "/disappear off")
	if f.contacts[0].DisappearAfter != 0 {
		t.Fatalf("timer %v", f.contacts[0].DisappearAfter)
	}
}

// TestTypingNotice: the contact's typing shows on the status line and
// goes when they stop.
func TestTypingNotice(t *testing.T) {
	f := newFake()
	m := newModel(context.Background(), f)
	c := f.contacts[0]
	m.Update(eventMsg{agent.Event{Type: agent.EventTyping, Contact: &c, Typing: true}})
	if m.notice != "bob is typing…" {
		t.Fatalf("notice %q", m.notice)
	}
	m.Update(eventMsg{agent.Event{Type: agent.EventTyping, Contact: &c, Typing: false}})
	if m.notice != "" {
		t.Fatalf("notice %q", m.notice)
	}
}

// TestRelaysScreenWholeAddresses: on a narrow terminal the relay
// addresses a second profile needs are still shown whole.
func TestRelaysScreenWholeAddresses(t *testing.T) {
	f := newFake()
	addr := "parley://sD_t5gby9m5gRBA2qdJv4n4dO5PNN_D2d3aOdT1Y2D8@127.0.0.1:15223"
	f.relays = []agent.RelayInfo{{Address: addr, Up: true}}
	m := newModel(context.Background(), f)
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	typeLine(m, "/relays")
	out := m.render()
	if !strings.Contains(out, "\n"+addr+" ") {
		t.Fatalf("the address is not shown whole on a line of its own:\n%s", out)
	}
}

// run executes cmd and every command of a batch it returns, as the
// program would, and feeds resulting messages back to the model.
func run(m *model, cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case tea.BatchMsg:
		for _, c := range msg {
			run(m, c)
		}
	case nil:
	default:
		m.Update(msg)
	}
}

// TestTypingSent: typing a message tells the selected contact (the agent
// drops it unless typing indicators are on); sending, erasing, a /command
// or moving to another contact stops it.
func TestTypingSent(t *testing.T) {
	f := newFake()
	m := newModel(context.Background(), f)
	press := func(k tea.KeyPressMsg) {
		_, cmd := m.Update(k)
		run(m, cmd)
	}
	press(tea.KeyPressMsg{Code: 'h', Text: "h"})
	press(tea.KeyPressMsg{Code: 'i', Text: "i"})
	press(tea.KeyPressMsg{Code: tea.KeyDown}) // to carol, still typing
	press(tea.KeyPressMsg{Code: tea.KeyBackspace})
	press(tea.KeyPressMsg{Code: tea.KeyBackspace}) // erased
	press(tea.KeyPressMsg{Code: '/', Text: "/"})   // a command is not a message
	press(tea.KeyPressMsg{Code: tea.KeyBackspace})
	press(tea.KeyPressMsg{Code: 'x', Text: "x"})
	press(tea.KeyPressMsg{Code: tea.KeyEnter}) // sent
	want := []string{"c1:true", "c1:false", "c2:true", "c2:false", "c2:true", "c2:false"}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(f.typing, want) {
		t.Fatalf("typing %q, want %q", f.typing, want)
	}
}

package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/parley-messenger/parley/agent"
)

// screen is what the main area shows.
type screen int

const (
	screenChat screen = iota
	screenInvite
	screenVerify
	screenHelp
	screenRelays
)

// model is the bubbletea model. Every agent call that may touch the
// network runs in a tea.Cmd; the rest are local store reads.
type model struct {
	ctx context.Context
	a   Agent

	width, height int
	screen        screen

	contacts []agent.Contact
	sel      int
	conv     []agent.Message
	unread   map[agent.ContactID]int
	input    []rune
	notice   string
	alert    bool // the notice is a warning

	typingTo agent.ContactID // the contact last told we are typing

	link   string // screenInvite
	number string // screenVerify
	relays []agent.RelayInfo
}

func newModel(ctx context.Context, a Agent) *model {
	m := &model{ctx: ctx, a: a, unread: map[agent.ContactID]int{}, width: 80, height: 24}
	m.reloadContacts()
	m.reloadConv()
	return m
}

// Messages the model receives besides the terminal's.
type (
	eventMsg   struct{ ev agent.Event }
	eventsDone struct{}
	resultMsg  struct {
		notice string
		err    error
		link   string
	}
)

func (m *model) waitEvent() tea.Cmd {
	ch := m.a.Events()
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return eventsDone{}
		}
		return eventMsg{ev}
	}
}

func (m *model) Init() tea.Cmd { return m.waitEvent() }

func (m *model) selected() (agent.Contact, bool) {
	if m.sel < 0 || m.sel >= len(m.contacts) {
		return agent.Contact{}, false
	}
	return m.contacts[m.sel], true
}

func (m *model) reloadContacts() {
	cur, had := m.selected()
	cs, err := m.a.Contacts()
	if err != nil {
		m.warn(err)
		return
	}
	m.contacts = cs
	if had {
		if i := slices.IndexFunc(cs, func(c agent.Contact) bool { return c.ID == cur.ID }); i >= 0 {
			m.sel = i
		}
	}
	if m.sel >= len(cs) {
		m.sel = max(len(cs)-1, 0)
	}
}

// reloadConv loads the selected conversation and marks it read: what is
// on screen has been seen.
func (m *model) reloadConv() {
	c, ok := m.selected()
	if !ok {
		m.conv = nil
		return
	}
	ms, err := m.a.Messages(c.ID)
	if err != nil {
		m.warn(err)
		return
	}
	m.conv = ms
	if m.unread[c.ID] > 0 || slices.ContainsFunc(ms, func(x agent.Message) bool { return !x.Outgoing && x.Status == agent.StatusReceived }) {
		delete(m.unread, c.ID)
		if err := m.a.MarkRead(c.ID); err != nil {
			m.warn(err)
		}
	}
}

func (m *model) warn(err error) {
	m.notice, m.alert = err.Error(), true
}

func (m *model) say(format string, args ...any) {
	m.notice, m.alert = fmt.Sprintf(format, args...), false
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case eventMsg:
		m.event(msg.ev)
		return m, m.waitEvent()
	case eventsDone:
		return m, tea.Quit
	case resultMsg:
		if msg.err != nil {
			m.warn(msg.err)
		} else if msg.notice != "" {
			m.say("%s", msg.notice)
		}
		if msg.link != "" {
			m.link, m.screen = msg.link, screenInvite
		}
		m.reloadContacts()
		m.reloadConv()
	case tea.PasteMsg:
		m.input = append(m.input, []rune(pasted(msg.Content))...)
		return m, m.syncTyping()
	case tea.KeyPressMsg:
		cmd := m.key(msg)
		if t := m.syncTyping(); t != nil {
			cmd = tea.Batch(cmd, t)
		}
		return m, cmd
	}
	return m, nil
}

func (m *model) event(ev agent.Event) {
	switch ev.Type {
	case agent.EventMessage:
		if ev.Message == nil {
			return
		}
		if c, ok := m.selected(); ok && c.ID == ev.Message.Contact && m.screen == screenChat {
			m.reloadConv()
			return
		}
		m.unread[ev.Message.Contact]++
		m.say("new message from %s", m.name(ev.Message.Contact))
	case agent.EventStatus:
		if c, ok := m.selected(); ok && ev.Message != nil && c.ID == ev.Message.Contact {
			m.reloadConv()
		}
	case agent.EventContactAdded:
		m.reloadContacts()
		if ev.Contact != nil {
			m.say("new contact: %s", ev.Contact.Name())
		}
		m.reloadConv()
	case agent.EventContactUpdated:
		m.reloadContacts()
	case agent.EventVerification:
		m.reloadContacts()
		if ev.Contact != nil && ev.Contact.IdentityChanged {
			m.notice = fmt.Sprintf("WARNING: %s's identity key CHANGED — sending is blocked; compare safety numbers with /verify", ev.Contact.Name())
			m.alert = true
		}
	case agent.EventTyping:
		if ev.Contact != nil {
			if ev.Typing {
				m.say("%s is typing…", ev.Contact.Name())
			} else if m.notice == ev.Contact.Name()+" is typing…" {
				m.say("")
			}
		}
	case agent.EventError:
		if ev.Err != nil {
			m.warn(ev.Err)
		}
	}
}

func (m *model) name(id agent.ContactID) string {
	for _, c := range m.contacts {
		if c.ID == id {
			return c.Name()
		}
	}
	m.reloadContacts()
	for _, c := range m.contacts {
		if c.ID == id {
			return c.Name()
		}
	}
	return string(id)
}

func (m *model) key(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "ctrl+c", "ctrl+d":
		return tea.Quit
	case "esc":
		m.screen = screenChat
		m.reloadConv()
		return nil
	}
	if m.screen == screenVerify {
		c, ok := m.selected()
		switch k.String() {
		case "y", "n":
			if ok {
				if err := m.a.Verify(c.ID, k.String() == "y"); err != nil {
					m.warn(err)
				} else if k.String() == "y" {
					m.say("%s is verified", c.Name())
				} else {
					m.say("%s is unverified", c.Name())
				}
				m.reloadContacts()
			}
			m.screen = screenChat
			return nil
		}
	}
	switch k.String() {
	case "up":
		if m.sel > 0 {
			m.sel--
			m.reloadConv()
		}
	case "down":
		if m.sel < len(m.contacts)-1 {
			m.sel++
			m.reloadConv()
		}
	case "enter":
		line := strings.TrimSpace(string(m.input))
		m.input = m.input[:0]
		return m.submit(line)
	case "backspace":
		if len(m.input) > 0 {
			m.input = m.input[:len(m.input)-1]
		}
	default:
		if k.Text != "" {
			m.input = append(m.input, []rune(k.Text)...)
		}
	}
	return nil
}

// syncTyping tells the selected contact that the user is typing a
// message (not a /command) or stopped; the agent sends nothing unless
// typing indicators are on (off by default).
func (m *model) syncTyping() tea.Cmd {
	var want agent.ContactID
	if c, ok := m.selected(); ok && c.Connected && m.screen == screenChat && len(m.input) > 0 && m.input[0] != '/' {
		want = c.ID
	}
	if want == m.typingTo {
		return nil
	}
	old, a := m.typingTo, m.a
	m.typingTo = want
	return func() tea.Msg {
		var err error
		if old != "" {
			err = a.SetTyping(old, false)
		}
		if want != "" && err == nil {
			err = a.SetTyping(want, true)
		}
		if err != nil {
			return resultMsg{err: err}
		}
		return nil
	}
}

// submit runs a /command or sends the line to the selected contact.
func (m *model) submit(line string) tea.Cmd {
	if line == "" {
		return nil
	}
	if !strings.HasPrefix(line, "/") {
		c, ok := m.selected()
		if !ok {
			m.warn(errors.New("no contact to write to: /invite someone or /accept their link"))
			return nil
		}
		if !c.Connected {
			m.warn(fmt.Errorf("the connection with %s is not complete yet: wait for their answer", c.Name()))
			return nil
		}
		ctx, a := m.ctx, m.a
		return func() tea.Msg {
			_, err := a.Send(ctx, c.ID, line)
			return resultMsg{err: err}
		}
	}
	cmd, arg, _ := strings.Cut(line[1:], " ")
	arg = strings.TrimSpace(arg)
	ctx, a := m.ctx, m.a
	switch cmd {
	case "quit", "q":
		return tea.Quit
	case "help", "h":
		m.screen = screenHelp
	case "invite":
		m.say("creating an invitation…")
		return func() tea.Msg {
			// The short form (a few hundred characters) fits the
			// screen, so it can be copied in one piece; the full
			// invitation waits, encrypted, on a relay.
			link, err := a.InviteShort(ctx, arg)
			return resultMsg{err: err, link: link, notice: "invitation ready: give the link to one person"}
		}
	case "accept":
		link, alias, _ := strings.Cut(arg, " ")
		if link == "" {
			m.warn(errors.New("usage: /accept LINK [NAME] (paste the link)"))
			return nil
		}
		m.say("accepting…")
		return func() tea.Msg {
			c, err := a.Accept(ctx, link, strings.TrimSpace(alias))
			if err != nil {
				return resultMsg{err: err}
			}
			return resultMsg{notice: "connecting to " + c.Name() + ": the chat opens when they answer"}
		}
	case "verify":
		c, ok := m.selected()
		if !ok {
			m.warn(errors.New("no contact selected"))
			return nil
		}
		sn, err := a.SafetyNumber(c.ID)
		if err != nil {
			m.warn(err)
			return nil
		}
		m.number, m.screen = sn.String(), screenVerify
	case "name":
		c, ok := m.selected()
		if !ok || arg == "" {
			m.warn(errors.New("usage: /name NEW-NAME (renames the selected contact)"))
			return nil
		}
		if err := a.SetAlias(c.ID, arg); err != nil {
			m.warn(err)
		}
		m.reloadContacts()
	case "receipts", "typing":
		on, ok := map[string]bool{"on": true, "off": false}[arg]
		if !ok {
			m.warn(fmt.Errorf("usage: /%s on|off", cmd))
			return nil
		}
		err := a.UpdateSettings(func(s *agent.Settings) {
			if cmd == "receipts" {
				s.ReadReceipts = on
			} else {
				s.TypingIndicators = on
			}
		})
		if err != nil {
			m.warn(err)
			return nil
		}
		what := map[string]string{"receipts": "read receipts", "typing": "typing indicators"}[cmd]
		m.say("%s %s", what, map[bool]string{true: "on", false: "off"}[on])
	case "disappear":
		c, ok := m.selected()
		if !ok {
			m.warn(errors.New("no contact selected"))
			return nil
		}
		var d time.Duration
		if arg != "off" {
			var err error
			if d, err = time.ParseDuration(arg); err != nil || d < time.Second || d > 365*24*time.Hour {
				m.warn(errors.New("usage: /disappear DURATION|off (from 1s to 8760h, for example 30m or 24h)"))
				return nil
			}
		}
		if err := a.SetDisappearing(c.ID, d); err != nil {
			m.warn(err)
			return nil
		}
		if d == 0 {
			m.say("messages with %s no longer disappear", c.Name())
		} else {
			m.say("new messages with %s disappear after %s", c.Name(), d)
		}
		m.reloadContacts()
	case "relays":
		rs, err := a.Relays()
		if err != nil {
			m.warn(err)
			return nil
		}
		m.relays, m.screen = rs, screenRelays
	default:
		m.warn(fmt.Errorf("unknown command /%s: type /help", cmd))
	}
	return nil
}

// pasted prepares pasted text for the input line. A link copied from a
// terminal comes with the line breaks where the screen wrapped it, so a
// paste that is an invitation or relay link loses all its white space;
// other text has its line breaks turned into spaces.
func pasted(s string) string {
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "parley://") {
		return strings.Join(strings.Fields(t), "")
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

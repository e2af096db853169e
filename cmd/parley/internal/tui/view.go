package tui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"

	"github.com/parley-messenger/parley/agent"
)

const (
	listWidth = 24
	helpLine  = "enter send · ↑↓ contact · /invite · /accept LINK · /verify · /relays · /help · ctrl+c quit"
)

func (m *model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "Parley"
	return v
}

// render draws the whole screen as text.
func (m *model) render() string {
	w, h := max(m.width, 40), max(m.height, 8)
	body := h - 4 // title, status, input, help
	var left, right []string
	switch m.screen {
	case screenVerify:
		right = m.verifyLines()
	case screenHelp:
		right = helpLines
	default:
		right = m.convLines(w - listWidth - 3)
	}
	left = m.contactLines()
	// An invitation and the relay addresses get the whole width and no
	// border, so that they can be selected and copied without anything
	// else and without being cut.
	full := m.screen == screenInvite || m.screen == screenRelays
	switch m.screen {
	case screenInvite:
		left, right = nil, m.inviteLines(w)
	case screenRelays:
		left, right = nil, m.relayLines(w)
	}
	if len(right) > body {
		right = right[len(right)-body:] // the newest at the bottom
	}
	var b strings.Builder
	title := "Parley — end-to-end encrypted"
	if c, ok := m.selected(); ok && m.screen == screenChat {
		title += " — " + clean(c.Name()) + " (" + state(c) + ")"
	}
	b.WriteString(fit(title, w) + "\n")
	for i := range body {
		l, r := "", ""
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		if full {
			b.WriteString(fit(r, w) + "\n")
			continue
		}
		b.WriteString(fit(l, listWidth) + " │ " + fit(r, w-listWidth-3) + "\n")
	}
	status := m.notice
	if m.alert {
		status = "! " + status
	}
	b.WriteString(fit(clean(status), w) + "\n")
	b.WriteString(fit("> "+clean(string(m.input))+"█", w) + "\n")
	b.WriteString(fit(helpLine, w))
	return b.String()
}

func (m *model) contactLines() []string {
	if len(m.contacts) == 0 {
		return []string{"no contacts yet", "/invite or /accept"}
	}
	out := make([]string, 0, len(m.contacts))
	for i, c := range m.contacts {
		mark := "  "
		if i == m.sel {
			mark = "> "
		}
		line := mark + clean(c.Name())
		if n := m.unread[c.ID]; n > 0 {
			line += fmt.Sprintf(" (%d)", n)
		}
		if c.IdentityChanged {
			line += " !"
		} else if c.Verified {
			line += " ✓"
		}
		out = append(out, line)
	}
	return out
}

// state is a contact's state in a few words.
func state(c agent.Contact) string {
	if c.DisappearAfter > 0 && !c.IdentityChanged {
		return stateWords(c) + ", timer " + shortDuration(c.DisappearAfter)
	}
	return stateWords(c)
}

// shortDuration writes d without zero trailing units: 1h, 1h30m, 45s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func stateWords(c agent.Contact) string {
	switch {
	case c.IdentityChanged:
		return "IDENTITY KEY CHANGED — /verify"
	case !c.Connected:
		return "waiting for their answer"
	case c.Verified:
		return "verified"
	}
	return "unverified — /verify"
}

// mark is the delivery mark of an outgoing message.
func mark(s agent.Status) string {
	switch s {
	case agent.StatusPending:
		return "…" // in the outbox
	case agent.StatusSent:
		return "✓" // a relay has it
	case agent.StatusDelivered:
		return "✓✓" // their device has it
	case agent.StatusRead:
		return "✓✓ read"
	}
	return ""
}

func (m *model) convLines(width int) []string {
	c, ok := m.selected()
	if !ok {
		return []string{"Welcome to Parley.", "", "Type /invite to make an invitation link for someone,", "or /accept LINK to accept theirs."}
	}
	if len(m.conv) == 0 {
		return []string{"No messages with " + clean(c.Name()) + " yet."}
	}
	var out []string
	for _, msg := range m.conv {
		who := clean(c.Name())
		suffix := ""
		if msg.Outgoing {
			who, suffix = "you", "  "+mark(msg.Status)
		}
		line := msg.Sent.Local().Format("15:04") + " " + who + ": " + clean(msg.Text) + suffix
		out = append(out, wrap(line, width)...)
	}
	return out
}

func (m *model) inviteLines(width int) []string {
	out := []string{"Invitation (works once; give it to one person over a channel you trust):", ""}
	out = append(out, wrap(m.link, width)...)
	return append(out, "", "They run: parley accept LINK   (or /accept LINK in their chat)", "esc: back")
}

func (m *model) verifyLines() []string {
	c, _ := m.selected()
	return []string{
		"Safety number with " + clean(c.Name()) + ":", "", m.number, "",
		"Compare it with theirs in person or on a call you trust.",
		"y: it matches (mark verified) · n: mark unverified · esc: back",
	}
}

func (m *model) relayLines(width int) []string {
	out := []string{"Relays (a second profile adds these with 'parley relays add ADDRESS'):", ""}
	for _, r := range m.relays {
		st := "(down)"
		if r.Up {
			st = "(up)"
		}
		// The address alone on its line(s), its state on the next.
		out = append(out, wrap(r.Address, width)...)
		out = append(out, "  "+st)
	}
	return append(out, "", "esc: back")
}

var helpLines = []string{
	"Type a message and press enter to send it to the selected contact.",
	"↑/↓ select a contact; a number after a name counts unread messages.",
	"Marks: … in the outbox · ✓ a relay has it · ✓✓ delivered · ✓✓ read",
	"",
	"/invite [NAME]        make a one-time invitation link",
	"/accept LINK [NAME]   accept someone's invitation (paste the link)",
	"/verify               compare the safety number with the selected contact",
	"/name NEW-NAME        rename the selected contact (only you see it)",
	"/relays               show your relays",
	"/disappear 24h|off    disappearing-message timer, both sides",
	"/receipts on|off      send read receipts (on by default)",
	"/typing on|off        send typing indicators (off by default)",
	"/quit                 leave (ctrl+c too)",
	"",
	"esc: back",
}

// clean replaces control characters, so that nothing a contact sends can
// move the cursor or change the terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// fit pads or cuts s to exactly w cells (one cell per rune: good enough
// for the alphabets the UI itself uses).
func fit(s string, w int) string {
	n := utf8.RuneCountInString(s)
	if n > w {
		r := []rune(s)
		return string(r[:max(w-1, 0)]) + "…"
	}
	return s + strings.Repeat(" ", w-n)
}

// wrap cuts s into lines of at most w runes.
func wrap(s string, w int) []string {
	if w < 1 {
		w = 1
	}
	r := []rune(s)
	var out []string
	for len(r) > w {
		out = append(out, string(r[:w]))
		r = r[w:]
	}
	return append(out, string(r))
}

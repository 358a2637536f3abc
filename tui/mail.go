package tui

import (
	"context"
	"errors"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station"
)

// mailScreen is the mail test, for card holders (no officer needed): with
// the card's own keys and certificates, a message to oneself is signed,
// encrypted, decrypted and verified (station.MailTest), each step with its
// time, and on failure the reason in plain words. It lives on the
// diagnostics screen beside the PIN logon test.
type mailScreen struct {
	cardTest
	b      *backend
	width  int
	height int
	keys   mailKeys
	pin    textinput.Model
}

type mailKeys struct {
	Up, Down, Run, Type, Leave key.Binding
}

type (
	mailStepMsg struct {
		ch   <-chan tea.Msg
		step station.LogonStep
	}
	mailDoneMsg struct {
		ok   bool
		fail string
	}
)

func newMail(b *backend, s *Styles, local []LocalCard) *mailScreen {
	return &mailScreen{cardTest: newCardTest(s, local), b: b, pin: newPINInput(s), keys: mailKeys{
		Up:    key.NewBinding(key.WithKeys("up"), key.WithHelp("↑", "previous card")),
		Down:  key.NewBinding(key.WithKeys("down"), key.WithHelp("↓", "next card")),
		Run:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "test mail")),
		Type:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "type the PIN")),
		Leave: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "leave the PIN")),
	}}
}

func (m *mailScreen) Init() tea.Cmd { return nil }

// Capturing: printable keys are the PIN's only while it has the focus
// (enter gives it, esc takes it away), so that 1-9, ? and q work.
func (m *mailScreen) Capturing() bool { return !m.running && m.pin.Focused() }

func (m *mailScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case readerEventMsg:
		m.track(card.Event(msg))
	case mailStepMsg:
		return m.stepped(msg.ch, msg.step)
	case mailDoneMsg:
		m.finished(msg.ok, msg.fail)
	case spinner.TickMsg:
		cmd, _ := m.tick(msg)
		return cmd
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	return nil
}

func (m *mailScreen) key(msg tea.KeyPressMsg) tea.Cmd {
	if m.running {
		return nil
	}
	switch {
	case key.Matches(msg, m.keys.Up):
		m.up()
		return nil
	case key.Matches(msg, m.keys.Down):
		m.down()
		return nil
	case key.Matches(msg, m.keys.Leave):
		m.pin.Blur()
		return nil
	case key.Matches(msg, m.keys.Run):
		if !m.pin.Focused() {
			return m.pin.Focus()
		}
		return m.run()
	}
	if !m.pin.Focused() {
		return nil
	}
	var cmd tea.Cmd
	m.pin, cmd = m.pin.Update(msg)
	return cmd
}

// run tests mail in the background; the steps come as messages.
func (m *mailScreen) run() tea.Cmd {
	reader, ok := m.begin()
	if !ok {
		return nil
	}
	if m.pin.Value() == "" {
		m.fail = "type the card's PIN"
		return nil
	}
	pin := m.pin.Value()
	m.pin.SetValue("")
	st, local := m.b.st, m.local
	return m.start(func(step func(station.LogonStep)) (bool, string) { return mailTest(st, local, reader, pin, step) },
		func(ch <-chan tea.Msg, s station.LogonStep) tea.Msg { return mailStepMsg{ch, s} },
		func(ok bool, fail string) tea.Msg { return mailDoneMsg{ok, fail} })
}

// mailTest runs the station's mail self-test on the card and says whether
// it passed, or why not.
func mailTest(st *station.Station, local []LocalCard, reader, pin string, step func(station.LogonStep)) (bool, string) {
	ref, err := cardRef(local, reader)
	if err != nil {
		return false, "the card: " + errText(err)
	}
	_, err = st.MailTest(context.Background(), ref, pin, step)
	if err != nil {
		var me *station.MailTestError
		if errors.As(err, &me) {
			return false, me.Step + ": " + me.Reason
		}
		return false, errText(err)
	}
	return true, ""
}

func (m *mailScreen) SetSize(w, h int) { m.width, m.height = w, h }

func (m *mailScreen) ShortHelp() []key.Binding {
	if !m.pin.Focused() {
		return []key.Binding{m.keys.Up, m.keys.Down, m.keys.Type}
	}
	// Typing: the way out (esc, tab) must fit on the line.
	return []key.Binding{m.keys.Run, m.keys.Leave}
}

func (m *mailScreen) FullHelp() [][]key.Binding {
	run := m.keys.Run
	if !m.pin.Focused() {
		run = m.keys.Type
	}
	return [][]key.Binding{{m.keys.Up, m.keys.Down, run, m.keys.Leave}}
}

func (m *mailScreen) View() string {
	var b strings.Builder
	line := func(s string) { b.WriteString(s + "\n") }
	line(m.s.Heading.Render("Mail test") + m.s.Muted.Render("  for card holders: no officer needed · ctrl+t logon test"))
	m.viewCards(line)
	line("  " + m.pin.View())
	if !m.pin.Focused() && !m.running {
		line("  " + m.s.Muted.Render("enter: type the card's PIN"))
	}
	line("")
	m.viewOutcome(line, m.width, "Mail works: the card signed, encrypted, decrypted and verified.")
	return strings.TrimRight(b.String(), "\n")
}

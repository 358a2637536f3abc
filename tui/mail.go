package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station"
)

// mailScreen is the mail test, for card holders (no officer needed): with
// the card's own keys and certificates, a message to oneself is signed,
// encrypted, decrypted and verified (station.MailTest), each step with its
// time, and on failure the reason in plain words. It lives on the
// diagnostics screen beside the PIN logon test.
type mailScreen struct {
	b      *backend
	s      *Styles
	local  []LocalCard
	width  int
	height int
	keys   mailKeys

	present map[string]bool
	cursor  int
	pin     textinput.Model

	spin    spinner.Model
	running bool
	steps   []station.LogonStep
	ok      bool
	fail    string // the failed step and why
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
	m := &mailScreen{b: b, s: s, local: local, present: map[string]bool{}, keys: mailKeys{
		Up:    key.NewBinding(key.WithKeys("up"), key.WithHelp("↑", "previous card")),
		Down:  key.NewBinding(key.WithKeys("down"), key.WithHelp("↓", "next card")),
		Run:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "test mail")),
		Type:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "type the PIN")),
		Leave: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "leave the PIN")),
	}}
	m.pin = textinput.New()
	m.pin.Prompt = "PIN:  "
	m.pin.EchoMode = textinput.EchoPassword
	m.pin.EchoCharacter = '•'
	m.pin.CharLimit = 8
	m.pin.SetWidth(12)
	m.pin.SetStyles(s.Input)
	m.spin = spinner.New(spinner.WithSpinner(spinner.Line))
	return m
}

func (m *mailScreen) Init() tea.Cmd { return nil }

// Capturing: printable keys are the PIN's only while it has the focus
// (enter gives it, esc takes it away), so that 1-9, ? and q work.
func (m *mailScreen) Capturing() bool { return !m.running && m.pin.Focused() }

func (m *mailScreen) choices() []string {
	var out []string
	for _, o := range cardChoices(m.local, m.present) {
		out = append(out, o.Value)
	}
	return out
}

func (m *mailScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case readerEventMsg:
		trackCard(m.present, m.local, card.Event(msg))
	case mailStepMsg:
		m.steps = append(m.steps, msg.step)
		return waitEnroll(msg.ch)
	case mailDoneMsg:
		m.running, m.ok, m.fail = false, msg.ok, msg.fail
	case spinner.TickMsg:
		if m.running {
			var cmd tea.Cmd
			m.spin, cmd = m.spin.Update(msg)
			return cmd
		}
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
		m.cursor = max(m.cursor-1, 0)
		return nil
	case key.Matches(msg, m.keys.Down):
		m.cursor = max(0, min(m.cursor+1, len(m.choices())-1))
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
	cards := m.choices()
	m.steps, m.ok, m.fail = nil, false, ""
	switch {
	case len(cards) == 0:
		m.fail = "no card: insert the card to test"
		return nil
	case m.pin.Value() == "":
		m.fail = "type the card's PIN"
		return nil
	}
	reader := cards[min(m.cursor, len(cards)-1)]
	pin := m.pin.Value()
	m.pin.SetValue("")
	m.running = true
	ch := make(chan tea.Msg, 16)
	b, local := m.b, m.local
	go func() {
		ok, fail := mailTest(b.st, local, reader, pin, func(s station.LogonStep) { ch <- mailStepMsg{ch: ch, step: s} })
		ch <- mailDoneMsg{ok, fail}
	}()
	return tea.Batch(waitEnroll(ch), m.spin.Tick)
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
	cards := m.choices()
	if len(cards) == 0 {
		line("  " + m.s.Muted.Render("no card: insert the card to test"))
	}
	for i, c := range cards {
		label := c
		if !strings.HasPrefix(c, "virtual card ") {
			label = "card in " + c
		}
		if i == m.cursor {
			line("  > " + m.s.Key.Render(label))
		} else {
			line("    " + label)
		}
	}
	line("  " + m.pin.View())
	if !m.pin.Focused() && !m.running {
		line("  " + m.s.Muted.Render("enter: type the card's PIN"))
	}
	line("")
	for _, s := range m.steps {
		detail := ""
		if s.Detail != "" {
			detail = " " + m.s.Muted.Render(truncate(s.Detail, max(m.width-50, 10)))
		}
		line(fmt.Sprintf("  %s %-34s %s", m.s.OK.Render("✓"), truncate(s.Name, 34), m.s.Muted.Render(tookText(s.Took))) + detail)
	}
	switch {
	case m.running:
		line("  " + m.spin.View() + " testing…")
	case m.ok:
		line("  " + m.s.OK.Render("Mail works: the card signed, encrypted, decrypted and verified."))
	case m.fail != "":
		line(lipgloss.NewStyle().Width(max(m.width-2, 20)).PaddingLeft(2).Render(m.s.Error.Render("✗ " + m.fail)))
	}
	return strings.TrimRight(b.String(), "\n")
}

package tui

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station"
)

// diagScreen is the PIN logon test, for card holders (no officer needed):
// the card's PIN, its logon certificate, then a PKINIT logon against the
// station's KDC, each step with its time, and on failure the reason in
// plain words. ctrl+t switches to the mail test (mailScreen), which it
// holds.
type diagScreen struct {
	cardTest
	b      *backend
	width  int
	height int
	keys   diagKeys

	kdc   string // the KDC's address, once it listens here
	focus int    // focusNone, 0 the user, 1 the PIN
	user  textinput.Model
	pin   textinput.Model

	mail     *mailScreen
	mailMode bool // the mail test is shown
}

type diagKeys struct {
	Up, Down, Next, Run, Type, Leave, Switch key.Binding
}

// focusNone: no text field has the focus, so that the global keys (1-9,
// ?, q) work; enter gives the user field the focus, esc takes it away.
const focusNone = -1

type (
	diagStepMsg struct {
		ch   <-chan tea.Msg
		step station.LogonStep
	}
	diagDoneMsg struct {
		ok   bool
		fail string
	}
)

func newDiag(b *backend, s *Styles, local []LocalCard) *diagScreen {
	d := &diagScreen{cardTest: newCardTest(s, local), b: b, keys: diagKeys{
		Up:    key.NewBinding(key.WithKeys("up"), key.WithHelp("↑", "previous card")),
		Down:  key.NewBinding(key.WithKeys("down"), key.WithHelp("↓", "next card")),
		Next:  key.NewBinding(key.WithKeys("shift+down", "ctrl+n"), key.WithHelp("ctrl+n", "user/PIN")),
		Run:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "test the logon")),
		Type:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "type user and PIN")),
		Leave: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "leave the fields")),
		// ctrl+t: the screen takes printable keys (user, PIN).
		Switch: key.NewBinding(key.WithKeys("ctrl+t"), key.WithHelp("ctrl+t", "logon test / mail test")),
	}}
	d.mail = newMail(b, s, local)
	d.user = textinput.New()
	d.user.Prompt = "user: "
	d.user.CharLimit = 64
	d.user.SetWidth(24)
	d.user.SetStyles(s.Input)
	d.pin = newPINInput(s)
	d.focus = focusNone
	return d
}

func (d *diagScreen) Init() tea.Cmd { return d.mail.Init() }

// Capturing: printable keys are the fields' only while one has the focus.
func (d *diagScreen) Capturing() bool {
	if d.mailMode {
		return d.mail.Capturing()
	}
	return !d.running && d.focus != focusNone
}

func (d *diagScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case mailStepMsg, mailDoneMsg:
		return d.mail.Update(msg)
	case readerEventMsg:
		d.mail.Update(msg)
		d.track(card.Event(msg))
	case serviceMsg:
		if msg.name == "kdc" && msg.err == nil {
			d.kdc = msg.addr
		}
	case diagStepMsg:
		return d.stepped(msg.ch, msg.step)
	case diagDoneMsg:
		d.finished(msg.ok, msg.fail)
	case spinner.TickMsg:
		if cmd, ours := d.tick(msg); ours {
			return cmd
		}
		return d.mail.Update(msg)
	case tea.KeyPressMsg:
		if key.Matches(msg, d.keys.Switch) && !d.running && !d.mail.running {
			d.mailMode = !d.mailMode
			return nil
		}
		if d.mailMode {
			return d.mail.Update(msg)
		}
		return d.key(msg)
	}
	return nil
}

func (d *diagScreen) key(msg tea.KeyPressMsg) tea.Cmd {
	if d.running {
		return nil
	}
	switch {
	case key.Matches(msg, d.keys.Up):
		d.up()
		return nil
	case key.Matches(msg, d.keys.Down):
		d.down()
		return nil
	case key.Matches(msg, d.keys.Leave):
		d.focus = focusNone
		d.user.Blur()
		d.pin.Blur()
		return nil
	case key.Matches(msg, d.keys.Next):
		return d.switchFocus()
	case key.Matches(msg, d.keys.Run):
		if d.focus != 1 {
			return d.switchFocus()
		}
		return d.run()
	}
	var cmd tea.Cmd
	switch d.focus {
	case focusNone:
		return nil
	case 0:
		d.user, cmd = d.user.Update(msg)
	default:
		d.pin, cmd = d.pin.Update(msg)
	}
	return cmd
}

// switchFocus moves the focus to the user field (from none or the PIN)
// or to the PIN (from the user field).
func (d *diagScreen) switchFocus() tea.Cmd {
	if d.focus == 0 {
		d.focus = 1
	} else {
		d.focus = 0
	}
	if d.focus == 0 {
		d.pin.Blur()
		return d.user.Focus()
	}
	d.user.Blur()
	return d.pin.Focus()
}

// run tests the logon in the background; the steps come as messages.
func (d *diagScreen) run() tea.Cmd {
	reader, ok := d.begin()
	if !ok {
		return nil
	}
	switch {
	case strings.TrimSpace(d.user.Value()) == "":
		d.fail = "type the user name"
		return nil
	case d.pin.Value() == "":
		d.fail = "type the card's PIN"
		return nil
	case d.kdc == "":
		d.fail = "the KDC is not running in this station (start it with the services: scstation without --no-services)"
		return nil
	}
	user, pin := strings.TrimSpace(d.user.Value()), d.pin.Value()
	d.pin.SetValue("")
	st, local, addr := d.b.st, d.local, d.kdc
	return d.start(func(step func(station.LogonStep)) (bool, string) {
		return logonTest(st, local, reader, user, pin, addr, step)
	},
		func(ch <-chan tea.Msg, s station.LogonStep) tea.Msg { return diagStepMsg{ch, s} },
		func(ok bool, fail string) tea.Msg { return diagDoneMsg{ok, fail} })
}

// logonTest runs one logon and says whether it passed, or why not.
func logonTest(st *station.Station, local []LocalCard, reader, user, pin, addr string, step func(station.LogonStep)) (bool, string) {
	chain, err := st.CAChain()
	if err != nil {
		return false, "the CA: " + errText(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(chain[len(chain)-1])
	ref, err := cardRef(local, reader)
	if err != nil {
		return false, "the card: " + errText(err)
	}
	opts := station.LogonOptions{User: user, Realm: st.Config.Realm, KDC: addr, Roots: roots, Step: step, Timeout: 10 * time.Second,
		Reader: ref.Reader, Card: ref.Card, PIN: pin}
	_, err = st.Logon(context.Background(), opts)
	if err != nil {
		var le *station.LogonError
		if errors.As(err, &le) {
			return false, le.Step + ": " + le.Reason
		}
		return false, errText(err)
	}
	return true, ""
}

func (d *diagScreen) SetSize(w, h int) {
	d.width, d.height = w, h
	d.mail.SetSize(w, h)
}

func (d *diagScreen) ShortHelp() []key.Binding {
	if d.mailMode {
		return d.mail.ShortHelp()
	}
	if d.focus == focusNone {
		return []key.Binding{d.keys.Up, d.keys.Down, d.keys.Type}
	}
	// Typing: the way out (esc, tab) must fit on the line.
	return []key.Binding{d.keys.Run, d.keys.Leave}
}

func (d *diagScreen) FullHelp() [][]key.Binding {
	if d.mailMode {
		return [][]key.Binding{append(d.mail.FullHelp()[0], d.keys.Switch)}
	}
	run := d.keys.Run
	if d.focus == focusNone {
		run = d.keys.Type
	}
	return [][]key.Binding{{d.keys.Up, d.keys.Down, d.keys.Next, run, d.keys.Leave, d.keys.Switch}}
}

func (d *diagScreen) View() string {
	if d.mailMode {
		return d.mail.View()
	}
	var b strings.Builder
	line := func(s string) { b.WriteString(s + "\n") }
	line(d.s.Heading.Render("PIN logon test") + d.s.Muted.Render("  for card holders: no officer needed · ctrl+t mail test"))
	d.viewCards(line)
	line("  " + d.user.View())
	line("  " + d.pin.View())
	if d.focus == focusNone && !d.running {
		line("  " + d.s.Muted.Render("enter: type the user name and the card's PIN"))
	}
	line("")
	d.viewOutcome(line, d.width, "Logon works: the KDC issued a ticket.")
	return strings.TrimRight(b.String(), "\n")
}

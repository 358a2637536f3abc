package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station"
)

// cardTest is what the card holders' tests (the PIN logon test and the
// mail test) share: the card to test, the steps as they come, and the
// outcome.
type cardTest struct {
	s       *Styles
	local   []LocalCard
	present map[string]bool
	cursor  int

	spin    spinner.Model
	running bool
	steps   []station.LogonStep
	ok      bool
	fail    string // the failed step and why
}

func newCardTest(s *Styles, local []LocalCard) cardTest {
	return cardTest{s: s, local: local, present: map[string]bool{}, spin: spinner.New(spinner.WithSpinner(spinner.Line))}
}

// newPINInput is a masked PIN field.
func newPINInput(s *Styles) textinput.Model {
	pin := textinput.New()
	pin.Prompt = "PIN:  "
	pin.EchoMode = textinput.EchoPassword
	pin.EchoCharacter = '•'
	pin.CharLimit = 8
	pin.SetWidth(12)
	pin.SetStyles(s.Input)
	return pin
}

func (t *cardTest) choices() []string {
	var out []string
	for _, o := range cardChoices(t.local, t.present) {
		out = append(out, o.Value)
	}
	return out
}

// track follows the readers and the in-process cards.
func (t *cardTest) track(ev card.Event) { trackCard(t.present, t.local, ev) }

func (t *cardTest) up()   { t.cursor = max(t.cursor-1, 0) }
func (t *cardTest) down() { t.cursor = max(0, min(t.cursor+1, len(t.choices())-1)) }

// begin clears the last outcome and returns the chosen card, or false
// (with the reason shown) when there is none.
func (t *cardTest) begin() (string, bool) {
	t.steps, t.ok, t.fail = nil, false, ""
	cards := t.choices()
	if len(cards) == 0 {
		t.fail = "no card: insert the card to test"
		return "", false
	}
	return cards[min(t.cursor, len(cards)-1)], true
}

// start runs test in the background; wrap makes the screen's own progress
// messages, so that its Update receives them.
func (t *cardTest) start(test func(step func(station.LogonStep)) (bool, string), step func(ch <-chan tea.Msg, s station.LogonStep) tea.Msg, done func(ok bool, fail string) tea.Msg) tea.Cmd {
	t.running = true
	ch := make(chan tea.Msg, 16)
	go func() {
		ok, fail := test(func(s station.LogonStep) { ch <- step(ch, s) })
		ch <- done(ok, fail)
	}()
	return tea.Batch(waitEnroll(ch), t.spin.Tick)
}

// stepped records a step and waits for the next message of the test.
func (t *cardTest) stepped(ch <-chan tea.Msg, s station.LogonStep) tea.Cmd {
	t.steps = append(t.steps, s)
	return waitEnroll(ch)
}

func (t *cardTest) finished(ok bool, fail string) { t.running, t.ok, t.fail = false, ok, fail }

// tick turns the spinner while the test runs; handled says it was ours.
func (t *cardTest) tick(msg spinner.TickMsg) (tea.Cmd, bool) {
	if !t.running {
		return nil, false
	}
	var cmd tea.Cmd
	t.spin, cmd = t.spin.Update(msg)
	return cmd, true
}

// viewCards lists the cards to choose from.
func (t *cardTest) viewCards(line func(string)) {
	cards := t.choices()
	if len(cards) == 0 {
		line("  " + t.s.Muted.Render("no card: insert the card to test"))
	}
	for i, c := range cards {
		label := c
		if !strings.HasPrefix(c, "virtual card ") {
			label = "card in " + c
		}
		if i == t.cursor {
			line("  > " + t.s.Key.Render(label))
		} else {
			line("    " + label)
		}
	}
}

// viewOutcome shows the steps passed and how the test ended (passed says
// what a pass means).
func (t *cardTest) viewOutcome(line func(string), width int, passed string) {
	for _, s := range t.steps {
		detail := ""
		if s.Detail != "" {
			detail = " " + t.s.Muted.Render(truncate(s.Detail, max(width-50, 10)))
		}
		line(fmt.Sprintf("  %s %-34s %s", t.s.OK.Render("✓"), truncate(s.Name, 34), t.s.Muted.Render(tookText(s.Took))) + detail)
	}
	switch {
	case t.running:
		line("  " + t.spin.View() + " testing…")
	case t.ok:
		line("  " + t.s.OK.Render(passed))
	case t.fail != "":
		line(lipgloss.NewStyle().Width(max(width-2, 20)).PaddingLeft(2).Render(t.s.Error.Render("✗ " + t.fail)))
	}
}

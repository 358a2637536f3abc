package tui

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/scstation/scstation/station/audit"
)

// auditLimit caps the records one view reads: the newest ones.
const auditLimit = 500

var auditSince = []struct {
	label string
	d     time.Duration
}{{"all time", 0}, {"last hour", time.Hour}, {"last day", 24 * time.Hour}, {"last week", 7 * 24 * time.Hour}}

// auditScreen is the audit log, newest first, filtered by user, action
// and age, with the state of the hash chain as Verify finds it.
type auditScreen struct {
	b      *backend
	s      *Styles
	width  int
	height int
	keys   auditKeys

	user, action textinput.Model
	since        int
	seq          int
	recs         []audit.Record
	cursor       int
	err          error

	verified  bool
	count     int
	verifyErr error
}

type auditKeys struct {
	Up, Down, User, Action, Since, Refresh key.Binding
}

type (
	auditRecsMsg struct {
		seq  int
		recs []audit.Record
		err  error
	}
	auditVerifyMsg struct {
		n   int
		err error
	}
)

func newAudit(b *backend, s *Styles) *auditScreen {
	k := func(keys, help string) key.Binding {
		return key.NewBinding(key.WithKeys(keys), key.WithHelp(keys, help))
	}
	a := &auditScreen{b: b, s: s, keys: auditKeys{
		Up: key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")), Down: key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		User: k("u", "user filter"), Action: k("a", "action filter"), Since: k("t", "time span"), Refresh: k("r", "refresh and verify"),
	}}
	in := func(prompt string) textinput.Model {
		t := textinput.New()
		t.Prompt = prompt
		t.CharLimit = 64
		t.SetWidth(14)
		t.SetStyles(s.Input)
		return t
	}
	a.user, a.action = in("user: "), in("action: ")
	return a
}

func (a *auditScreen) Init() tea.Cmd { return tea.Batch(a.load(), a.verify()) }

func (a *auditScreen) Capturing() bool { return a.user.Focused() || a.action.Focused() }

func (a *auditScreen) load() tea.Cmd {
	a.seq++
	seq, b := a.seq, a.b
	q := audit.Query{User: strings.TrimSpace(a.user.Value()), Action: strings.TrimSpace(a.action.Value()), Limit: auditLimit}
	if d := auditSince[a.since].d; d > 0 {
		q.Since = b.st.Now().Add(-d)
	}
	return func() tea.Msg {
		log, err := b.st.Audit()
		if err != nil {
			return auditRecsMsg{seq: seq, err: err}
		}
		recs, err := log.List(q)
		slices.Reverse(recs)
		return auditRecsMsg{seq: seq, recs: recs, err: err}
	}
}

// verify walks the whole chain (Verify), in a command.
func (a *auditScreen) verify() tea.Cmd {
	b := a.b
	return func() tea.Msg {
		log, err := b.st.Audit()
		if err != nil {
			return auditVerifyMsg{err: err}
		}
		n, err := log.Verify()
		return auditVerifyMsg{n, err}
	}
}

func (a *auditScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case auditRecsMsg:
		if msg.seq == a.seq {
			a.recs, a.err = msg.recs, msg.err
			a.cursor = max(0, min(a.cursor, len(a.recs)-1))
		}
	case auditVerifyMsg:
		a.verified, a.count, a.verifyErr = true, msg.n, msg.err
	case cardActionMsg, enrollDoneMsg, officerMsg, signedInMsg, revokedMsg, crlPublishedMsg:
		// Something was audited: read the log again.
		return tea.Batch(a.load(), a.verify())
	case tea.KeyPressMsg:
		return a.key(msg)
	}
	return nil
}

func (a *auditScreen) key(msg tea.KeyPressMsg) tea.Cmd {
	for _, in := range []*textinput.Model{&a.user, &a.action} {
		if in.Focused() {
			switch msg.String() {
			case "enter", "esc":
				in.Blur()
				return nil
			}
			var cmd tea.Cmd
			*in, cmd = in.Update(msg)
			a.cursor = 0
			return tea.Batch(cmd, a.load())
		}
	}
	switch {
	case key.Matches(msg, a.keys.Up):
		a.cursor = max(a.cursor-1, 0)
	case key.Matches(msg, a.keys.Down):
		a.cursor = max(0, min(a.cursor+1, len(a.recs)-1))
	case key.Matches(msg, a.keys.User):
		return a.user.Focus()
	case key.Matches(msg, a.keys.Action):
		return a.action.Focus()
	case key.Matches(msg, a.keys.Since):
		a.since = (a.since + 1) % len(auditSince)
		return a.load()
	case key.Matches(msg, a.keys.Refresh):
		a.verified = false
		return tea.Batch(a.load(), a.verify())
	}
	return nil
}

func (a *auditScreen) SetSize(w, h int) { a.width, a.height = w, h }

func (a *auditScreen) ShortHelp() []key.Binding {
	if a.Capturing() {
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "done"))}
	}
	return []key.Binding{a.keys.User, a.keys.Action, a.keys.Since, a.keys.Refresh}
}

func (a *auditScreen) FullHelp() [][]key.Binding {
	return [][]key.Binding{{a.keys.Up, a.keys.Down}, {a.keys.User, a.keys.Action, a.keys.Since, a.keys.Refresh}}
}

func (a *auditScreen) chainView() string {
	var te *audit.TamperError
	switch {
	case !a.verified:
		return a.s.Muted.Render("chain: checking…")
	case errors.As(a.verifyErr, &te):
		return a.s.Error.Render(fmt.Sprintf("chain BROKEN at record %d: %s", te.Seq, te.Reason))
	case a.verifyErr != nil:
		return a.s.Error.Render("chain not checked: " + errText(a.verifyErr))
	}
	return a.s.OK.Render(fmt.Sprintf("chain verified: %d records intact", a.count))
}

func (a *auditScreen) View() string {
	var b strings.Builder
	line := func(s string) { b.WriteString(s + "\n") }
	line(a.s.Heading.Render("Audit log"))
	line(a.chainView())
	line(a.user.View() + "  " + a.action.View() + "  " + a.s.Muted.Render(auditSince[a.since].label+fmt.Sprintf(", %d record(s)", len(a.recs))))
	line(a.s.Label.Render(fmt.Sprintf("  %-5s %-16s %-16s %-16s %-8s %s", "#", "time", "actor", "action", "user", "outcome")))
	if a.err != nil {
		line("  " + a.s.Error.Render(errText(a.err)))
	} else if len(a.recs) == 0 {
		line("  " + a.s.Muted.Render("no record matches"))
	}
	rows := max(a.height-8, 3)
	start := max(0, a.cursor-rows+1)
	for i := start; i < len(a.recs) && i < start+rows; i++ {
		r := a.recs[i]
		text := fmt.Sprintf("%-5d %-16s %-16s %-16s %-8s %s", r.Seq, r.Time.UTC().Format("2006-01-02 15:04"),
			truncate(r.Actor, 16), truncate(r.Action, 16), truncate(r.User, 8), r.Outcome)
		if i == a.cursor {
			line("> " + a.s.Key.Render(text))
		} else {
			line("  " + text)
		}
	}
	if a.cursor < len(a.recs) {
		r := a.recs[a.cursor]
		d := r.Detail
		if r.Card != "" {
			d += "  card " + r.Card
		}
		if r.Cert != "" {
			d += "  cert " + r.Cert
		}
		line("")
		line(lipgloss.NewStyle().Width(max(a.width-2, 20)).MaxHeight(3).Render(a.s.Muted.Render(d)))
	}
	return strings.TrimRight(b.String(), "\n")
}

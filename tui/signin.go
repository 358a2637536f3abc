package tui

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station"
)

// DefaultIdleLock is how long the station waits without a key press
// before it signs the officer out.
const DefaultIdleLock = 5 * time.Minute

// signInCard is a card the officer can sign in with: a card in a PC/SC
// reader, or an officer's virtual card (the demo's) held in this process.
type signInCard struct {
	label   string
	reader  string // PC/SC reader
	virtual string // officer whose virtual card it is
}

// signIn is the sign-in and lock screen: pick the officer card, type the
// PIN (masked), and the station checks both; it also shows who is signed
// in and why the station locked.
type signIn struct {
	b      *backend
	s      *Styles
	width  int
	height int
	keys   signInKeys

	present  map[string]bool // PC/SC readers with a card, and inserted local cards
	virtuals []string        // officers with a virtual card
	local    []LocalCard     // the in-process cards (an officer's among them)
	cursor   int

	pin     textinput.Model
	busy    bool
	err     error
	officer *officerMsg
	locked  string // why the station locked, shown until the next sign-in
	demoPIN string // the demo officer card's PIN (Options.DemoOfficerPIN)
}

type signInKeys struct {
	Up, Down, SignIn, Lock key.Binding
}

type (
	virtualsMsg struct{ users []string }
	signedInMsg struct {
		o   *station.Officer
		err error
	}
	// lockMsg asks the root to sign the officer out (idle, or the
	// officer pressed lock).
	lockMsg struct{ why string }
	// idleTickMsg checks the idle time.
	idleTickMsg struct{}
)

func newSignIn(b *backend, s *Styles, demoPIN string, local []LocalCard) *signIn {
	si := &signIn{b: b, s: s, demoPIN: demoPIN, local: local, present: map[string]bool{}, keys: signInKeys{
		Up:     key.NewBinding(key.WithKeys("up"), key.WithHelp("↑", "previous card")),
		Down:   key.NewBinding(key.WithKeys("down"), key.WithHelp("↓", "next card")),
		SignIn: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "sign in")),
		Lock:   key.NewBinding(key.WithKeys("ctrl+l"), key.WithHelp("ctrl+l", "lock (sign out)")),
	}}
	si.pin = textinput.New()
	si.pin.Prompt = "PIN: "
	si.pin.EchoMode = textinput.EchoPassword
	si.pin.EchoCharacter = '•'
	si.pin.CharLimit = 8
	si.pin.SetWidth(12)
	si.pin.SetStyles(s.Input)
	return si
}

func (si *signIn) Init() tea.Cmd { return tea.Batch(si.pin.Focus(), si.loadVirtuals()) }

// loadVirtuals lists the officers' virtual cards in the data directory.
func (si *signIn) loadVirtuals() tea.Cmd {
	st := si.b.st
	return func() tea.Msg {
		files, _ := filepath.Glob(filepath.Join(filepath.Dir(st.VirtualCardPath("x")), "*.json"))
		var users []string
		for _, f := range files {
			users = append(users, strings.TrimSuffix(filepath.Base(f), ".json"))
		}
		slices.Sort(users)
		return virtualsMsg{users}
	}
}

func (si *signIn) cards() []signInCard {
	var out []signInCard
	for _, u := range si.virtuals {
		if !si.virtualIn(u) {
			continue
		}
		out = append(out, signInCard{label: "virtual card of " + u, virtual: u})
	}
	var readers []string
	for r, ok := range si.present {
		if ok && !isLocal(si.local, r) {
			readers = append(readers, r)
		}
	}
	slices.Sort(readers)
	for _, r := range readers {
		out = append(out, signInCard{label: "card in " + r, reader: r})
	}
	return out
}

// virtualIn says whether officer u's virtual card is in: it is, unless
// it is one of the in-process cards and was removed.
func (si *signIn) virtualIn(u string) bool {
	for _, l := range si.local {
		if l.Officer == u {
			return si.present[l.Name]
		}
	}
	return true
}

func (si *signIn) signedIn() bool { return si.officer != nil && si.officer.user != "" }

func (si *signIn) Capturing() bool { return !si.signedIn() && !si.busy }

func (si *signIn) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case virtualsMsg:
		si.virtuals = msg.users
	case readerEventMsg:
		trackCard(si.present, si.local, card.Event(msg))
		si.cursor = min(si.cursor, max(len(si.cards())-1, 0))
	case officerMsg:
		if si.signedIn() && msg.user == "" && msg.err == nil && si.locked == "" {
			si.locked = "the officer card was removed"
		}
		si.officer = &msg
		if msg.user != "" {
			si.locked = ""
		}
	case lockMsg:
		si.locked = msg.why
	case signedInMsg:
		si.busy = false
		si.err = msg.err
		if msg.err == nil {
			si.locked = ""
			o := msg.o
			return func() tea.Msg { return officerMsg{user: o.User, reader: o.Reader} }
		}
	case tea.KeyPressMsg:
		return si.key(msg)
	}
	return nil
}

func (si *signIn) key(msg tea.KeyPressMsg) tea.Cmd {
	if si.signedIn() {
		return nil // ctrl+l (lock) is a global key
	}
	if si.busy {
		return nil
	}
	cards := si.cards()
	switch {
	case key.Matches(msg, si.keys.Up):
		si.cursor = max(si.cursor-1, 0)
		return nil
	case key.Matches(msg, si.keys.Down):
		si.cursor = min(si.cursor+1, max(len(cards)-1, 0))
		return nil
	case key.Matches(msg, si.keys.SignIn):
		if len(cards) == 0 {
			si.err = errors.New("no officer card: insert one")
			return nil
		}
		if si.pin.Value() == "" {
			si.err = errors.New("type the officer card's PIN")
			return nil
		}
		c := cards[min(si.cursor, len(cards)-1)]
		pin := si.pin.Value()
		si.pin.SetValue("")
		si.busy, si.err = true, nil
		return si.signIn(c, pin)
	}
	var cmd tea.Cmd
	si.pin, cmd = si.pin.Update(msg)
	return cmd
}

// signIn asks the station to check the card and the PIN.
func (si *signIn) signIn(c signInCard, pin string) tea.Cmd {
	b := si.b
	return func() tea.Msg {
		b.mu.Lock()
		defer b.mu.Unlock()
		var (
			o   *station.Officer
			err error
		)
		if c.virtual != "" {
			o, err = b.st.SignInVirtual(context.Background(), c.virtual, pin)
		} else {
			o, err = b.st.SignIn(context.Background(), c.reader, pin)
		}
		return signedInMsg{o, err}
	}
}

// pinErrText says what a failed PIN check means for the officer.
func pinErrText(err error) string {
	var ae *card.AuthError
	if errors.As(err, &ae) {
		switch {
		case ae.Retries == 0:
			return "wrong " + ae.What + " — the card is blocked: ask for it to be unblocked"
		case ae.Retries == 1:
			return "wrong " + ae.What + " — 1 try left"
		default:
			return fmt.Sprintf("wrong %s — %d tries left", ae.What, ae.Retries)
		}
	}
	return errText(err)
}

func (si *signIn) SetSize(w, h int) { si.width, si.height = w, h }

func (si *signIn) ShortHelp() []key.Binding {
	if si.signedIn() {
		return []key.Binding{si.keys.Lock}
	}
	return []key.Binding{si.keys.Up, si.keys.Down, si.keys.SignIn}
}

func (si *signIn) FullHelp() [][]key.Binding { return [][]key.Binding{si.ShortHelp()} }

func (si *signIn) View() string {
	var b strings.Builder
	line := func(s string) { b.WriteString(s + "\n") }
	line(si.s.Heading.Render("Enrollment officer"))
	if si.signedIn() {
		line("  signed in as " + si.s.OK.Render(si.officer.user) + si.s.Muted.Render(" ("+readerLabel(si.officer.reader)+")"))
		line("")
		line("  " + si.s.Muted.Render("The station locks when the card is removed, after a while without"))
		line("  " + si.s.Muted.Render("a key press, or with ctrl+l."))
		return strings.TrimRight(b.String(), "\n")
	}
	if si.locked != "" {
		line("  " + si.s.Warn.Render("locked: "+si.locked))
	} else {
		line("  " + si.s.Muted.Render("not signed in"))
	}
	line("")
	line("  Choose the officer card and type its PIN:")
	cards := si.cards()
	if len(cards) == 0 {
		line("    " + si.s.Muted.Render("no officer card found: insert one"))
	}
	for i, c := range cards {
		mark := "  "
		label := c.label
		if i == si.cursor {
			mark = "> "
			label = si.s.Key.Render(label)
		}
		line("  " + mark + label)
	}
	if si.demoPIN != "" && slices.Contains(si.virtuals, station.DemoOfficer) && si.virtualIn(station.DemoOfficer) {
		line("  " + si.s.Muted.Render("demo: the officer card's PIN is "+si.demoPIN))
	}
	line("")
	line("  " + si.pin.View())
	switch {
	case si.busy:
		line("  " + si.s.Muted.Render("checking the card…"))
	case si.err != nil:
		line("  " + si.s.Error.Render(pinErrText(si.err)))
	}
	return strings.TrimRight(b.String(), "\n")
}

// readerLabel names where a card is in a few words: a virtual card by its
// state file's name, not its full path.
func readerLabel(r string) string {
	if p, ok := strings.CutPrefix(r, "virtual card "); ok {
		return "virtual card " + strings.TrimSuffix(filepath.Base(p), ".json")
	}
	return "card in " + r
}

package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"
	"charm.land/lipgloss/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/station"
)

// LocalCard is a card held in this process (a virtual card), offered for
// enrollment beside the cards in PC/SC readers.
type LocalCard struct {
	// Name says where the card is, as a reader name would.
	Name string
	// Open connects the card; the station closes it when done.
	Open func() (card.Card, error)
	// Officer, when set, says this is that officer's virtual card (whose
	// reader is "virtual card " + Station.VirtualCardPath(Officer)): it
	// is offered only for signing in, and removing it locks the station.
	Officer string
}

type enrollMode int

const (
	enrUser enrollMode = iota
	enrForm
	enrRunning
	enrDone
)

// enrollSteps are the steps of station.Enroll in order, with what the
// screen calls them.
var enrollSteps = []struct{ name, label string }{
	{"card", "open the card"},
	{"management key", "take over the card"},
	{"record", "record the card in the inventory"},
	{"secure", "set management key, PUK and PIN"},
	{"keys", "generate the keys on the card"},
	{"requests", "sign the requests on the card"},
	{"issue", "CA: issue and publish"},
	{"write", "write the certificates to the card"},
	{"activate", "activate the card"},
}

// enrollScreen enrolls a card for a user: search the user, choose the
// templates, the card and the PIN, then watch the steps run.
type enrollScreen struct {
	b      *backend
	s      *Styles
	local  []LocalCard
	width  int
	height int
	keys   enrollKeys
	mode   enrollMode

	officer string
	present map[string]bool
	hold    formHold // keys typed while the form moves on

	find *userSearch

	user      *directory.User
	tmpls     []station.CardTemplate
	tmplErr   error
	form      *huh.Form
	chosen    []string
	reader    string
	randomPIN bool
	pin, pin2 string
	// passForm: the open form asks for the CA key passphrase.
	passForm   bool
	passphrase string
	busy       string

	spin   spinner.Model
	cancel context.CancelFunc
	// cancelling: esc was pressed; the station stops after the step the
	// card is in (a card cannot be interrupted mid-command).
	cancelling bool
	steps      []station.Step
	started    time.Time
	res        *station.EnrollResult
	err        error
}

type enrollKeys struct {
	Up, Down, Choose, Cancel, Again key.Binding
}

type (
	cardTemplatesMsg struct {
		ts  []station.CardTemplate
		err error
	}
	// enrollReadyMsg: the CA key is unlocked (or err says why not) and
	// the templates it offers are loaded.
	enrollReadyMsg struct {
		ts  []station.CardTemplate
		err error
	}
	enrollStepMsg struct {
		ch   <-chan tea.Msg
		step station.Step
	}
	enrollDoneMsg struct {
		res *station.EnrollResult
		err error
	}
)

func newEnroll(b *backend, s *Styles, local []LocalCard) *enrollScreen {
	e := &enrollScreen{b: b, s: s, local: local, present: map[string]bool{}, keys: enrollKeys{
		Up:     key.NewBinding(key.WithKeys("up"), key.WithHelp("↑", "up")),
		Down:   key.NewBinding(key.WithKeys("down"), key.WithHelp("↓", "down")),
		Choose: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "enroll this user")),
		Cancel: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
		Again:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "next enrollment")),
	}}
	e.find = newUserSearch(b, s, "user: ")
	e.spin = spinner.New(spinner.WithSpinner(spinner.Line))
	return e
}

func (e *enrollScreen) Init() tea.Cmd {
	return tea.Batch(e.find.Init(), e.loadTemplates())
}

func (e *enrollScreen) Capturing() bool { return e.mode == enrUser || e.mode == enrForm }

func (e *enrollScreen) loadTemplates() tea.Cmd {
	b := e.b
	return func() tea.Msg {
		b.mu.Lock()
		defer b.mu.Unlock()
		ts, err := b.st.CardTemplates(nil)
		return cardTemplatesMsg{ts, err}
	}
}

func (e *enrollScreen) Update(msg tea.Msg) tea.Cmd {
	if cmd, ok := e.find.Update(msg); ok {
		return cmd
	}
	switch msg := msg.(type) {
	case officerMsg:
		e.officer = msg.user
		if msg.user == "" && e.mode == enrDone {
			// Locked: a random PIN on the screen goes with the officer.
			return e.reset()
		}
	case readerEventMsg:
		trackCard(e.present, e.local, card.Event(msg))
	case cardTemplatesMsg:
		e.tmpls, e.tmplErr = msg.ts, msg.err
	case enrollReadyMsg:
		e.busy = ""
		if e.mode != enrForm || e.user == nil {
			return nil // cancelled meanwhile
		}
		if msg.err != nil {
			// A wrong passphrase: asked again, with why, in place.
			if errors.Is(msg.err, station.ErrPassphrase) {
				cmd := e.startPass(e.user)
				e.err = msg.err
				return cmd
			}
			e.err = msg.err
			e.mode = enrUser
			return e.find.input.Focus()
		}
		e.tmpls, e.tmplErr = msg.ts, nil
		return e.startForm(e.user)
	case enrollStepMsg:
		e.steps = append(e.steps, msg.step)
		return waitEnroll(msg.ch)
	case enrollDoneMsg:
		e.mode = enrDone
		e.res, e.err = msg.res, msg.err
		if e.cancel != nil {
			e.cancel()
			e.cancel = nil
		}
	case spinner.TickMsg:
		if e.mode == enrRunning {
			var cmd tea.Cmd
			e.spin, cmd = e.spin.Update(msg)
			return cmd
		}
	case tea.KeyPressMsg:
		return e.key(msg)
	default:
		if e.form != nil {
			return e.updateForm(msg)
		}
	}
	return nil
}

func (e *enrollScreen) key(msg tea.KeyPressMsg) tea.Cmd {
	switch e.mode {
	case enrUser:
		// The text box keeps the focus: the cursor keys move in the list.
		switch {
		case key.Matches(msg, e.keys.Up):
			e.find.MoveCursor(-1)
			return nil
		case key.Matches(msg, e.keys.Down):
			e.find.MoveCursor(1)
			return nil
		case key.Matches(msg, e.keys.Choose):
			if u := e.find.Selected(); u != nil {
				return e.choose(u)
			}
			return nil
		}
		return e.find.Type(msg)
	case enrForm:
		if key.Matches(msg, e.keys.Cancel) {
			e.form, e.pin, e.pin2, e.passphrase, e.mode = nil, "", "", "", enrUser
			e.busy, e.err = "", nil
			return e.find.input.Focus()
		}
		return e.updateForm(msg)
	case enrRunning:
		if key.Matches(msg, e.keys.Cancel) && e.cancel != nil {
			// The station stops between steps and undoes what it did.
			e.cancel()
			e.cancelling = true
		}
	case enrDone:
		if key.Matches(msg, e.keys.Again) || key.Matches(msg, e.keys.Cancel) {
			return e.reset()
		}
	}
	return nil
}

// reset forgets the last enrollment, the random PIN with it, and starts
// a new search.
func (e *enrollScreen) reset() tea.Cmd {
	e.mode = enrUser
	e.res, e.err, e.steps, e.user = nil, nil, nil, nil
	e.pin, e.pin2 = "", ""
	return e.find.Reset()
}

// choose starts an enrollment for u: the officer must be signed in, and
// an encrypted CA key is unlocked first, once per officer session (the
// station forgets it at sign-out): an officer enrolls all day, and the
// officer card and PIN already say who is there.
func (e *enrollScreen) choose(u *directory.User) tea.Cmd {
	e.err = nil
	if e.officer == "" {
		e.err = needOfficer("enrolling a card")
		return nil
	}
	if !e.b.st.CAUnlocked() {
		return e.startPass(u)
	}
	if e.tmplErr != nil || e.tmpls == nil {
		// The templates could not be read while the key was locked.
		e.user, e.mode = u, enrForm
		return e.ready(nil)
	}
	return e.startForm(u)
}

// startPass asks for the CA key passphrase.
func (e *enrollScreen) startPass(u *directory.User) tea.Cmd {
	e.user, e.err = u, nil
	e.passphrase, e.passForm = "", true
	e.form = passphraseForm(e.s, &e.passphrase, "to issue "+u.Name+"'s certificates; asked once per sign-in, not kept")
	e.mode = enrForm
	e.sizeForm()
	return e.form.Init()
}

// ready unlocks the CA key with pass (nil when it is unlocked already)
// and loads the templates it offers.
func (e *enrollScreen) ready(pass []byte) tea.Cmd {
	e.busy = "unlocking the CA key…"
	b := e.b
	return func() tea.Msg {
		b.mu.Lock()
		defer b.mu.Unlock()
		var pf station.PassphraseFunc
		if pass != nil {
			pf = oncePassphrase(pass)
		}
		if err := b.st.UnlockCA(pf); err != nil {
			return enrollReadyMsg{err: err}
		}
		ts, err := b.st.CardTemplates(nil)
		return enrollReadyMsg{ts, err}
	}
}

func (e *enrollScreen) startForm(u *directory.User) tea.Cmd {
	e.user = u
	e.passForm = false
	if e.tmplErr != nil {
		e.err = e.tmplErr
		return nil
	}
	var topts []huh.Option[string]
	e.chosen = nil
	for _, t := range e.tmpls {
		label := fmt.Sprintf("%s (slot %v)", t.Template.Name, t.Slot)
		o := huh.NewOption(label, t.Template.Name)
		if t.Slot == card.SlotAuthentication && t.Template.Name == "smartcard-logon" {
			o = o.Selected(true)
			e.chosen = append(e.chosen, t.Template.Name)
		}
		topts = append(topts, o)
	}
	cards := cardChoices(e.local, e.present)
	if len(cards) == 0 {
		e.err = errors.New("no card to enroll: insert a blank card")
		return nil
	}
	e.reader = cards[0].Value
	e.randomPIN, e.pin, e.pin2 = false, "", ""
	e.err = nil
	e.form = huh.NewForm(
		huh.NewGroup(
			huh.NewMultiSelect[string]().Title("Certificates for "+u.Name).
				Description("space to choose; each goes in its own slot").
				Options(topts...).Value(&e.chosen).Height(len(topts)+2).
				Validate(func(v []string) error {
					if len(v) == 0 {
						return errors.New("choose at least one")
					}
					return nil
				}),
			huh.NewSelect[string]().Title("Card").Options(cards...).Value(&e.reader),
			huh.NewSelect[bool]().Title("PIN").Options(
				huh.NewOption("the card holder types it", false),
				huh.NewOption("random, shown once", true)).Value(&e.randomPIN),
		),
		huh.NewGroup(
			huh.NewInput().Title("New PIN").
				Description("6 to 8 digits; not one digit repeated, not a run like 123456").
				EchoMode(huh.EchoModePassword).CharLimit(8).Value(&e.pin).
				Validate(station.CheckPIN),
			huh.NewInput().Title("The PIN again").
				EchoMode(huh.EchoModePassword).CharLimit(8).Value(&e.pin2).
				Validate(func(s string) error {
					if s != e.pin {
						return errors.New("the two PINs differ")
					}
					return nil
				}),
		).WithHideFunc(func() bool { return e.randomPIN }),
	).WithTheme(e.s.Form).WithShowHelp(false)
	e.mode = enrForm
	e.hold = formHold{}
	e.sizeForm()
	return e.form.Init()
}

// formHold keeps the keys typed while the form moves to the next field.
// huh moves by a command (NextField, then the next group) that runs after
// the key that asked for it, so keys typed right behind enter (a paste,
// tmux send-keys) would reach the field being left and be lost; they
// wait here until the move is done, then go to the new field.
type formHold struct {
	on    bool
	field huh.Field // the field being left
	keys  []tea.KeyPressMsg
}

// movesField says whether k asks a huh field to move on (its Next,
// Submit or Prev keys).
func movesField(k tea.KeyPressMsg) bool {
	switch k.String() {
	case "enter", "tab", "shift+tab":
		return true
	}
	return false
}

func (e *enrollScreen) updateForm(msg tea.Msg) tea.Cmd {
	if e.form == nil {
		return nil
	}
	k, isKey := msg.(tea.KeyPressMsg)
	if isKey && e.hold.on {
		e.hold.keys = append(e.hold.keys, k)
		return nil
	}
	before := e.form.GetFocusedField()
	m, cmd := e.form.Update(msg)
	if f, ok := m.(*huh.Form); ok {
		e.form = f
	}
	switch e.form.State {
	case huh.StateCompleted:
		e.form, e.hold = nil, formHold{}
		if e.passForm {
			pass := []byte(e.passphrase)
			e.passphrase, e.passForm = "", false
			return e.ready(pass)
		}
		return e.run()
	case huh.StateAborted:
		e.form, e.hold = nil, formHold{}
		e.pin, e.pin2, e.passphrase, e.passForm = "", "", "", false
		e.mode = enrUser
		return e.find.input.Focus()
	}
	switch {
	case isKey:
		if cmd != nil && movesField(k) && e.form.GetFocusedField() == before && len(e.form.Errors()) == 0 {
			e.hold = formHold{on: true, field: before}
		}
	case e.hold.on && (e.form.GetFocusedField() != e.hold.field || len(e.form.Errors()) > 0):
		// Moved (or refused to): the held keys go on, in order, until
		// one of them moves again.
		keys := e.hold.keys
		e.hold = formHold{}
		cmds := []tea.Cmd{cmd}
		for i, k := range keys {
			cmds = append(cmds, e.updateForm(k))
			if e.form == nil {
				break
			}
			if e.hold.on {
				e.hold.keys = append(e.hold.keys, keys[i+1:]...)
				break
			}
		}
		return tea.Batch(cmds...)
	}
	return cmd
}

// run starts station.Enroll in a command; the steps come back as
// messages as they finish.
func (e *enrollScreen) run() tea.Cmd {
	req := station.EnrollRequest{User: e.user.Name, Templates: slices.Clone(e.chosen), Reader: e.reader,
		PIN: e.pin, RandomPIN: e.randomPIN}
	e.pin, e.pin2 = "", ""
	var open func() (card.Card, error)
	for _, l := range e.local {
		if l.Name == e.reader {
			open = l.Open
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.mode = enrRunning
	e.cancelling = false
	e.steps, e.res, e.err = nil, nil, nil
	e.started = time.Now()
	ch := make(chan tea.Msg, len(enrollSteps)+1)
	b := e.b
	go func() {
		if open != nil {
			c, err := open()
			if err != nil {
				ch <- enrollDoneMsg{err: err}
				return
			}
			req.Card = c
		}
		req.Progress = func(s station.Step) { ch <- enrollStepMsg{ch: ch, step: s} }
		res, err := b.st.Enroll(ctx, req)
		ch <- enrollDoneMsg{res, err}
	}()
	return tea.Batch(waitEnroll(ch), e.spin.Tick)
}

func waitEnroll(ch <-chan tea.Msg) tea.Cmd {
	return func() tea.Msg { return <-ch }
}

func (e *enrollScreen) sizeForm() {
	if e.form == nil {
		return
	}
	e.form.WithWidth(min(e.width-4, 70))
	if !e.passForm {
		e.form.WithHeight(max(e.height-4, 8))
	}
}

func (e *enrollScreen) SetSize(w, h int) {
	e.width, e.height = w, h
	// The heading, the officer warning, the box, the count, an error.
	e.find.SetSize(w, h-5)
	e.sizeForm()
}

func (e *enrollScreen) ShortHelp() []key.Binding {
	switch e.mode {
	case enrUser:
		return []key.Binding{e.keys.Up, e.keys.Down, e.keys.Choose}
	case enrForm:
		return []key.Binding{
			key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "next")),
			key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		}
	case enrRunning:
		return []key.Binding{e.keys.Cancel}
	}
	return []key.Binding{e.keys.Again}
}

func (e *enrollScreen) FullHelp() [][]key.Binding { return [][]key.Binding{e.ShortHelp()} }

func (e *enrollScreen) View() string {
	var b strings.Builder
	line := func(s string) { b.WriteString(s + "\n") }
	line(e.s.Heading.Render("Enroll a card"))
	if e.officer == "" && e.mode != enrDone {
		line("  " + e.s.Warn.Render("no officer signed in: sign in on the Officer screen first"))
	}
	switch e.mode {
	case enrUser:
		line(e.find.View())
		if e.err != nil {
			line("  " + e.s.Error.Render(errText(e.err)))
		}
	case enrForm:
		if e.form != nil {
			line(e.s.Dialog.Render(e.form.View()))
		}
		switch {
		case e.busy != "":
			line("  " + e.s.Muted.Render(e.busy))
		case e.err != nil:
			line("  " + e.s.Error.Render(errText(e.err)) + e.s.Muted.Render(" (esc: back)"))
		}
	case enrRunning, enrDone:
		line("  " + e.user.Name + e.s.Muted.Render(" ("+e.user.DisplayName+"), "+strings.Join(e.chosen, ", ")+", "+e.reader))
		e.stepsView(line)
		e.resultView(line)
	}
	return strings.TrimRight(b.String(), "\n")
}

func (e *enrollScreen) stepsView(line func(string)) {
	done := map[string]station.Step{}
	for _, s := range e.steps {
		done[s.Name] = s
	}
	next := true
	for _, st := range enrollSteps {
		s, ok := done[st.name]
		switch {
		case ok:
			line(fmt.Sprintf("  %s %-36s %s", e.s.OK.Render("✓"), st.label, e.s.Muted.Render(tookText(s.Took))))
		case next && e.mode == enrRunning:
			line(fmt.Sprintf("  %s %s", e.spin.View(), st.label))
			next = false
		case next && e.err != nil:
			line(fmt.Sprintf("  %s %s", e.s.Error.Render("✗"), st.label))
			next = false
		default:
			line("  " + e.s.Muted.Render("· "+st.label))
		}
	}
}

// tookText is a step's time in milliseconds.
func tookText(d time.Duration) string {
	return fmt.Sprintf("took %d ms", d.Milliseconds())
}

func (e *enrollScreen) resultView(line func(string)) {
	switch {
	case e.mode == enrRunning && e.cancelling:
		line("  " + e.s.Warn.Render("cancelling: the card finishes the step it is in, then the station undoes the enrollment…"))
	case e.mode == enrRunning:
		line("  " + e.s.Muted.Render("key generation takes 10–30 s on real cards; esc cancels between steps"))
	case e.err != nil:
		line("")
		head, cause := "Enrollment failed", e.err
		var ee *station.EnrollError
		if errors.As(e.err, &ee) {
			head += " at: " + stepLabel(ee.Step)
			cause = ee.Err
		}
		if errors.Is(e.err, context.Canceled) {
			head, cause = "Enrollment cancelled", errors.New("cancelled by the officer")
			if ee != nil {
				head += " before: " + stepLabel(ee.Step)
			}
		}
		wrap := lipgloss.NewStyle().Width(max(e.width-4, 20)).PaddingLeft(2)
		line("  " + e.s.Error.Render(head))
		line(wrap.Render(errText(cause)))
		if ee != nil && len(ee.Revoked) > 0 {
			line(wrap.Render("certificates revoked again: " + strings.Join(ee.Revoked, ", ")))
		}
		if ee != nil {
			line(wrap.Render("Card: " + ee.CardState() + "."))
		}
		line(wrap.Render(e.s.Warn.Render(enrollAdvice(e.err))))
	case e.res != nil:
		line("")
		line("  " + e.s.OK.Render(fmt.Sprintf("Card enrolled for %s: %d certificate(s)", e.res.Owner, len(e.res.Certificates))) +
			e.s.Muted.Render(" "+tookText(e.res.Total)))
		line("  card " + truncate(e.res.CardID, 60))
		for i, c := range e.res.Certificates {
			if i < len(e.res.Slots) && i < len(e.chosen) {
				line(fmt.Sprintf("  slot %v  %-18s %s  expires %s", e.res.Slots[i], e.chosen[i], shortSerial(c.SerialNumber), day(c.NotAfter)))
			}
		}
		if e.res.PIN != "" {
			line("  PIN " + e.s.Key.Render(e.res.PIN) + e.s.Warn.Render("  give it to the card holder: it is shown only now"))
		}
	}
}

func stepLabel(name string) string {
	for _, s := range enrollSteps {
		if s.name == name {
			return s.label
		}
	}
	return name
}

// enrollAdvice says what to do after a failed enrollment.
func enrollAdvice(err error) string {
	var se *station.CardStateError
	var ae *card.AuthError
	switch {
	case errors.As(err, &se):
		return "Use another card, or renew or reset this one on the Cards screen."
	case errors.Is(err, station.ErrNotSignedIn):
		return "Sign in on the Officer screen, then enroll again."
	case errors.Is(err, context.Canceled):
		return "Nothing issued was kept. Enroll again to start over."
	case errors.Is(err, card.ErrCardRemoved):
		return "The card left the reader: put it back and enroll again (it starts over)."
	case errors.As(err, &ae):
		return pinErrText(err)
	case errors.Is(err, card.ErrWeakPIN):
		return "Choose another PIN."
	}
	return "Certificates issued in this attempt were revoked; fix the cause and enroll again."
}

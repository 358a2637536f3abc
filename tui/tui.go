package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"
	"charm.land/lipgloss/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
)

// Options say what the station shows and runs.
type Options struct {
	// Station is the open data directory. The TUI does not close it.
	Station *station.Station
	// Serve, when set, runs the embedded services in this process while
	// the TUI is open; Home shows their addresses or why they failed.
	Serve *station.ServeOptions
	// Watch reports readers and cards; nil uses Station.WatchReaders.
	Watch func(ctx context.Context, events chan<- card.Event) error
	// NoColor draws without colour (NO_COLOR is set).
	NoColor bool
	// IdleLock is how long the station waits without a key press before
	// it signs the officer out: 0 is DefaultIdleLock, negative never.
	IdleLock time.Duration
	// LocalCards are cards held in this process (the demo's virtual
	// cards), offered for enrollment beside the PC/SC readers (an
	// officer's card only for sign-in). They start inserted; Home inserts
	// and removes them with a key, reported as reader events like a real
	// card's.
	LocalCards []LocalCard
	// DemoOfficerPIN, in the demo, is the demo officer card's PIN: a
	// published demo value, shown beside that card on the Officer screen so
	// that a newcomer can sign in guided by the screen alone; set, Home
	// also shows the way through the demo.
	DemoOfficerPIN string
	// Remote is the administrator's station over SSH: only the CA, Cards,
	// Directory and Audit screens, no reader monitor, no services, no
	// officer sign-in, and no card action that needs a card in a local
	// reader (suspend, reinstate and revoke stay). Serve, Watch, IdleLock
	// and LocalCards are ignored: the SSH server has its own timeouts.
	Remote bool
}

// component is one screen (or a part of one): a model that can be sized
// and that tells the help line which keys it takes.
type component interface {
	help.KeyMap
	Init() tea.Cmd
	// Update handles a message; key presses come only to the active screen.
	Update(msg tea.Msg) tea.Cmd
	View() string
	SetSize(width, height int)
	// Capturing says the screen is taking text (a search box, a form), so
	// that printable keys are not taken as global shortcuts.
	Capturing() bool
}

type screen struct {
	title string
	c     component
}

// Model is the root model: it owns the screens, routes messages to them
// and draws the frame (tabs, status line, help).
type Model struct {
	b       *backend
	styles  *Styles
	keys    globalKeys
	help    help.Model
	screens []screen
	active  int
	width   int
	height  int

	ctx    context.Context
	cancel context.CancelFunc
	watch  func(ctx context.Context, events chan<- card.Event) error
	slots  *localSlots // the in-process cards, a second source of reader events
	serve  *station.ServeOptions
	events chan tea.Msg
	// serving is done when the in-process services have stopped.
	serving sync.WaitGroup

	idle      time.Duration
	lastInput time.Time
	signedIn  bool
	signIn    int // the sign-in screen's index
}

// New makes the root model. It opens the station's databases now, so that
// the screens only read them later; a database it cannot open is reported
// on the screens that need it.
func New(opts Options) (*Model, error) {
	if opts.Station == nil {
		return nil, errors.New("tui: no station")
	}
	st := NewStyles(opts.NoColor)
	b := newBackend(opts.Station)
	ctx, cancel := context.WithCancel(context.Background())
	m := &Model{
		b: b, styles: st, keys: newGlobalKeys(), help: help.New(),
		ctx: ctx, cancel: cancel, watch: opts.Watch, serve: opts.Serve,
		events: make(chan tea.Msg, 64),
	}
	if m.watch == nil {
		m.watch = opts.Station.WatchReaders
	}
	m.slots = newLocalSlots(ctx, opts.LocalCards)
	m.idle = opts.IdleLock
	if m.idle == 0 {
		m.idle = DefaultIdleLock
	}
	m.lastInput = time.Now()
	m.help.Styles = st.Help
	m.screens = []screen{
		{"Home", newHome(b, st, opts.Serve != nil, m.slots, opts.DemoOfficerPIN != "")},
		{"CA", newCAScreen(b, st)},
		{"Directory", newDirScreen(b, st)},
		{"Officer", newSignIn(b, st, opts.DemoOfficerPIN, opts.LocalCards)},
		{"Enroll", newEnroll(b, st, opts.LocalCards)},
		{"Cards", newCards(b, st, opts.LocalCards)},
		{"Audit", newAudit(b, st)},
		{"Logon", newDiag(b, st, opts.LocalCards)},
	}
	m.signIn = 3
	if opts.Remote {
		m.remote()
	}
	return m, nil
}

// remote keeps the screens an administrator uses over SSH, where no card
// reader is at hand and no officer signs in.
func (m *Model) remote() {
	b, st := m.b, m.styles
	cards := newCards(b, st, nil)
	for _, k := range []*key.Binding{&cards.keys.Unblock, &cards.keys.Reset, &cards.keys.Renew} {
		k.SetEnabled(false)
	}
	m.screens = []screen{
		{"CA", newCAScreen(b, st)},
		{"Cards", cards},
		{"Directory", newDirScreen(b, st)},
		{"Audit", newAudit(b, st)},
	}
	m.signIn = -1
	m.idle = -1
	m.serve = nil
	m.watch = nil
}

// Run draws the station on the terminal until the user quits or ctx ends.
func Run(ctx context.Context, opts Options, progOpts ...tea.ProgramOption) error {
	m, err := New(opts)
	if err != nil {
		return err
	}
	defer m.Close()
	p := tea.NewProgram(m, append([]tea.ProgramOption{tea.WithContext(ctx)}, progOpts...)...)
	_, err = p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// Close stops what the model started (the reader monitor, the services)
// and waits for the services to stop, so that the station can be closed.
func (m *Model) Close() {
	m.cancel()
	m.serving.Wait()
}

// Init starts the screens, the reader monitor and the services.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.next()}
	if m.watch != nil {
		cmds = append(cmds, m.startWatch())
	}
	if m.serve != nil {
		cmds = append(cmds, m.startServe())
	}
	if m.idle > 0 {
		cmds = append(cmds, m.idleTick(m.idle))
	}
	for _, s := range m.screens {
		cmds = append(cmds, s.c.Init())
	}
	return tea.Batch(cmds...)
}

// next waits for the next message from the background loops.
func (m *Model) next() tea.Cmd {
	return func() tea.Msg {
		select {
		case msg := <-m.events:
			return eventMsg{msg}
		case <-m.ctx.Done():
			return nil
		}
	}
}

// eventMsg carries a message from a background loop; the root re-arms next.
type eventMsg struct{ msg tea.Msg }

func (m *Model) post(msg tea.Msg) {
	select {
	case m.events <- msg:
	case <-m.ctx.Done():
	}
}

func (m *Model) startWatch() tea.Cmd {
	return func() tea.Msg {
		go func() {
			ch := make(chan card.Event)
			done := make(chan error, 1)
			go func() { done <- m.watch(m.ctx, ch) }()
			if len(m.slots.cards) > 0 {
				// Its only error is the end of m.ctx.
				go m.slots.watch(m.ctx, ch)
			}
			for {
				select {
				case ev := <-ch:
					m.post(readerEventMsg(ev))
				case err := <-done:
					if err != nil && !errors.Is(err, context.Canceled) {
						m.post(watchErrMsg{err})
					}
					return
				}
			}
		}()
		return nil
	}
}

func (m *Model) startServe() tea.Cmd {
	opts := *m.serve
	return func() tea.Msg {
		if m.ctx.Err() != nil {
			return nil
		}
		m.serving.Add(1)
		go func() {
			defer m.serving.Done()
			want := 0
			for _, a := range []string{opts.HTTP, opts.LDAP, opts.LDAPS, opts.KDC} {
				if a != "" {
					want++
				}
			}
			// The services open the station's parts while they start; hold
			// the station until they all listen (or fail), so that nothing
			// else opens them at the same time.
			m.b.mu.Lock()
			var once sync.Once
			release := func() { once.Do(m.b.mu.Unlock) }
			n := 0
			opts.Ready = func(name, addr string) {
				m.post(serviceMsg{name: name, addr: addr})
				if n++; n == want {
					release()
				}
			}
			opts.Passphrase = nil // no prompt under the TUI
			err := m.b.st.Serve(m.ctx, opts)
			release()
			if err != nil && m.ctx.Err() == nil {
				m.post(serviceMsg{err: err})
			}
		}()
		return nil
	}
}

// Update routes messages: global keys first, then keys to the active
// screen, everything else to every screen.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.SetWidth(msg.Width)
		m.resize()
		return m, nil
	case eventMsg:
		cmd := m.broadcast(msg.msg)
		return m, tea.Batch(cmd, m.next())
	case tea.KeyPressMsg:
		m.lastInput = time.Now()
		return m, m.key(msg)
	case idleTickMsg:
		left := m.idle - time.Since(m.lastInput)
		if m.signedIn && left <= 0 {
			return m, tea.Batch(m.lock(fmt.Sprintf("no key pressed for %s", m.idle)), m.idleTick(m.idle))
		}
		return m, m.idleTick(max(left, time.Second))
	case lockMsg:
		return m, tea.Batch(m.lock(msg.why))
	case officerMsg:
		was := m.signedIn
		m.signedIn = msg.user != ""
		if was && !m.signedIn && m.signIn >= 0 {
			m.switchTo(m.signIn)
		}
		return m, m.broadcast(msg)
	case tea.MouseClickMsg:
		m.lastInput = time.Now()
		if msg.Mouse().Y == 0 {
			if i := m.tabAt(msg.Mouse().X); i >= 0 {
				m.switchTo(i)
			}
			return m, nil
		}
		return m, m.screens[m.active].c.Update(msg)
	}
	return m, m.broadcast(msg)
}

func (m *Model) idleTick(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return idleTickMsg{} })
}

// lock signs the officer out and shows the sign-in screen with why.
func (m *Model) lock(why string) tea.Cmd {
	if m.signIn < 0 {
		return nil // no officer signs in here
	}
	m.broadcast(lockMsg{why})
	m.switchTo(m.signIn)
	b := m.b
	return func() tea.Msg {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.st.SignOut()
		return officerMsg{}
	}
}

func (m *Model) broadcast(msg tea.Msg) tea.Cmd {
	var cmds []tea.Cmd
	for _, s := range m.screens {
		cmds = append(cmds, s.c.Update(msg))
	}
	return tea.Batch(cmds...)
}

func (m *Model) key(msg tea.KeyPressMsg) tea.Cmd {
	cur := m.screens[m.active].c
	capturing := cur.Capturing()
	switch {
	case key.Matches(msg, m.keys.ForceQuit):
		m.cancel()
		return tea.Quit
	case key.Matches(msg, m.keys.Lock) && m.signedIn:
		return m.lock("locked by the officer")
	case key.Matches(msg, m.keys.Next):
		m.switchTo((m.active + 1) % len(m.screens))
		return nil
	case key.Matches(msg, m.keys.Prev):
		m.switchTo((m.active + len(m.screens) - 1) % len(m.screens))
		return nil
	case !capturing && key.Matches(msg, m.keys.Quit):
		m.cancel()
		return tea.Quit
	case !capturing && key.Matches(msg, m.keys.Help):
		m.help.ShowAll = !m.help.ShowAll
		m.resize()
		return nil
	case !capturing && key.Matches(msg, m.keys.Screen):
		if i := int(msg.Code - '1'); i >= 0 && i < len(m.screens) {
			m.switchTo(i)
		}
		return nil
	}
	return cur.Update(msg)
}

func (m *Model) switchTo(i int) {
	m.active = i
	m.resize()
}

// header is one line of tabs, then a rule; the brand and realm go at the
// right of the tab line when they fit there, else into the rule.
const headerHeight = 2

// shortTitles are the tab names used when the full ones do not fit.
var shortTitles = map[string]string{"Directory": "Dir"}

func shortTitle(t string) string {
	if s, ok := shortTitles[t]; ok {
		return s
	}
	return t
}

// tab is one cell of the tab bar: a screen's tab, or a marker for the tabs
// scrolled off to one side (index is then the nearest one hidden there).
type tab struct {
	text  string
	index int
}

// tabs lays the tabs out in the window's width, at the first level that
// fits: the full titles; the short ones; numbers with only the active tab
// named; and in a very narrow window a strip around the active tab, with
// ‹ and › where tabs are scrolled off. The active tab is always shown, and
// the number keys reach every screen at every level.
func (m *Model) tabs() []tab {
	levels := []func(i int, s screen) string{
		func(i int, s screen) string { return fmt.Sprintf("%d %s", i+1, s.title) },
		func(i int, s screen) string { return fmt.Sprintf("%d %s", i+1, shortTitle(s.title)) },
		func(i int, s screen) string {
			if i == m.active {
				return fmt.Sprintf("%d %s", i+1, shortTitle(s.title))
			}
			return fmt.Sprint(i + 1)
		},
	}
	var out []tab
	for _, label := range levels {
		out = out[:0]
		w := 0
		for i, s := range m.screens {
			st := m.styles.TabInactive
			if i == m.active {
				st = m.styles.TabActive
			}
			t := st.Render(label(i, s))
			out = append(out, tab{t, i})
			w += lipgloss.Width(t)
		}
		if w <= m.width {
			return out
		}
	}
	// Scroll: grow a strip from the active tab while it fits, keeping a
	// cell on each side for the markers.
	lo, hi := m.active, m.active
	w := lipgloss.Width(out[m.active].text)
	for grew := true; grew; {
		grew = false
		if hi+1 < len(out) && w+lipgloss.Width(out[hi+1].text)+2 <= m.width {
			hi++
			w += lipgloss.Width(out[hi].text)
			grew = true
		}
		if lo > 0 && w+lipgloss.Width(out[lo-1].text)+2 <= m.width {
			lo--
			w += lipgloss.Width(out[lo].text)
			grew = true
		}
	}
	strip := slices.Clone(out[lo : hi+1])
	if w+2 > m.width {
		return strip // no room for the markers
	}
	if lo > 0 {
		strip = append([]tab{{m.styles.Muted.Render("‹"), lo - 1}}, strip...)
	}
	if hi+1 < len(out) {
		strip = append(strip, tab{m.styles.Muted.Render("›"), hi + 1})
	}
	return strip
}

func (m *Model) tabAt(x int) int {
	pos := 0
	for _, t := range m.tabs() {
		w := lipgloss.Width(t.text)
		if x >= pos && x < pos+w {
			return t.index
		}
		pos += w
	}
	return -1
}

func (m *Model) header() string {
	var b strings.Builder
	for _, t := range m.tabs() {
		b.WriteString(t.text)
	}
	// In a window too narrow for even the active tab, it is cut.
	tabs := lipgloss.NewStyle().MaxWidth(max(m.width, 1)).Render(b.String())
	brand := m.styles.Brand.Render("scstation") + " " + m.styles.Muted.Render(m.b.st.Config.Realm)
	line, rule := tabs, strings.Repeat("─", max(m.width, 0))
	bw := lipgloss.Width(brand)
	switch gap := m.width - lipgloss.Width(tabs) - bw; {
	case gap >= 1:
		line += strings.Repeat(" ", gap) + brand
	case m.width >= bw+4:
		return line + "\n" + m.styles.Rule.Render(strings.Repeat("─", m.width-bw-3)+" ") + brand + m.styles.Rule.Render(" ─")
	}
	return line + "\n" + m.styles.Rule.Render(rule)
}

func (m *Model) helpView() string {
	return m.help.View(m.helpKeys())
}

func (m *Model) resize() {
	h := m.height - headerHeight - lipgloss.Height(m.helpView())
	for _, s := range m.screens {
		s.c.SetSize(m.width, max(h, 1))
	}
}

// View draws the frame around the active screen, always exactly the
// window's size.
func (m *Model) View() tea.View {
	var v tea.View
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "scstation " + m.b.st.Config.Realm
	if m.width == 0 || m.height == 0 {
		return v
	}
	helpView := m.helpView()
	bodyH := max(m.height-headerHeight-lipgloss.Height(helpView), 1)
	body := lipgloss.NewStyle().Width(m.width).Height(bodyH).MaxHeight(bodyH).MaxWidth(m.width).
		Render(m.screens[m.active].c.View())
	v.SetContent(m.styles.App.Render(lipgloss.JoinVertical(lipgloss.Left, m.header(), body, helpView)))
	return v
}

// helpKeys merges the active screen's keys with the global ones.
func (m *Model) helpKeys() help.KeyMap {
	c := m.screens[m.active].c
	return joinedKeys{c, m.keys, c.Capturing()}
}

type joinedKeys struct {
	screen    help.KeyMap
	global    globalKeys
	capturing bool
}

func (j joinedKeys) ShortHelp() []key.Binding {
	if j.capturing {
		// Printable keys go to the screen: say how to get out.
		return append(j.screen.ShortHelp(), j.global.Next, j.global.ForceQuit)
	}
	return append(j.screen.ShortHelp(), j.global.Help, j.global.Quit)
}

func (j joinedKeys) FullHelp() [][]key.Binding {
	return append(j.screen.FullHelp(), []key.Binding{j.global.Next, j.global.Screen, j.global.Lock, j.global.Help, j.global.Quit})
}

type globalKeys struct {
	Next, Prev, Screen, Help, Quit, ForceQuit, Lock key.Binding
}

func newGlobalKeys() globalKeys {
	return globalKeys{
		Next:      key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next screen")),
		Prev:      key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous screen")),
		Screen:    key.NewBinding(key.WithKeys("1", "2", "3", "4", "5", "6", "7", "8", "9"), key.WithHelp("1-9", "go to screen")),
		Help:      key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:      key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),
		ForceQuit: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
		Lock:      key.NewBinding(key.WithKeys("ctrl+l"), key.WithHelp("ctrl+l", "lock")),
	}
}

// Messages from the background loops.
type (
	readerEventMsg card.Event
	watchErrMsg    struct{ err error }
	serviceMsg     struct {
		name, addr string
		err        error
	}
)

// backend is the TUI's handle on the station: the databases opened once,
// and a lock so that commands running at the same time do not race to
// open the station's lazily opened parts (the CA key, the KDC).
type backend struct {
	st    *station.Station
	mu    sync.Mutex
	db    *pki.DB
	dbErr error
	users directory.Directory // set by directory() once it is open
}

func newBackend(st *station.Station) *backend {
	b := &backend{st: st}
	b.db, b.dbErr = st.CADB()
	if !st.Config.Directory.External() {
		// The embedded store opens at once (a local file); an external
		// directory is connected on first use, in a command.
		b.directory()
	}
	return b
}

// directory is the station's user directory: the embedded store or the
// external one over LDAP. A failure is not kept: the next search tries
// again (an external server may come back).
func (b *backend) directory() (directory.Directory, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.users != nil {
		return b.users, nil
	}
	d, err := b.st.UserDirectory()
	if err != nil {
		return nil, err
	}
	b.users = d
	return d, nil
}

// errText is an error in plain words for the screen: the package prefixes
// that make sense in logs are dropped, and a database held by another
// process says what to do.
func errText(err error) string {
	if err == nil {
		return ""
	}
	switch {
	case errors.Is(err, pki.ErrDatabaseInUse), errors.Is(err, directory.ErrInUse):
		return "the data directory is in use by another scstation process (scstation serve?): stop it first"
	case errors.Is(err, card.ErrNoService):
		return "the PC/SC service (pcscd) is not running"
	}
	s := err.Error()
	for _, p := range []string{"station: ", "pki: ", "directory: ", "card: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return s
}

// countText says how many rows of what a list shows ("1 user", "12
// users"), and at limit what to do to see the others.
func countText(n, limit int, what, more string) string {
	switch {
	case n == limit:
		return fmt.Sprintf("the first %d %ss: %s", n, what, more)
	case n == 1:
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// needOfficer is what the screen says in place of an action that needs a
// signed-in officer while nobody is signed in (the station would refuse
// it with station.ErrNotSignedIn).
func needOfficer(what string) error {
	return fmt.Errorf("%s needs a signed-in enrollment officer: sign in with the officer card on the Officer screen", what)
}

// passphraseForm asks for the CA key passphrase, masked, into value; why
// says what it is for.
func passphraseForm(s *Styles, value *string, why string) *huh.Form {
	return huh.NewForm(huh.NewGroup(
		huh.NewInput().Title("CA key passphrase").Description(why).
			EchoMode(huh.EchoModePassword).Value(value).
			Validate(func(s string) error {
				if s == "" {
					return errors.New("enter the passphrase, or esc to cancel")
				}
				return nil
			}),
	)).WithTheme(s.Form).WithShowHelp(false)
}

// oncePassphrase hands pass to the station once (the station wipes it).
func oncePassphrase(pass []byte) station.PassphraseFunc {
	return func(bool) ([]byte, error) {
		p := pass
		pass = nil
		if p == nil {
			return nil, errors.New("tui: the passphrase was already used")
		}
		return p, nil
	}
}

// NoColorFromEnv reports whether the environment asks for a station
// without colour (NO_COLOR set and not empty, see https://no-color.org).
func NoColorFromEnv() bool { return os.Getenv("NO_COLOR") != "" }

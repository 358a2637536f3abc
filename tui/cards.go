package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/inventory"
)

type cardsMode int

const (
	cardsList cardsMode = iota
	cardsDetail
	cardsForm
)

// cardAction is what the open form will do.
type cardAction int

const (
	actSuspend cardAction = iota + 1
	actReinstate
	actRevoke
	actUnblock
	actReset
	actRenew
)

var cardActionNames = map[cardAction]string{
	actSuspend: "suspending a card", actReinstate: "reinstating a card", actRevoke: "revoking a card",
	actUnblock: "unblocking a PIN", actReset: "resetting a card", actRenew: "renewing a card",
}

var cardStates = []inventory.State{"", inventory.Active, inventory.Suspended, inventory.Revoked, inventory.Uninitialized}

// cardsScreen is the card inventory: filter and sort, one card's details
// and history, and the lifecycle actions, each asked of the station.
type cardsScreen struct {
	b      *backend
	s      *Styles
	local  []LocalCard
	width  int
	height int
	keys   cardsKeys
	mode   cardsMode

	present map[string]bool
	officer bool // an officer is signed in

	owner   textinput.Model
	state   int // index in cardStates
	byOwner bool
	seq     int
	cards   []*inventory.Card
	cursor  int
	err     error // of the last action
	listErr error
	status  string
	busy    string

	form    *huh.Form
	action  cardAction
	confirm bool
	reason  pki.RevocationReason
	reader  string
	random  bool
	pin     string
	// passphrase is the CA key's, asked with a renewal while the key is
	// locked.
	passphrase string
}

type cardsKeys struct {
	Up, Down, Open, Back, Filter, State, Sort                  key.Binding
	Suspend, Reinstate, Revoke, Unblock, Reset, Renew, Refresh key.Binding
}

type (
	cardsMsg struct {
		seq   int
		cards []*inventory.Card
		err   error
	}
	cardActionMsg struct {
		status string
		err    error
	}
)

func newCards(b *backend, s *Styles, local []LocalCard) *cardsScreen {
	k := func(keys, help string) key.Binding {
		return key.NewBinding(key.WithKeys(keys), key.WithHelp(keys, help))
	}
	c := &cardsScreen{b: b, s: s, local: local, present: map[string]bool{}, keys: cardsKeys{
		Up: key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")), Down: key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Open: k("enter", "details"), Back: k("esc", "back"), Filter: k("/", "owner filter"), State: k("s", "state filter"),
		Sort: k("o", "sort"), Suspend: k("S", "suspend"), Reinstate: k("R", "reinstate"), Revoke: k("X", "revoke"),
		Unblock: k("u", "unblock PIN"), Reset: k("Z", "reset"), Renew: k("n", "renew"), Refresh: k("r", "refresh"),
	}}
	c.owner = textinput.New()
	c.owner.Prompt = "owner: "
	c.owner.CharLimit = 64
	c.owner.SetWidth(20)
	c.owner.SetStyles(s.Input)
	return c
}

func (c *cardsScreen) Init() tea.Cmd { return c.load() }

func (c *cardsScreen) Capturing() bool { return c.owner.Focused() || c.mode == cardsForm }

func (c *cardsScreen) load() tea.Cmd {
	c.seq++
	seq, b := c.seq, c.b
	q := inventory.Query{OwnerLike: strings.TrimSpace(c.owner.Value()), State: cardStates[c.state]}
	byOwner := c.byOwner
	return func() tea.Msg {
		inv, err := b.st.Inventory()
		if err != nil {
			return cardsMsg{seq: seq, err: err}
		}
		cards, err := inv.List(q)
		if byOwner {
			slices.SortStableFunc(cards, func(a, b *inventory.Card) int { return strings.Compare(a.Owner, b.Owner) })
		} else {
			slices.SortStableFunc(cards, func(a, b *inventory.Card) int { return b.Updated.Compare(a.Updated) })
		}
		return cardsMsg{seq, cards, err}
	}
}

func (c *cardsScreen) selected() *inventory.Card {
	if c.cursor < len(c.cards) {
		return c.cards[c.cursor]
	}
	return nil
}

func (c *cardsScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case readerEventMsg:
		trackCard(c.present, c.local, card.Event(msg))
	case officerMsg:
		c.officer = msg.user != ""
		if msg.user == "" && strings.Contains(c.status, "new PIN") {
			// Locked: a random PIN on the screen goes with the officer.
			c.status = ""
		}
	case cardsMsg:
		if msg.seq != c.seq {
			return nil // an older query
		}
		id := ""
		if sel := c.selected(); sel != nil {
			id = sel.ID
		}
		c.cards, c.listErr = msg.cards, msg.err
		c.cursor = max(0, min(c.cursor, len(c.cards)-1))
		for i, cd := range c.cards {
			if cd.ID == id {
				c.cursor = i
			}
		}
	case enrollDoneMsg:
		return c.load()
	case cardActionMsg:
		c.busy = ""
		c.status, c.err = msg.status, msg.err
		return c.load()
	case tea.KeyPressMsg:
		return c.key(msg)
	default:
		if c.form != nil {
			return c.updateForm(msg)
		}
	}
	return nil
}

func (c *cardsScreen) key(msg tea.KeyPressMsg) tea.Cmd {
	if c.mode == cardsForm {
		if key.Matches(msg, c.keys.Back) {
			c.form, c.pin, c.passphrase, c.mode, c.status = nil, "", "", cardsDetail, "cancelled"
			return nil
		}
		return c.updateForm(msg)
	}
	if c.owner.Focused() {
		switch msg.String() {
		case "enter", "esc":
			c.owner.Blur()
			return nil
		}
		var cmd tea.Cmd
		c.owner, cmd = c.owner.Update(msg)
		return tea.Batch(cmd, c.load())
	}
	if c.busy != "" {
		return nil
	}
	sel := c.selected()
	switch {
	case key.Matches(msg, c.keys.Up):
		c.cursor = max(c.cursor-1, 0)
	case key.Matches(msg, c.keys.Down):
		c.cursor = max(0, min(c.cursor+1, len(c.cards)-1))
	case key.Matches(msg, c.keys.Open) && sel != nil:
		c.mode = cardsDetail
	case key.Matches(msg, c.keys.Back):
		c.mode = cardsList
	case key.Matches(msg, c.keys.Filter) && c.mode == cardsList:
		return c.owner.Focus()
	case key.Matches(msg, c.keys.State) && c.mode == cardsList:
		c.state = (c.state + 1) % len(cardStates)
		return c.load()
	case key.Matches(msg, c.keys.Sort) && c.mode == cardsList:
		c.byOwner = !c.byOwner
		return c.load()
	case key.Matches(msg, c.keys.Refresh):
		return c.load()
	case sel == nil:
	case key.Matches(msg, c.keys.Suspend):
		return c.startForm(actSuspend, sel)
	case key.Matches(msg, c.keys.Reinstate):
		return c.startForm(actReinstate, sel)
	case key.Matches(msg, c.keys.Revoke):
		return c.startForm(actRevoke, sel)
	case key.Matches(msg, c.keys.Unblock):
		return c.startForm(actUnblock, sel)
	case key.Matches(msg, c.keys.Reset):
		return c.startForm(actReset, sel)
	case key.Matches(msg, c.keys.Renew):
		return c.startForm(actRenew, sel)
	}
	return nil
}

// cardChoices are the cards an action can use: the inserted local ones
// (not an officer's), then the PC/SC readers with a card.
func cardChoices(local []LocalCard, present map[string]bool) []huh.Option[string] {
	var opts []huh.Option[string]
	for _, l := range local {
		if present[l.Name] && l.Officer == "" {
			opts = append(opts, huh.NewOption(l.Name, l.Name))
		}
	}
	var readers []string
	for r, ok := range present {
		if ok && !isLocal(local, r) {
			readers = append(readers, r)
		}
	}
	slices.Sort(readers)
	for _, r := range readers {
		opts = append(opts, huh.NewOption("card in "+r, r))
	}
	return opts
}

// cardRef connects the chosen card: a local one is opened here, a PC/SC
// reader by the station.
func cardRef(local []LocalCard, name string) (station.CardRef, error) {
	for _, l := range local {
		if l.Name == name {
			cd, err := l.Open()
			return station.CardRef{Reader: name, Card: cd}, err
		}
	}
	return station.CardRef{Reader: name}, nil
}

func (c *cardsScreen) startForm(a cardAction, sel *inventory.Card) tea.Cmd {
	c.action, c.confirm, c.random, c.pin, c.status, c.err = a, false, false, "", "", nil
	// The actions on the card always need the officer (the station asks
	// the officer card for them); the others when the station says so.
	onCard := a == actUnblock || a == actReset || a == actRenew
	if !c.officer && (onCard || c.b.st.RequireOfficer) {
		c.err = needOfficer(cardActionNames[a])
		return nil
	}
	c.reason = pki.ReasonKeyCompromise
	who := fmt.Sprintf("card %s of %s", truncate(sel.ID, 20), sel.Owner)
	cards := cardChoices(c.local, c.present)
	needCard := a == actUnblock || a == actReset || a == actRenew
	if needCard {
		if len(cards) == 0 {
			c.err = errors.New("this needs the card: insert it")
			return nil
		}
		c.reader = cards[0].Value
	}
	cardSelect := huh.NewSelect[string]().Title("Where is the card?").Options(cards...).Value(&c.reader)
	var fields []huh.Field
	switch a {
	case actSuspend:
		fields = append(fields, huh.NewConfirm().Title("Suspend "+who+"?").
			Description("Its certificates go on hold and stop working until it is reinstated.").
			Affirmative("Suspend").Negative("Keep").Value(&c.confirm))
	case actReinstate:
		fields = append(fields, huh.NewConfirm().Title("Reinstate "+who+"?").
			Description("Its certificates are released from hold.").
			Affirmative("Reinstate").Negative("Keep").Value(&c.confirm))
	case actRevoke:
		var opts []huh.Option[pki.RevocationReason]
		for _, r := range revokeReasons {
			if r != pki.ReasonCertificateHold {
				opts = append(opts, huh.NewOption(reasonLabel(r), r))
			}
		}
		fields = append(fields,
			huh.NewSelect[pki.RevocationReason]().Title("Revoke "+who).Description("Why?").Options(opts...).Value(&c.reason),
			huh.NewConfirm().Title("Revoke the card and all its certificates? This cannot be undone.").
				Affirmative("Revoke").Negative("Keep").Value(&c.confirm))
	case actUnblock:
		fields = append(fields, cardSelect,
			huh.NewSelect[bool]().Title("New PIN").Options(
				huh.NewOption("the card holder types it", false),
				huh.NewOption("random, shown once", true)).Value(&c.random),
			huh.NewInput().Title("New PIN (the holder types it; ignored for random)").
				Description("6 to 8 digits; not one digit repeated, not a run like 123456").
				EchoMode(huh.EchoModePassword).CharLimit(8).Value(&c.pin).
				Validate(func(s string) error {
					if c.random {
						return nil
					}
					return station.CheckPIN(s)
				}))
	case actReset:
		fields = append(fields, cardSelect, huh.NewConfirm().Title("Reset "+who+"?").
			Description("Its certificates are revoked and the card is erased to factory state.").
			Affirmative("Reset").Negative("Keep").Value(&c.confirm))
	case actRenew:
		fields = append(fields, cardSelect,
			huh.NewInput().Title("The card holder's PIN").Description("the new keys sign their requests").
				EchoMode(huh.EchoModePassword).CharLimit(8).Value(&c.pin).
				Validate(func(s string) error {
					if s == "" {
						return errors.New("the holder types their PIN")
					}
					return nil
				}))
		if !c.b.st.CAUnlocked() {
			// The CA issues the new certificates; its key is unlocked
			// for the rest of the officer session.
			fields = append(fields, huh.NewInput().Title("CA key passphrase").
				Description("to issue the new certificates; asked once per sign-in, not kept").
				EchoMode(huh.EchoModePassword).Value(&c.passphrase).
				Validate(func(s string) error {
					if s == "" {
						return errors.New("enter the passphrase, or esc to cancel")
					}
					return nil
				}))
		}
	}
	c.form = huh.NewForm(huh.NewGroup(fields...)).WithTheme(c.s.Form).WithShowHelp(false)
	c.form.WithWidth(min(c.width-4, 70))
	c.mode = cardsForm
	return c.form.Init()
}

func (c *cardsScreen) updateForm(msg tea.Msg) tea.Cmd {
	m, cmd := c.form.Update(msg)
	if f, ok := m.(*huh.Form); ok {
		c.form = f
	}
	switch c.form.State {
	case huh.StateCompleted:
		c.form = nil
		c.mode = cardsDetail
		pin := c.pin
		c.pin = ""
		var pass []byte
		if c.passphrase != "" {
			pass = []byte(c.passphrase)
			c.passphrase = ""
		}
		needsYes := c.action != actUnblock && c.action != actRenew
		if needsYes && !c.confirm {
			c.status = "nothing changed"
			return nil
		}
		return c.run(c.action, c.selected(), pin, pass)
	case huh.StateAborted:
		c.form = nil
		c.pin, c.passphrase = "", ""
		c.mode = cardsDetail
		c.status = "cancelled"
		return nil
	}
	return cmd
}

// run asks the station to do the action; pass, when not nil, unlocks the
// CA key first.
func (c *cardsScreen) run(a cardAction, sel *inventory.Card, pin string, pass []byte) tea.Cmd {
	if sel == nil {
		return nil
	}
	b, local, reader, reason, random := c.b, c.local, c.reader, c.reason, c.random
	id := sel.ID
	c.busy = "working…"
	return func() tea.Msg {
		ctx := context.Background()
		var (
			res *station.CardResult
			err error
		)
		switch a {
		case actSuspend:
			res, err = b.st.SuspendCard(ctx, id, "suspended at the station")
		case actReinstate:
			res, err = b.st.ReinstateCard(ctx, id, "reinstated at the station")
		case actRevoke:
			res, err = b.st.RevokeCard(ctx, id, reason)
		case actReset, actUnblock, actRenew:
			ref, rerr := cardRef(local, reader)
			if rerr != nil {
				return cardActionMsg{err: rerr}
			}
			switch a {
			case actReset:
				res, err = b.st.ResetCard(ctx, ref, "reset at the station")
			case actUnblock:
				req := station.UnblockRequest{CardRef: ref, PIN: pin, RandomPIN: random}
				ur, err := b.st.UnblockCard(ctx, req)
				if err != nil {
					return cardActionMsg{err: err}
				}
				if ur.PIN != "" {
					return cardActionMsg{status: "PIN set: new PIN " + ur.PIN + " (give it to the card holder: shown only now)"}
				}
				return cardActionMsg{status: "PIN set"}
			case actRenew:
				if pass != nil {
					b.mu.Lock()
					err := b.st.UnlockCA(oncePassphrase(pass))
					b.mu.Unlock()
					if err != nil {
						if ref.Card != nil {
							ref.Card.Close()
						}
						return cardActionMsg{err: err}
					}
				}
				er, err := b.st.RenewCard(ctx, station.RenewRequest{CardRef: ref, PIN: pin})
				if err != nil {
					return cardActionMsg{err: err}
				}
				return cardActionMsg{status: fmt.Sprintf("renewed: %d new certificate(s)", len(er.Certificates))}
			}
		}
		if err != nil {
			return cardActionMsg{err: err}
		}
		s := fmt.Sprintf("card %s is %s", truncate(id, 20), res.Card.State)
		if len(res.Changed) > 0 {
			s += fmt.Sprintf(", %d certificate(s) changed", len(res.Changed))
		}
		if res.CRLErr != nil {
			if b.st.CAUnlocked() {
				s += "; CRL not published: " + errText(res.CRLErr)
			} else {
				s += "; no CRL published (the CA key is locked): publish it on the CA screen (p)"
			}
		}
		return cardActionMsg{status: s}
	}
}

func (c *cardsScreen) SetSize(w, h int) {
	c.width, c.height = w, h
	if c.form != nil {
		c.form.WithWidth(min(w-4, 70))
	}
}

func (c *cardsScreen) ShortHelp() []key.Binding {
	switch c.mode {
	case cardsForm:
		return []key.Binding{key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel"))}
	case cardsDetail:
		return []key.Binding{c.keys.Back, c.keys.Suspend, c.keys.Revoke, c.keys.Unblock}
	}
	if c.owner.Focused() {
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "done"))}
	}
	return []key.Binding{c.keys.Open, c.keys.Filter, c.keys.State, c.keys.Sort}
}

func (c *cardsScreen) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{c.keys.Up, c.keys.Down, c.keys.Open, c.keys.Back},
		{c.keys.Filter, c.keys.State, c.keys.Sort, c.keys.Refresh},
		{c.keys.Suspend, c.keys.Reinstate, c.keys.Revoke},
		{c.keys.Unblock, c.keys.Reset, c.keys.Renew},
	}
}

func (c *cardsScreen) View() string {
	var b strings.Builder
	line := func(s string) { b.WriteString(s + "\n") }
	switch c.mode {
	case cardsForm:
		if c.form != nil {
			line(c.s.Dialog.Render(c.form.View()))
		}
	case cardsDetail:
		c.detailView(line)
	default:
		c.listView(line)
	}
	switch {
	case c.busy != "":
		line(c.s.Muted.Render(c.busy))
	case c.err != nil:
		line(c.s.Error.Render(errText(c.err)))
	case c.listErr != nil:
		line(c.s.Error.Render(errText(c.listErr)))
	case c.status != "":
		line(c.s.Status.Render(c.status))
	}
	return strings.TrimRight(b.String(), "\n")
}

func (c *cardsScreen) listView(line func(string)) {
	state := "any state"
	if s := cardStates[c.state]; s != "" {
		state = "state " + string(s)
	}
	sort := "newest first"
	if c.byOwner {
		sort = "by owner"
	}
	line(c.s.Heading.Render("Cards") + "  " + c.owner.View() + c.s.Muted.Render("  "+state+", "+sort+fmt.Sprintf(", %d card(s)", len(c.cards))))
	line(c.s.Label.Render(fmt.Sprintf("  %-22s %-12s %-14s %-6s %s", "card", "owner", "state", "certs", "updated")))
	if len(c.cards) == 0 {
		line("  " + c.s.Muted.Render("no card matches"))
	}
	rows := max(c.height-4, 3)
	start := max(0, c.cursor-rows+1)
	for i := start; i < len(c.cards) && i < start+rows; i++ {
		cd := c.cards[i]
		text := fmt.Sprintf("%-22s %-12s %-14s %-6d %s", truncate(cd.ID, 22), truncate(cd.Owner, 12), cd.State, len(cd.Certificates), day(cd.Updated))
		if i == c.cursor {
			line("> " + c.s.Key.Render(text))
		} else {
			line("  " + text)
		}
	}
}

func (c *cardsScreen) detailView(line func(string)) {
	cd := c.selected()
	if cd == nil {
		line(c.s.Muted.Render("no card"))
		return
	}
	kv := func(k, v string) { line(c.s.Label.Render(fmt.Sprintf("%-10s", k)) + " " + v) }
	line(c.s.Heading.Render("Card " + truncate(cd.ID, 60)))
	kv("owner", cd.Owner)
	kv("state", string(cd.State))
	kv("serial", fmt.Sprintf("%d", cd.Serial))
	kv("reader", truncate(readerLabel(cd.Reader), 60))
	for _, r := range cd.Certificates {
		kv("slot "+r.Slot, fmt.Sprintf("%-18s %s  expires %s", r.Template, truncate(r.Serial, 16), day(r.NotAfter)))
	}
	line(c.s.Heading.Render("History"))
	hist := cd.History
	if n := max(c.height-8-len(cd.Certificates), 2); len(hist) > n {
		hist = hist[len(hist)-n:]
	}
	for _, e := range hist {
		line(fmt.Sprintf("  %s %s  %-14s %s", day(e.Time), e.Time.UTC().Format("15:04"), e.Action, truncate(e.Actor+": "+e.Detail, max(c.width-36, 10))))
	}
}

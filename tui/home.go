package tui

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station"
)

// home is the first screen: readers and cards as they come and go, the
// embedded services, the CA's validity and CRL, and the officer.
type home struct {
	b      *backend
	s      *Styles
	width  int
	height int

	pcscKnown bool
	pcscErr   error
	readers   []string
	present   map[string]bool
	watchErr  error

	serving  bool
	services []serviceMsg
	serveErr error

	ca    *caStatus
	caErr error

	officer *officerMsg

	// local are the cards held in process (the demo's virtual cards), in
	// slots that insert and remove them; cursor is the chosen one. demo
	// shows a newcomer the way through the demo.
	slots  *localSlots
	local  []LocalCard
	cursor int
	demo   bool

	refresh, up, down, insert key.Binding
}

// caStatus is what Home shows about the CA.
type caStatus struct {
	cert      *x509.Certificate
	encrypted bool
	state     station.CAState
	crl       *x509.RevocationList
	crlErr    error
	now       time.Time
}

// officerMsg is who is signed in, as the station says.
type officerMsg struct {
	user, reader string
	err          error // other than ErrNotSignedIn
}

type caStatusMsg struct {
	st  *caStatus
	err error
}

func newHome(b *backend, s *Styles, serving bool, slots *localSlots, demo bool) *home {
	return &home{
		b: b, s: s, serving: serving, present: map[string]bool{}, slots: slots, local: slots.cards, demo: demo,
		refresh: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "refresh")),
		up:      key.NewBinding(key.WithKeys("up"), key.WithHelp("↑/↓", "virtual card")),
		down:    key.NewBinding(key.WithKeys("down")),
		insert:  key.NewBinding(key.WithKeys("i"), key.WithHelp("i", "insert/remove it")),
	}
}

// toggle inserts or removes the chosen in-process card; the change comes
// back as a reader event, as a real card's would.
func (h *home) toggle() tea.Cmd {
	if len(h.local) == 0 {
		return nil
	}
	slots, name := h.slots, h.local[h.cursor].Name
	return func() tea.Msg {
		slots.toggle(name)
		return nil
	}
}

func (h *home) Init() tea.Cmd { return tea.Batch(h.loadCA(), h.loadOfficer()) }

// loadOfficer asks the station who is signed in (which checks that the
// officer's card is still there).
func (h *home) loadOfficer() tea.Cmd {
	b := h.b
	return func() tea.Msg {
		o, err := b.st.Officer()
		switch {
		case errors.Is(err, station.ErrNotSignedIn):
			return officerMsg{}
		case err != nil:
			return officerMsg{err: err}
		}
		return officerMsg{user: o.User, reader: o.Reader}
	}
}

// cardGone tells the station a card left its reader (the officer's ends
// the session), then reads the officer again.
func (h *home) cardGone(reader string) tea.Cmd {
	b := h.b
	return func() tea.Msg {
		b.st.CardGone(reader)
		return h.loadOfficer()()
	}
}

func (h *home) loadCA() tea.Cmd {
	b := h.b
	return func() tea.Msg {
		b.mu.Lock()
		defer b.mu.Unlock()
		st := &caStatus{encrypted: b.st.CAKeyEncrypted(), state: b.st.CAState(), now: b.st.Now()}
		if st.state != station.CAReady {
			return caStatusMsg{st: st}
		}
		chain, err := b.st.CAChain()
		if err != nil {
			return caStatusMsg{err: err}
		}
		st.cert = chain[0]
		st.crl, st.crlErr = b.st.CurrentCRL()
		return caStatusMsg{st: st}
	}
}

func (h *home) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case caStatusMsg:
		h.ca, h.caErr = msg.st, msg.err
	case crlPublishedMsg:
		return h.loadCA()
	case officerMsg:
		h.officer = &msg
	case readerEventMsg:
		h.event(card.Event(msg))
		if msg.Kind == card.CardRemoved {
			return h.cardGone(msg.Reader)
		}
	case watchErrMsg:
		h.watchErr = msg.err
	case serviceMsg:
		if msg.err != nil {
			h.serveErr = msg.err
		} else {
			h.services = append(h.services, msg)
		}
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, h.refresh):
			return h.loadCA()
		case key.Matches(msg, h.up):
			h.cursor = max(h.cursor-1, 0)
		case key.Matches(msg, h.down):
			h.cursor = min(h.cursor+1, max(len(h.local)-1, 0))
		case key.Matches(msg, h.insert):
			return h.toggle()
		}
	}
	return nil
}

func (h *home) event(ev card.Event) {
	switch ev.Kind {
	case card.ServiceUp:
		h.pcscKnown, h.pcscErr = true, nil
	case card.ServiceDown:
		h.pcscKnown, h.pcscErr = true, ev.Err
		h.readers = nil
		trackCard(h.present, h.local, ev)
	case card.ReaderAdded:
		if !slices.Contains(h.readers, ev.Reader) {
			h.readers = append(h.readers, ev.Reader)
			slices.Sort(h.readers)
		}
	case card.ReaderRemoved:
		h.readers = slices.DeleteFunc(h.readers, func(r string) bool { return r == ev.Reader })
		delete(h.present, ev.Reader)
	case card.CardInserted:
		h.present[ev.Reader] = true
	case card.CardRemoved:
		h.present[ev.Reader] = false
	}
}

func (h *home) SetSize(w, hh int) { h.width, h.height = w, hh }
func (h *home) Capturing() bool   { return false }

func (h *home) ShortHelp() []key.Binding {
	if len(h.local) > 0 {
		return []key.Binding{h.up, h.insert, h.refresh}
	}
	return []key.Binding{h.refresh}
}
func (h *home) FullHelp() [][]key.Binding { return [][]key.Binding{h.ShortHelp()} }

const labelWidth = 22

func (h *home) row(label, value string) string {
	l := truncate(label, labelWidth-3)
	return "  " + h.s.Label.Render(l+strings.Repeat(" ", labelWidth-2-len([]rune(l)))) + value
}

func (h *home) View() string {
	var b strings.Builder
	line := func(s string) { b.WriteString(s + "\n") }

	if h.demo {
		line(h.s.Key.Render("Demo:") + " 4 Officer sign in · 5 Enroll alice · 8 Logon test logon and mail")
		line("")
	}
	line(h.s.Heading.Render("Readers and cards"))
	for i, l := range h.local {
		what := "virtual card"
		if l.Officer != "" {
			what = "officer's virtual card"
		}
		state := h.s.OK.Render(what + ", inserted")
		if !h.present[l.Name] {
			state = h.s.Muted.Render(what + ", removed (i inserts it)")
		}
		row := h.row(strings.TrimPrefix(readerLabel(l.Name), "virtual card "), state)
		if i == h.cursor {
			row = h.s.Key.Render(">") + row[1:]
		}
		line(row)
	}
	switch {
	case h.watchErr != nil:
		line("  " + h.s.Error.Render(errText(h.watchErr)))
	case !h.pcscKnown:
		line("  " + h.s.Muted.Render("looking for readers…"))
	case h.pcscErr != nil:
		line("  " + h.s.Warn.Render(errText(h.pcscErr)) + h.s.Muted.Render(" — retrying"))
	case len(h.readers) == 0:
		line("  " + h.s.Muted.Render("no reader connected"))
	default:
		for _, r := range h.readers {
			state := h.s.Muted.Render("empty")
			if h.present[r] {
				state = h.s.OK.Render("card present")
			}
			line(h.row(r, state))
		}
	}
	line("")

	line(h.s.Heading.Render("Certificate authority"))
	switch {
	case h.caErr != nil:
		line("  " + h.s.Error.Render(errText(h.caErr)))
	case h.ca == nil:
		line("  " + h.s.Muted.Render("reading…"))
	case h.ca.state == station.CAMissing:
		line("  " + h.s.Warn.Render("no CA yet: run scstation ca init"))
	case h.ca.state == station.CAPending:
		line("  " + h.s.Warn.Render("waiting for the parent CA's certificate (scstation ca install-cert)"))
	default:
		c := h.ca.cert
		line(h.row("name", c.Subject.CommonName))
		line(h.row("valid", fmt.Sprintf("%s to %s  %s", day(c.NotBefore), day(c.NotAfter), h.validity(c.NotBefore, c.NotAfter))))
		if h.ca.encrypted {
			line(h.row("key", "encrypted (asks for the passphrase)"))
		} else {
			line(h.row("key", h.s.Warn.Render("not encrypted")))
		}
		line(h.row("CRL", h.crlLine()))
	}
	line("")

	line(h.s.Heading.Render("Services"))
	switch {
	case !h.serving:
		line("  " + h.s.Muted.Render("not started by this station (scstation serve runs them)"))
	default:
		for _, svc := range h.services {
			line(h.row(svc.name, h.s.OK.Render("listening on "+svc.addr)))
		}
		if h.serveErr != nil {
			line("  " + h.s.Error.Render(errText(h.serveErr)))
		} else if len(h.services) == 0 {
			line("  " + h.s.Muted.Render("starting…"))
		}
	}
	line("")
	line(h.s.Heading.Render("Officer"))
	switch o := h.officer; {
	case o == nil:
		line(h.row("signed in", h.s.Muted.Render("…")))
	case o.err != nil:
		line(h.row("signed in", h.s.Error.Render(errText(o.err))))
	case o.user == "":
		line(h.row("signed in", h.s.Muted.Render("not signed in")))
	default:
		line(h.row("signed in", h.s.OK.Render(o.user)+h.s.Muted.Render(" ("+readerLabel(o.reader)+")")))
	}
	out := strings.TrimRight(b.String(), "\n")
	if h.height > 0 && strings.Count(out, "\n")+1 > h.height {
		// Short window: drop the blank lines between sections first.
		out = strings.ReplaceAll(out, "\n\n", "\n")
	}
	return out
}

func (h *home) validity(from, to time.Time) string {
	now := h.ca.now
	switch {
	case now.Before(from):
		return h.s.Error.Render("not yet valid")
	case now.After(to):
		return h.s.Error.Render("expired")
	case to.Sub(now) < 30*24*time.Hour:
		return h.s.Warn.Render(fmt.Sprintf("expires in %s", days(to.Sub(now))))
	}
	return h.s.OK.Render("valid")
}

func (h *home) crlLine() string {
	switch {
	case h.ca.crlErr != nil:
		return h.s.Error.Render(errText(h.ca.crlErr))
	case h.ca.crl == nil:
		return h.s.Warn.Render("not published yet (CA screen: p)")
	}
	crl := h.ca.crl
	next := crl.NextUpdate
	s := fmt.Sprintf("#%s, %d revoked, next update %s", crl.Number, len(crl.RevokedCertificateEntries), day(next))
	if left := next.Sub(h.ca.now); left < 0 {
		return s + " " + h.s.Error.Render("(overdue)")
	} else {
		return s + " " + h.s.Muted.Render("(in "+days(left)+")")
	}
}

// day is a date as the station shows it.
func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// days is a duration in whole days (rounded), or hours below a day.
func days(d time.Duration) string {
	if d < 24*time.Hour {
		hh := int(d.Round(time.Hour) / time.Hour)
		if hh == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", hh)
	}
	n := int((d + 12*time.Hour) / (24 * time.Hour))
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// truncate cuts s to n cells with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}

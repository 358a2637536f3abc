package tui

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

// blankCard makes a factory-fresh virtual card in a state file and offers
// it to the station in process, as the demo does.
func blankCard(tb testing.TB, name string, serial uint32) (LocalCard, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name+".json")
	vs, err := virtual.NewState(serial)
	if err != nil {
		tb.Fatal(err)
	}
	if err := vs.Save(path); err != nil {
		tb.Fatal(err)
	}
	return LocalCard{Name: "virtual card " + name, Open: func() (card.Card, error) {
		vs, err := virtual.LoadState(path)
		if err != nil {
			return nil, err
		}
		return virtual.New(vs, path), nil
	}}, path
}

// randomPIN takes the chosen templates and the first card in the Enroll
// form, and a random PIN, which starts the enrollment.
func (h *harness) randomPIN() {
	h.t.Helper()
	h.key(tea.KeyEnter) // templates
	h.waitFor("┃ Card")
	h.key(tea.KeyEnter)
	h.waitFor("┃ PIN")
	h.key(tea.KeyDown) // random PIN
	h.waitFor("> random")
	h.key(tea.KeyEnter)
}

var shownPIN = regexp.MustCompile(`PIN (\d{6,8})\b`)

// TestEnrollAlice signs the demo officer in and enrolls alice on a blank
// virtual card with a logon and an S/MIME signing certificate and a
// random PIN, through the screens; then checks the inventory, the CA's
// records, and that the PIN shown works on the card.
func TestEnrollAlice(t *testing.T) {
	st := demoStation(t)
	blank, path := blankCard(t, "blank-1", 20261124)
	h := startWith(t, Options{Station: st, LocalCards: []LocalCard{blank}})
	h.signInDemo()
	h.key('5')
	h.waitFor("Enroll a card", "user:")
	h.typ("ali")
	t.Run("search", func(t *testing.T) {
		h.t = t
		h.golden("alice", "Alice Smith", "1 user")
	})
	h.t = t
	h.key(tea.KeyEnter)
	h.waitFor("Certificates for alice")
	for range 3 {
		h.key(tea.KeyDown)
	}
	h.waitFor("> • smime-signing")
	h.key(tea.KeySpace)
	t.Run("form", func(t *testing.T) {
		h.t = t
		h.golden("> ✓ smime-signing", "✓ smartcard-logon", "virtual card blank-1")
	})
	h.t = t
	h.randomPIN()
	t.Run("result", func(t *testing.T) {
		h.t = t
		h.golden("Card enrolled for alice: 2 certificate(s)", "shown only now")
	})
	h.t = t
	m := shownPIN.FindStringSubmatch(h.p.screen())
	if m == nil {
		t.Fatal("no PIN on the screen")
	}
	pin := m[1]
	// Locking takes the PIN off the screen.
	h.tm.Send(tea.KeyPressMsg{Code: 'l', Mod: tea.ModCtrl})
	h.key('4')
	h.waitFor("locked: locked by the officer")
	h.key(tea.KeyTab)
	h.waitFor("Enroll a card", "user:")
	if strings.Contains(h.p.screen(), pin) {
		t.Error("the random PIN is still on the screen after the lock")
	}
	h.tm.Send(tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}) // back to the Officer screen
	h.waitFor("locked: locked by the officer")
	h.typ(station.DemoOfficerPIN)
	h.key(tea.KeyEnter)
	h.waitFor("signed in as officer")
	h.key('5')

	inv, err := st.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	cards, err := inv.List(inventory.Query{Owner: "alice", State: inventory.Active})
	if err != nil || len(cards) != 1 {
		t.Fatalf("alice's active cards: %v, %v", cards, err)
	}
	db, err := st.CADB()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := db.List(pki.Query{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		if r.Status == pki.StatusValid {
			got = append(got, r.Template)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"smartcard-logon", "smime-signing"}) {
		t.Errorf("alice's valid certificates: %v", got)
	}
	// The certificates issued inside the enrollment are the officer's
	// doing, as the enrollment itself is.
	log, _ := st.Audit()
	issued, err := log.List(audit.Query{Action: "cert.issue", User: "alice"})
	if err != nil || len(issued) != 2 {
		t.Fatalf("cert.issue records for alice: %v %v", issued, err)
	}
	for _, r := range issued {
		if r.Actor != "officer:"+station.DemoOfficer {
			t.Errorf("%s %s audited as %q", r.Action, r.Detail, r.Actor)
		}
	}
	vs, err := virtual.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := card.OpenPIV(virtual.New(vs, path))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.VerifyPIN(pin); err != nil {
		t.Errorf("the PIN shown does not open the card: %v", err)
	}
	if _, err := p.Certificate(card.SlotSignature); err != nil {
		t.Errorf("no signing certificate on the card: %v", err)
	}

	// The same card again: refused, with what to do instead.
	h.waitFor("user:")
	h.typ("bob")
	h.waitFor("bob", "1 user")
	h.key(tea.KeyEnter)
	h.waitFor("Certificates for bob")
	h.key(tea.KeyEnter)
	h.waitFor("┃ Card")
	h.key(tea.KeyEnter)
	h.waitFor("┃ PIN")
	h.key(tea.KeyEnter) // the holder types the PIN
	h.waitFor("New PIN")
	h.typ("111111")
	h.waitFor("> ******")
	h.key(tea.KeyEnter)
	h.waitFor("repeats one character")
	for range 6 {
		h.key(tea.KeyBackspace)
	}
	h.typ("246813")
	h.key(tea.KeyEnter)
	h.waitFor("┃ The PIN again")
	h.typ("246813")
	h.key(tea.KeyEnter)
	t.Run("refused", func(t *testing.T) {
		h.t = t
		h.golden("Enrollment failed at: open the card", "renew or reset this one")
	})
	h.t = t
	if cards, _ := inv.List(inventory.Query{Owner: "bob"}); len(cards) != 0 {
		t.Errorf("bob has cards after a refused enrollment: %v", cards)
	}
}

// TestEnrollTypeAhead: keys typed right behind enter (a paste, tmux
// send-keys) reach the form's next field, not the one being left: the
// whole form is typed in one go, without waiting for the screen.
func TestEnrollTypeAhead(t *testing.T) {
	st := demoStation(t)
	blank, _ := blankCard(t, "blank-1", 20261129)
	h := startWith(t, Options{Station: st, LocalCards: []LocalCard{blank}})
	h.signInDemo()
	h.key('5')
	h.waitFor("Enroll a card", "user:")
	h.typ("alice")
	h.waitFor("1 user")
	h.key(tea.KeyEnter)
	h.waitFor("Certificates for alice")
	for _, k := range []rune{tea.KeyEnter, tea.KeyEnter, tea.KeyEnter} { // templates, card, "types it"
		h.key(k)
	}
	h.typ("246813")
	h.key(tea.KeyEnter)
	h.typ("246813")
	h.key(tea.KeyEnter)
	h.waitFor("Card enrolled for alice: 1 certificate(s)")
}

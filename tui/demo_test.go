package tui

import (
	"errors"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station"
)

// TestHomeDemoGolden: in the demo, Home lists the in-process virtual cards
// and shows a newcomer the way through (sign in, enroll, test).
func TestHomeDemoGolden(t *testing.T) {
	st := demoStation(t)
	h := startWith(t, Options{Station: st, LocalCards: demoLocalCards(t, st), DemoOfficerPIN: station.DemoOfficerPIN})
	for _, c := range []string{"officer", "blank-1", "blank-2"} {
		h.waitHome(c, "inserted")
	}
	h.golden("Demo: 4 Officer sign in", "officer's virtual card, inserted", "blank-1", "blank-2", "not signed in", "not published yet")
}

// demoLocalCards are the demo's in-process cards as scstation demo makes
// them: the officer's virtual card, then two blank cards.
func demoLocalCards(t *testing.T, st *station.Station) []LocalCard {
	t.Helper()
	officer := LocalCard{Name: "virtual card " + st.VirtualCardPath(station.DemoOfficer), Officer: station.DemoOfficer,
		Open: func() (card.Card, error) { return st.VirtualCard(station.DemoOfficer) }}
	b1, _ := blankCard(t, "blank-1", 20261127)
	b2, _ := blankCard(t, "blank-2", 20261128)
	return []LocalCard{officer, b1, b2}
}

// homeLine is the line of Home's card list that names card.
func (h *harness) homeLine(name string) string {
	for _, l := range strings.Split(h.p.screen(), "\n") {
		if strings.HasPrefix(strings.TrimLeft(l, "> "), name+" ") {
			return l
		}
	}
	return ""
}

// waitHome waits until Home's line for card says want.
func (h *harness) waitHome(name, want string) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(h.homeLine(name), want) {
		if time.Now().After(deadline) {
			h.t.Fatalf("Home never showed %s %s; it shows:\n%s", name, want, h.p.screen())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInsertRemoveLocalCards: Home's i removes and inserts the demo's
// virtual cards; a removed blank card is no longer offered by Enroll,
// and removing the officer's card locks the station, as a real officer
// card's removal does.
func TestInsertRemoveLocalCards(t *testing.T) {
	st := demoStation(t)
	h := startWith(t, Options{Station: st, LocalCards: demoLocalCards(t, st), DemoOfficerPIN: station.DemoOfficerPIN})
	h.waitHome("officer", "inserted")
	h.waitHome("blank-1", "inserted")
	h.signInDemo()

	h.key('1')
	h.key(tea.KeyDown)
	h.key('i')
	h.waitHome("blank-1", "removed")
	h.waitHome("blank-2", "inserted")

	h.key('5')
	h.waitFor("Enroll a card", "user:")
	h.typ("alice")
	h.waitFor("1 user")
	h.key(tea.KeyEnter)
	h.waitFor("Certificates for alice")
	h.key(tea.KeyEnter)
	s := h.waitFor("┃ Card", "virtual card blank-2")
	if strings.Contains(s, "blank-1") || strings.Contains(s, "officer") {
		t.Errorf("Enroll offers a removed card or the officer's card:\n%s", s)
	}
	for range 4 { // back to Home (the form takes printable keys)
		h.key(tea.KeyTab)
	}
	h.waitFor("Readers and cards")
	h.key(tea.KeyUp)
	h.key('i')
	h.waitFor("locked: the officer card was removed", "no officer card found")
	if _, err := st.Officer(); !errors.Is(err, station.ErrNotSignedIn) {
		t.Fatalf("the officer is still signed in after the card was removed: %v", err)
	}

	// Inserted again, the card signs in again.
	for range 3 {
		h.tm.Send(tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift})
	}
	h.waitHome("officer", "removed")
	h.key('i')
	h.waitHome("officer", "inserted")
	h.signInDemo()
}

// TestDirectoryDemoUsers: the demo's directory holds its 1,000 generated
// users, and the Directory screen's search finds one of them.
func TestDirectoryDemoUsers(t *testing.T) {
	st := demoStation(t)
	h := start(t, st, false)
	h.key('3')
	h.waitFor("the first 50 users")
	u := station.DemoGeneratedUser(station.DemoGenerated - 1)
	h.typ(u.Name)
	h.waitFor("1 user", u.Name, u.DisplayName)
	h.key(tea.KeyEnter)
	h.waitFor(u.UPN)
}

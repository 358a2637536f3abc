package tui

import (
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/station"
)

// TestHomeDemoGolden: in the demo, Home lists the in-process virtual cards
// and shows a newcomer the way through (sign in, enroll, test).
func TestHomeDemoGolden(t *testing.T) {
	st := demoStation(t)
	b1, _ := blankCard(t, "blank-1", 20261127)
	b2, _ := blankCard(t, "blank-2", 20261128)
	h := startWith(t, Options{Station: st, LocalCards: []LocalCard{b1, b2}, DemoOfficerPIN: station.DemoOfficerPIN})
	h.golden("Demo: 4 Officer sign in", "blank-1", "blank-2", "not signed in", "not published yet")
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

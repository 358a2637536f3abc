package tui

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
)

// TestRemoteScreens checks the administrator's station over SSH: only the
// CA, Cards, Directory and Audit screens, and on Cards no action that
// needs the card in a local reader, while suspend and revoke stay.
func TestRemoteScreens(t *testing.T) {
	st, _, _, _ := enrolledAlice(t)
	h := startWith(t, Options{Station: st, Remote: true})
	s := h.waitFor("1 CA", "2 Cards", "3 Directory", "4 Audit")
	for _, absent := range []string{"Home", "Officer", "Enroll", "Logon", "5 "} {
		if strings.Contains(strings.SplitN(s, "\n", 2)[0], absent) {
			t.Errorf("the remote station's tabs show %q:\n%s", absent, s)
		}
	}
	h.key('2')
	h.waitFor("2 card(s)", "> guid")
	h.key(tea.KeyEnter)
	h.waitFor("History", "card.enroll")
	// Unblock, reset and renew are not bound: the keys are ignored, and
	// the suspend key that follows opens its form.
	for _, k := range []rune{'u', 'Z', 'n', 'S'} {
		h.key(k)
	}
	h.waitFor("┃ Suspend card")
	h.key(tea.KeyEscape)
	h.waitFor("cancelled")
	h.key('?')
	s = h.waitFor("suspend", "reinstate", "revoke")
	for _, absent := range []string{"unblock", "reset", "renew"} {
		if strings.Contains(s, absent) {
			t.Errorf("the remote Cards help offers %q:\n%s", absent, s)
		}
	}
}

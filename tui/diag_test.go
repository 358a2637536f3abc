package tui

import (
	"context"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/audit"
)

// TestLogonDiagnostics runs the PIN logon test against the station's own
// KDC, served in process: it passes with alice's card and PIN, says how
// many tries are left after a wrong PIN, and fails in plain words once
// the card is revoked.
func TestLogonDiagnostics(t *testing.T) {
	st, blank, _, id := enrolledAlice(t)
	h := startOpts(t, Options{Station: st, Watch: make(fakeWatch).watch, LocalCards: []LocalCard{blank},
		Serve: &station.ServeOptions{KDC: "127.0.0.1:0"}})
	h.waitFor("kdc")
	h.key('8')
	h.waitFor("PIN logon test", "virtual card alice-card")
	h.key(tea.KeyEnter) // to the user field
	h.typ("alice")
	h.key(tea.KeyEnter)
	h.typ("246813")
	h.key(tea.KeyEnter)
	t.Run("pass", func(t *testing.T) {
		h.t = t
		h.golden("Logon works", "TGT")
	})
	h.t = t

	h.typ("135792")
	h.key(tea.KeyEnter)
	h.waitFor("wrong PIN — 2 tries left")
	// The station audits the PIN the card refused.
	log, err := st.Audit()
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := log.List(audit.Query{Action: "pin.failed", Card: id}); err != nil || len(recs) != 1 {
		t.Fatalf("pin.failed records for the card: %v, %v; want one", recs, err)
	}

	if _, err := st.RevokeCard(context.Background(), id, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	h.typ("246813")
	h.key(tea.KeyEnter)
	h.waitFor("✗", "certificate revoked on ")
}

// TestDiagKeys: on the Logon screen the global keys work while no field
// has the focus (? full help, 1-9 screens); enter gives the user field
// the focus, and then printable keys are its own, until esc.
func TestDiagKeys(t *testing.T) {
	h := start(t, newStation(t, ""), false)
	h.key('8')
	h.waitFor("PIN logon test", "enter type user and PIN")
	h.key('?')
	h.waitFor("leave the fields", "logon test / mail test", "go to screen")
	h.key('?')
	h.waitFor("enter type user and PIN")
	h.key(tea.KeyEnter)
	h.waitFor("esc leave the fields")
	h.typ("b?2")
	h.waitFor("user: b?2")
	if s := h.p.screen(); !strings.Contains(s, "PIN logon test") {
		t.Fatalf("a key typed into the user field switched the screen:\n%s", s)
	}
	h.key(tea.KeyEscape)
	h.waitFor("enter type user and PIN")
	h.key('1')
	h.waitFor("Readers and cards")

	// The mail test, the same.
	h.key('8')
	h.tm.Send(tea.KeyPressMsg{Code: 't', Mod: tea.ModCtrl})
	h.waitFor("Mail test", "enter type the PIN")
	h.key('?')
	h.waitFor("leave the PIN", "go to screen")
	h.key('?')
	h.key(tea.KeyEnter)
	h.waitFor("esc leave the PIN")
	h.typ("3")
	h.waitFor("PIN:  •")
	h.key(tea.KeyEscape)
	h.waitFor("enter type the PIN")
	h.key('3')
	h.waitFor("search: name, login, mail or UPN")
}

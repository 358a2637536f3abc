package tui

import (
	"context"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
)

// TestMailDiagnostics runs the mail test on the diagnostics screen (ctrl+t
// from the PIN logon test): it passes with alice's card and PIN, says how
// many tries are left after a wrong PIN, and fails in plain words once the
// card is revoked.
func TestMailDiagnostics(t *testing.T) {
	st := demoStation(t)
	ctx := context.Background()
	if _, err := st.SignInVirtual(ctx, station.DemoOfficer, station.DemoOfficerPIN); err != nil {
		t.Fatal(err)
	}
	blank, _ := blankCard(t, "alice-card", 20261126)
	c, err := blank.Open()
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Enroll(ctx, station.EnrollRequest{User: "alice", Templates: []string{"smartcard-logon", "smime-signing", "smime-encryption"},
		Reader: blank.Name, Card: c, PIN: "246813"})
	if err != nil {
		t.Fatal(err)
	}
	st.SignOut() // card holders need no officer

	h := startOpts(t, Options{Station: st, Watch: make(fakeWatch).watch, LocalCards: []LocalCard{blank}})
	h.key('8')
	h.waitFor("PIN logon test", "ctrl+t mail test")
	h.tm.Send(tea.KeyPressMsg{Code: 't', Mod: tea.ModCtrl})
	h.waitFor("Mail test", "virtual card alice-card")
	h.key(tea.KeyEnter) // to the PIN
	h.typ("246813")
	h.key(tea.KeyEnter)
	t.Run("pass", func(t *testing.T) {
		h.t = t
		h.golden("Mail works", "signature verified")
	})
	h.t = t

	h.typ("135792")
	h.key(tea.KeyEnter)
	h.waitFor("✗ PIN: wrong PIN — 2 tries left")

	if _, err := st.SignInVirtual(ctx, station.DemoOfficer, station.DemoOfficerPIN); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RevokeCard(ctx, res.CardID, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	h.typ("246813")
	h.key(tea.KeyEnter)
	t.Run("revoked", func(t *testing.T) {
		h.t = t
		h.golden("✗ signing certificate: certificate revoked on")
	})
	h.t = t

	// ctrl+t goes back to the logon test, as it was left.
	h.tm.Send(tea.KeyPressMsg{Code: 't', Mod: tea.ModCtrl})
	h.waitFor("PIN logon test", "user:")
}

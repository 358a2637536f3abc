package tui

import (
	"context"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
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

	if _, err := st.RevokeCard(context.Background(), id, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	h.typ("246813")
	h.key(tea.KeyEnter)
	h.waitFor("✗", "certificate revoked on ")
}

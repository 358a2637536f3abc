package tui

import (
	tea "charm.land/bubbletea/v2"

	"testing"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

// allRecords is the whole audit log.
func allRecords(t *testing.T, st *station.Station) []audit.Record {
	t.Helper()
	log, err := st.Audit()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := log.List(audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// openCard shows the details of the one card whose owner matches owner.
func (h *harness) openCard(owner string) {
	h.t.Helper()
	h.key('6')
	h.waitFor("card(s)")
	h.key('/')
	h.typ(owner)
	h.key(tea.KeyEnter)
	h.waitFor("1 card(s)")
	h.key(tea.KeyEnter)
	h.waitFor("History")
}

// holdSelected puts the certificate shown on the CA screen on hold.
func (h *harness) holdSelected() {
	h.t.Helper()
	h.key('r')
	h.waitFor("┃ Revoke certificate")
	for range 4 {
		h.key(tea.KeyDown)
	}
	h.key(tea.KeyEnter)
	h.waitFor("┃ Put it on hold?")
	h.key(tea.KeyLeft)
	h.key(tea.KeyEnter)
}

// TestOfficerIsTheActor runs the status changes of the Cards and CA
// screens on a kiosk station (RequireOfficer): with nobody signed in each
// is refused in place and changes nothing; signed in, each is audited as
// the officer, not as the process.
func TestOfficerIsTheActor(t *testing.T) {
	st, blank, _, id := enrolledAlice(t)
	st.SignOut()
	st.RequireOfficer = true
	st.Actor = "cli:kiosk"
	db, _ := st.CADB()
	recs, _ := db.List(pki.Query{User: "alice"})
	if len(recs) != 1 {
		t.Fatalf("alice has %d certificates", len(recs))
	}
	serial := recs[0].Serial
	h := startWith(t, Options{Station: st, LocalCards: []LocalCard{blank}})

	// Nobody signed in: the screens say so and nothing changes.
	h.openCard("alice")
	h.key('S')
	h.waitFor("suspending a card needs a signed-in enrollment officer")
	h.key('u')
	h.waitFor("unblocking a PIN needs a signed-in enrollment officer")
	h.key('2')
	h.key('/')
	h.typ("alice")
	h.waitFor("1 certificate")
	h.key(tea.KeyEnter)
	h.key(tea.KeyEnter)
	h.waitFor("status       valid")
	h.key('r')
	h.waitFor("revoking a certificate needs a signed-in enrollment officer")
	if s := cardState(t, st, id); s != inventory.Active {
		t.Fatalf("the card is %s after refused actions", s)
	}
	if r, _ := db.Get(serial); r.Status != pki.StatusValid {
		t.Fatalf("the certificate is %s after a refused revocation", r.Status)
	}

	// Signed in: every action is the officer's.
	h.signInDemo()
	n := len(allRecords(t, st))
	h.key('6')
	h.waitFor("History")
	h.key('S')
	h.waitFor("┃ Suspend card")
	h.key('y')
	h.waitFor("is suspended")
	h.key('R')
	h.waitFor("┃ Reinstate card")
	h.key('y')
	h.waitFor("is active")
	h.key('2')
	h.waitFor("status       valid")
	h.holdSelected()
	h.waitFor("put on hold")
	h.key('u')
	h.waitFor("released from hold")
	h.key('p')
	h.waitFor("CRL #")
	h.key('6')
	h.waitFor("History")
	h.key('X')
	h.waitFor("┃ Revoke card")
	h.key(tea.KeyEnter)
	h.waitFor("┃ Revoke the card and all")
	h.key('y')
	h.waitFor("is revoked")

	seen := map[string]bool{}
	for _, r := range allRecords(t, st)[n:] {
		seen[r.Action] = true
		if r.Actor != "officer:"+station.DemoOfficer {
			t.Errorf("%s (%s) audited as %q", r.Action, r.Detail, r.Actor)
		}
	}
	for _, a := range []string{"card.state", "cert.hold", "cert.release", "crl.publish", "cert.revoke"} {
		if !seen[a] {
			t.Errorf("no %s record after the actions (have %v)", a, seen)
		}
	}
	inv, _ := st.Inventory()
	c, err := inv.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.History[len(c.History)-3:] {
		if e.Actor != "officer:"+station.DemoOfficer {
			t.Errorf("card history %s by %q", e.Action, e.Actor)
		}
	}
}

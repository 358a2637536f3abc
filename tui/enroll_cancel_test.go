package tui

import (
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

// gateCard holds the first key generation command until the test lets it
// through, so that the test knows which step the enrollment is in.
type gateCard struct {
	card.Card
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func (g *gateCard) Transmit(apdu []byte) ([]byte, error) {
	if len(apdu) > 1 && apdu[1] == 0x47 { // GENERATE ASYMMETRIC KEY PAIR
		g.once.Do(func() { close(g.reached) })
		<-g.release
	}
	return g.Card.Transmit(apdu)
}

// TestEnrollCancel presses esc while the card generates its key: the
// screen says the card finishes that step, then that the enrollment was
// cancelled and what is left on the card; the station kept nothing.
func TestEnrollCancel(t *testing.T) {
	st := demoStation(t)
	vs, err := virtual.NewState(20261201)
	if err != nil {
		t.Fatal(err)
	}
	gate := &gateCard{reached: make(chan struct{}), release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(gate.release) }) }
	t.Cleanup(release)
	local := LocalCard{Name: "virtual card gated", Open: func() (card.Card, error) {
		gate.Card = virtual.New(vs, "")
		return gate, nil
	}}
	h := startWith(t, Options{Station: st, LocalCards: []LocalCard{local}})
	h.signInDemo()
	h.key('5')
	h.waitFor("Enroll a card", "user:")
	h.typ("alice")
	h.waitFor("alice", "1 user")
	h.key(tea.KeyEnter)
	h.waitFor("Certificates for alice")
	h.randomPIN()
	select {
	case <-gate.reached:
	case <-time.After(15 * time.Second): // only so that a broken test does not hang
		t.Fatalf("the enrollment never generated a key; the screen shows:\n%s", h.p.screen())
	}
	h.waitFor("generate the keys on the card", "esc cancels")
	h.key(tea.KeyEscape)
	h.waitFor("cancelling: the card finishes the step it is in")
	release()
	t.Run("cancelled", func(t *testing.T) {
		h.t = t
		h.golden("Enrollment cancelled before: sign the requests on the card", "recorded as uninitialized")
	})
	h.t = t

	// Nothing kept: no certificate for alice, the card uninitialized,
	// the failure audited.
	db, _ := st.CADB()
	if recs, _ := db.List(pki.Query{User: "alice", Status: pki.StatusValid}); len(recs) != 0 {
		t.Errorf("alice has valid certificates after a cancelled enrollment: %d", len(recs))
	}
	inv, _ := st.Inventory()
	cards, _ := inv.List(inventory.Query{Owner: "alice"})
	if len(cards) != 1 || cards[0].State != inventory.Uninitialized {
		t.Fatalf("alice's cards after a cancelled enrollment: %+v", cards)
	}
	log, _ := st.Audit()
	recs, _ := log.List(audit.Query{Action: "card.enroll", Card: cards[0].ID})
	if len(recs) == 0 || recs[len(recs)-1].Outcome == audit.OK {
		t.Errorf("the cancelled enrollment audited as %+v", recs)
	}
	// The screen's way on: the next enrollment starts over on this card.
	h.key(tea.KeyEnter)
	h.waitFor("user:")
}

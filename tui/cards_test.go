package tui

import (
	"context"
	"regexp"
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

// enrolledAlice is the demo station with the officer signed in and alice
// enrolled (logon certificate, PIN 246813) on a virtual card offered in
// process.
func enrolledAlice(t *testing.T) (*station.Station, LocalCard, string, string) {
	t.Helper()
	st := demoStation(t)
	ctx := context.Background()
	if _, err := st.SignInVirtual(ctx, station.DemoOfficer, station.DemoOfficerPIN); err != nil {
		t.Fatal(err)
	}
	blank, path := blankCard(t, "alice-card", 20261125)
	c, err := blank.Open()
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Enroll(ctx, station.EnrollRequest{User: "alice", Templates: []string{"smartcard-logon"},
		Reader: blank.Name, Card: c, PIN: "246813"})
	if err != nil {
		t.Fatal(err)
	}
	return st, blank, path, res.CardID
}

func cardState(t *testing.T, st *station.Station, id string) inventory.State {
	t.Helper()
	inv, err := st.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	c, err := inv.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return c.State
}

func audited(t *testing.T, st *station.Station, action, id string) bool {
	t.Helper()
	log, err := st.Audit()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := log.List(audit.Query{Card: id})
	if err != nil {
		t.Fatal(err)
	}
	// A state change is audited as card.state naming the action.
	for _, r := range recs {
		if r.Outcome == audit.OK && (r.Action == action || r.Action == "card.state" && strings.Contains(r.Detail, "("+action+")")) {
			return true
		}
	}
	return false
}

func openPIV(t *testing.T, path string) *card.PIV {
	t.Helper()
	vs, err := virtual.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := card.OpenPIV(virtual.New(vs, path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

var newPIN = regexp.MustCompile(`new PIN (\d{6,8})\b`)

// TestCardsActions runs each lifecycle action through the Cards screen
// and checks the station's inventory, CA records, audit log and the card.
func TestCardsActions(t *testing.T) {
	st, blank, path, id := enrolledAlice(t)
	h := startWith(t, Options{Station: st, LocalCards: []LocalCard{blank}})
	h.key('6')
	h.waitFor("officer", "2 card(s)")
	// The owner filter takes any part of the name, in any case.
	h.key('/')
	h.typ("LIC")
	h.key(tea.KeyEnter)
	t.Run("list", func(t *testing.T) {
		h.t = t
		h.golden("alice", "active", "1 card(s)", "enter details")
	})
	h.t = t
	h.key(tea.KeyEnter)
	h.waitFor("History", "card.enroll")

	// Cancelled: nothing changes.
	h.key('S')
	h.waitFor("┃ Suspend card")
	h.key(tea.KeyEscape)
	h.waitFor("cancelled")
	if s := cardState(t, st, id); s != inventory.Active {
		t.Fatalf("a cancelled suspension left the card %s", s)
	}

	h.key('S')
	t.Run("confirm", func(t *testing.T) {
		h.t = t
		h.golden("┃ Suspend card", "Keep")
	})
	h.t = t
	h.key('y')
	h.waitFor("is suspended")
	if s := cardState(t, st, id); s != inventory.Suspended || !audited(t, st, "card.suspend", id) {
		t.Fatalf("after suspend: state %s, audited %v", s, audited(t, st, "card.suspend", id))
	}

	h.key('R')
	h.waitFor("┃ Reinstate card")
	h.key('y')
	h.waitFor("is active")
	if s := cardState(t, st, id); s != inventory.Active || !audited(t, st, "card.reinstate", id) {
		t.Fatalf("after reinstate: state %s", s)
	}

	// Unblock with a random PIN: the PIN shown opens the card.
	h.key('u')
	h.waitFor("┃ Where is the card?")
	h.key(tea.KeyEnter)
	h.waitFor("┃ New PIN")
	h.key(tea.KeyDown)
	h.waitFor("> random")
	h.key(tea.KeyEnter)
	h.waitFor("┃ New PIN (the holder")
	h.key(tea.KeyEnter)
	m := newPIN.FindStringSubmatch(h.waitFor("PIN set: new PIN"))
	if m == nil {
		t.Fatal("no PIN shown")
	}
	pin := m[1]
	if err := openPIV(t, path).VerifyPIN(pin); err != nil {
		t.Fatalf("the new PIN does not open the card: %v", err)
	}
	if !audited(t, st, "card.unblock", id) {
		t.Error("unblock not audited")
	}

	// Renew with the holder's PIN: a new logon certificate, the old one
	// revoked as superseded.
	db, err := st.CADB()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := db.List(pki.Query{User: "alice", Status: pki.StatusValid})
	h.key('n')
	h.waitFor("┃ Where is the card?")
	h.key(tea.KeyEnter)
	h.waitFor("┃ The card holder's PIN")
	h.typ(pin)
	h.key(tea.KeyEnter)
	h.waitFor("renewed: 1 new certificate(s)")
	after, _ := db.List(pki.Query{User: "alice", Status: pki.StatusValid})
	if len(before) != 1 || len(after) != 1 || before[0].Serial.Cmp(after[0].Serial) == 0 {
		t.Fatalf("valid certificates before %d, after %d (same serial?)", len(before), len(after))
	}
	if old, _ := db.Get(before[0].Serial); old.Status != pki.StatusRevoked {
		t.Errorf("the old certificate is %s after renewal", old.Status)
	}

	// Revoke with a reason.
	h.key('X')
	h.waitFor("┃ Revoke card")
	h.key(tea.KeyDown)
	h.key(tea.KeyEnter)
	h.waitFor("┃ Revoke the card and all")
	h.key('y')
	h.waitFor("is revoked")
	if s := cardState(t, st, id); s != inventory.Revoked || !audited(t, st, "card.revoke", id) {
		t.Fatalf("after revoke: state %s", s)
	}
	if r, _ := db.Get(after[0].Serial); r.Status != pki.StatusRevoked {
		t.Errorf("the card's certificate is %s after the card was revoked", r.Status)
	}

	// A revoked card cannot be unblocked: the error shows in place.
	h.key('u')
	h.waitFor("┃ Where is the card?")
	h.key(tea.KeyEnter)
	h.waitFor("┃ New PIN")
	h.key(tea.KeyDown)
	h.waitFor("> random")
	h.key(tea.KeyEnter)
	h.waitFor("┃ New PIN (the holder")
	h.key(tea.KeyEnter)
	h.waitFor("is revoked (owner alice): only an")

	// Reset erases it.
	h.key('Z')
	h.waitFor("┃ Where is the card?")
	h.key(tea.KeyEnter)
	h.waitFor("┃ Reset card")
	h.key('y')
	h.waitFor("card.reset")
	if !audited(t, st, "card.reset", id) {
		t.Error("reset not audited")
	}
	if _, err := openPIV(t, path).Certificate(card.SlotAuthentication); err == nil {
		t.Error("the reset card still has a logon certificate")
	}
}

package tui

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station"
	"github.com/scstation/scstation/station/audit"
)

// demoStation is the demo realm: a CA, the demo users, and the officer's
// virtual card (PIN station.DemoOfficerPIN).
func demoStation(tb testing.TB) *station.Station {
	tb.Helper()
	st, _, err := station.Demo(filepath.Join(tb.TempDir(), "demo"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// signInDemo signs the demo officer in through the Officer screen.
func (h *harness) signInDemo() {
	h.t.Helper()
	h.key('4')
	h.waitFor("virtual card of officer")
	h.typ(station.DemoOfficerPIN)
	h.key(tea.KeyEnter)
	h.waitFor("signed in as officer")
}

func TestSignInGolden(t *testing.T) {
	st := demoStation(t)
	h := start(t, st, false)
	h.key('4')
	h.waitFor("virtual card of officer")
	h.typ("11223344")
	t.Run("pin", func(t *testing.T) {
		h.t = t
		h.golden("PIN: ••••••••")
	})
	h.key(tea.KeyEnter)
	t.Run("wrong", func(t *testing.T) {
		h.t = t
		h.golden("wrong PIN — 2 tries left")
	})
	if _, err := st.Officer(); !errors.Is(err, station.ErrNotSignedIn) {
		t.Fatalf("signed in with a wrong PIN: %v", err)
	}
	h.typ(station.DemoOfficerPIN)
	h.key(tea.KeyEnter)
	t.Run("signed in", func(t *testing.T) {
		h.t = t
		h.golden("signed in as officer")
	})
	o, err := st.Officer()
	if err != nil || o.User != station.DemoOfficer {
		t.Fatalf("the station has no officer after sign-in: %v", err)
	}
	h.key('1')
	h.waitFor("signed in           officer")
	// The screen never shows the PIN, masked or not, once it was sent.
	if s := h.p.screen(); strings.Contains(s, station.DemoOfficerPIN) {
		t.Errorf("the PIN is on the screen:\n%s", s)
	}
	// The failed attempt and the sign-in are audited.
	log, err := st.Audit()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := log.List(audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var failed, ok bool
	for _, r := range recs {
		failed = failed || r.Action == "pin.failed"
		ok = ok || (r.Action == "officer.signin" && r.Outcome == "ok")
	}
	if !failed || !ok {
		t.Errorf("audit has pin.failed %v, officer.signin ok %v", failed, ok)
	}
}

func TestLockOnCardRemoved(t *testing.T) {
	st := demoStation(t)
	h := start(t, st, false)
	h.signInDemo()
	o, err := st.Officer()
	if err != nil {
		t.Fatal(err)
	}
	h.key('2') // elsewhere: the lock brings the sign-in screen back
	h.waitFor("certificate")
	h.cards <- card.Event{Kind: card.ServiceUp}
	h.cards <- card.Event{Kind: card.CardRemoved, Reader: o.Reader}
	h.waitFor("locked: the officer card was removed", "PIN:")
	if _, err := st.Officer(); !errors.Is(err, station.ErrNotSignedIn) {
		t.Errorf("still signed in: %v", err)
	}
}

func TestLockWhenIdle(t *testing.T) {
	st := demoStation(t)
	// A short idle time: the test waits for the lock, it does not time it.
	h := startWith(t, Options{Station: st, IdleLock: 300 * time.Millisecond})
	h.signInDemo()
	h.waitFor("locked: no key pressed for 300ms")
	if _, err := st.Officer(); !errors.Is(err, station.ErrNotSignedIn) {
		t.Errorf("still signed in: %v", err)
	}
}

func TestLockKey(t *testing.T) {
	st := demoStation(t)
	h := start(t, st, false)
	h.signInDemo()
	h.tm.Send(tea.KeyPressMsg{Code: 'l', Mod: tea.ModCtrl})
	h.waitFor("locked: locked by the officer")
	if _, err := st.Officer(); !errors.Is(err, station.ErrNotSignedIn) {
		t.Errorf("still signed in: %v", err)
	}
}

// TestSignInDemoHint: in the demo, the Officer screen tells a newcomer the
// demo officer card's PIN; elsewhere it does not.
func TestSignInDemoHint(t *testing.T) {
	st := demoStation(t)
	h := startWith(t, Options{Station: st, DemoOfficerPIN: station.DemoOfficerPIN})
	h.key('4')
	h.waitFor("virtual card of officer", "demo: the officer card's PIN is "+station.DemoOfficerPIN)

	h2 := start(t, st, false)
	h2.key('4')
	if s := h2.waitFor("virtual card of officer"); strings.Contains(s, station.DemoOfficerPIN) {
		t.Errorf("the PIN is shown outside the demo:\n%s", s)
	}
}

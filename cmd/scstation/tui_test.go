package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station"
)

// Without a terminal the full-screen station refuses to draw (exit 2),
// and the demo is not created.
func TestTUINeedsTerminal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	r := must(t, 2, run(t, "", "demo", "--dir", dir))
	if !strings.Contains(r.stderr, "needs a terminal") {
		t.Errorf("stderr: %s", r.stderr)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("the demo was created although the station could not open")
	}
	must(t, 0, run(t, "", "demo", "--dir", dir, "--no-tui"))
	r = must(t, 2, run(t, "", "--dir", dir))
	if !strings.Contains(r.stderr, "needs a terminal") {
		t.Errorf("stderr: %s", r.stderr)
	}
	// The root command still rejects what is not a subcommand.
	must(t, 2, run(t, "", "--dir", dir, "nonsense"))
}

func TestDemoNoTUI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	r := must(t, 0, run(t, "", "demo", "--dir", dir, "--no-tui"))
	if !strings.Contains(r.stdout, "Created the demo realm") || !strings.Contains(r.stdout, "alice") {
		t.Errorf("stdout: %s", r.stdout)
	}
	r = must(t, 0, run(t, "", "demo", "--dir", dir, "--no-tui"))
	if !strings.Contains(r.stdout, "Demo realm in") {
		t.Errorf("stdout: %s", r.stdout)
	}
}

// The demo's blank cards are made once, factory-fresh, and kept: what is
// enrolled on them stays across runs.
func TestDemoCards(t *testing.T) {
	st, _, err := station.Demo(filepath.Join(t.TempDir(), "demo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cards, err := demoCards(st)
	if err != nil || len(cards) != 3 {
		t.Fatalf("demoCards = %d cards, %v", len(cards), err)
	}
	// The officer's card comes first, with its reader name as the
	// station's sign-in gives it (so that removing it ends the session).
	if o := cards[0]; o.Officer != station.DemoOfficer || o.Name != "virtual card "+st.VirtualCardPath(station.DemoOfficer) {
		t.Errorf("first demo card = %q (officer %q), want the officer's", o.Name, o.Officer)
	}
	c, err := cards[1].Open()
	if err != nil {
		t.Fatal(err)
	}
	p, err := card.OpenPIV(c)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := p.Serial()
	// Factory-fresh: the default PIN opens it.
	if err := p.VerifyPIN(card.DefaultPIN); err != nil {
		t.Errorf("a new demo card does not take the default PIN: %v", err)
	}
	p.Close()
	again, err := demoCards(st)
	if err != nil {
		t.Fatal(err)
	}
	c, err = again[1].Open()
	if err != nil {
		t.Fatal(err)
	}
	p, err = card.OpenPIV(c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if s, _ := p.Serial(); s != serial {
		t.Errorf("the demo card was made again: serial %d, then %d", serial, s)
	}
}

func TestIdleLockFlag(t *testing.T) {
	r := must(t, 0, run(t, "", "demo", "--help"))
	if !strings.Contains(r.stdout, "--idle-lock") {
		t.Errorf("demo --help has no --idle-lock:\n%s", r.stdout)
	}
}

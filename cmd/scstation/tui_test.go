package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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

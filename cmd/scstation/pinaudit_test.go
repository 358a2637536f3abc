package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/station/inventory"
)

// TestPINFailuresAudited: wrong PINs and PUKs at card pin change, card
// pin unblock and logon --reader, through the real pcscd and vpcd, land in
// the data directory's audit log with the card, the reader and the tries
// left, and never the PIN; without a data directory the commands work
// just the same and create none.
func TestPINFailuresAudited(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "st")
	d := "--dir=" + dir
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", d))
	vs, err := virtual.NewState(5150)
	if err != nil {
		t.Fatal(err)
	}
	id := inventory.CardID(vs.GUID(), 5150)
	reader := cardtest.Attach(t, virtual.New(vs, ""))
	rf := "--reader=" + reader
	const wrongPIN, wrongPUK, newPIN = "13572468", "86428642", "24681357"

	r := must(t, 1, run(t, wrongPIN+"\n"+newPIN+"\n", "card", "pin", "change", "--pin-stdin", rf, d))
	contains(t, "wrong PIN", r.stderr, "wrong PIN — 2 tries left")
	r = must(t, 1, run(t, wrongPUK+"\n"+newPIN+"\n", "card", "pin", "unblock", "--pin-stdin", rf, d))
	contains(t, "wrong PUK", r.stderr, "wrong PUK — 2 tries left")
	// logon verifies the PIN before it talks to any KDC.
	r = must(t, 1, run(t, wrongPIN+"\n", "logon", "--user", "alice", "--reader", reader, "--pin-stdin", "--kdc", "127.0.0.1:1", d))
	contains(t, "logon with a wrong PIN", r.stdout+r.stderr, "wrong PIN — 1 try left")
	if strings.Contains(r.stdout+r.stderr, "audit") {
		t.Errorf("logon could not audit:\n%s%s", r.stdout, r.stderr)
	}

	r = must(t, 0, run(t, "", "audit", "list", "--action", "pin.failed", "--card", id, d))
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 3 pin.failed records for %s:\n%s", id, r.stdout)
	}
	for i, want := range []string{"wrong PIN (pin change) in reader " + reader + ", 2 tries left",
		"wrong PUK (unblock with the PUK) in reader " + reader + ", 2 tries left",
		"wrong PIN (logon as alice) in reader " + reader + ", 1 try left"} {
		contains(t, "pin.failed record", lines[i+1], "cli:", "pin.failed", "refused", id, want)
	}
	if out := r.stdout + run(t, "", "audit", "list", d).stdout; strings.Contains(out, wrongPIN) || strings.Contains(out, wrongPUK) || strings.Contains(out, newPIN) {
		t.Errorf("a PIN or PUK is in the audit log:\n%s", out)
	}
	must(t, 0, run(t, "", "audit", "verify", d))

	// No data directory: the same refusal, no warning, no directory made.
	none := filepath.Join(t.TempDir(), "none")
	r = must(t, 1, run(t, card.DefaultPIN+"x\n"+newPIN+"\n", "card", "pin", "change", "--pin-stdin", rf, "--dir="+none))
	contains(t, "wrong PIN without a data directory", r.stderr, "wrong PIN — the PIN is now blocked")
	if strings.Contains(r.stderr, "audit") {
		t.Errorf("warning without a data directory:\n%s", r.stderr)
	}
	if _, err := os.Stat(none); !os.IsNotExist(err) {
		t.Errorf("the data directory was created: %v", err)
	}
}

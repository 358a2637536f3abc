package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/station"
)

var logonSerialRE = regexp.MustCompile(`9A smartcard-logon serial ([0-9a-f]+),`)

// TestControlRecords: beside a running serve, an enrollment (the demo
// officer signing in inside serve, the user's virtual card named relative
// to the client), the card inventory and the audit log go through serve's
// control socket; a forwarded command's audit records carry the actor of
// the user who ran it, not serve's; and the results are those of the
// commands run alone.
func TestControlRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	work := t.TempDir()
	bin := buildBinary(t, work)
	serveCwd := filepath.Join(work, "serve-cwd")
	os.Mkdir(serveCwd, 0o700)
	dir := filepath.Join(work, "demo")
	must(t, 0, run(t, "", "--dir", dir, "demo", "--no-tui"))
	vs, err := virtual.NewState(5151)
	if err != nil {
		t.Fatal(err)
	}
	if err := vs.Save(filepath.Join(work, "alice-card.json")); err != nil {
		t.Fatal(err)
	}
	serve, _, logs := startServe(t, bin, dir, serveCwd)

	const pin = "13572468"
	r := must(t, 0, runBin(t, bin, work, pin+"\n", nil, "enroll", "--user", "alice", "--template", "smartcard-logon",
		"--vcard", "alice-card.json", "--pin-stdin", "--dir", dir))
	contains(t, "enroll through serve", r.stdout, "enrolled for alice")
	if strings.Contains(r.stdout+r.stderr, pin) {
		t.Error("the PIN was printed")
	}
	m := logonSerialRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no certificate serial in:\n%s", r.stdout)
	}
	serial := m[1]
	if got, err := virtual.LoadState(filepath.Join(work, "alice-card.json")); err != nil || string(got.PIN) != pin {
		t.Fatalf("the client's card file was not the one enrolled: %v", err)
	}
	m = cardIDRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no card ID in:\n%s", r.stdout)
	}
	cardID := m[1]

	invHeld := must(t, 0, runBin(t, bin, work, "", nil, "card", "inventory", "--dir", dir))
	contains(t, "card inventory through serve", invHeld.stdout, cardID, "alice", "active")

	must(t, 0, runBin(t, bin, work, "", nil, "ca", "revoke", serial, "--reason", "keyCompromise", "--dir", dir))
	actor := station.DefaultActor()
	auditHeld := must(t, 0, runBin(t, bin, work, "", nil, "audit", "list", "--action", "cert.revoke", "--dir", dir))
	var revokeLine string
	for _, l := range strings.Split(auditHeld.stdout, "\n") {
		if strings.Contains(l, serial) {
			revokeLine = l
		}
	}
	if f := strings.Fields(revokeLine); len(f) < 5 || f[2] != actor || f[3] != "cert.revoke" || f[4] != "ok" {
		t.Errorf("the forwarded revocation's record (want actor %s):\n%s", actor, auditHeld.stdout)
	}
	// The enrollment was the officer's.
	enrollHeld := must(t, 0, runBin(t, bin, work, "", nil, "audit", "list", "--action", "card.enroll", "--user", "alice", "--dir", dir))
	contains(t, "audit list of the enrollment", enrollHeld.stdout, "officer:"+station.DemoOfficer)
	verifyHeld := must(t, 0, runBin(t, bin, work, "", nil, "audit", "verify", "--dir", dir))

	stopServe(t, serve)
	if l := logs.String(); strings.Contains(l, pin) || strings.Contains(l, station.DemoOfficerPIN) {
		t.Error("a PIN appeared in serve's log")
	} else {
		for _, c := range []string{`command=enroll`, `command="card inventory"`, `command="audit list"`} {
			if !strings.Contains(l, c) {
				t.Errorf("serve's log lacks %s:\n%s", c, l)
			}
		}
	}
	for _, tc := range []struct {
		name string
		held result
		args []string
	}{
		{"card inventory", invHeld, []string{"card", "inventory", "--dir", dir}},
		{"audit list", auditHeld, []string{"audit", "list", "--action", "cert.revoke", "--dir", dir}},
		{"audit verify", verifyHeld, []string{"audit", "verify", "--dir", dir}},
	} {
		if local := runBin(t, bin, work, "", nil, tc.args...); local != tc.held {
			t.Errorf("%s: through serve %+v, alone %+v", tc.name, tc.held, local)
		}
	}
}

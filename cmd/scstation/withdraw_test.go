package main

import (
	"strings"
	"testing"
)

// TestRevokedLeaveDirectory: ca revoke with certificateHold keeps the
// certificate on alice's entry, a permanent reason takes it off, and card
// revoke takes off the card's others.
func TestRevokedLeaveDirectory(t *testing.T) {
	dir, id, _, serials := lifecycleStation(t, "--no-passphrase")
	d := "--dir=" + dir
	certs := func(want string) {
		t.Helper()
		r := must(t, 0, run(t, "", "user", "show", "alice", d))
		if !strings.Contains(r.stdout, "certificates "+want+"\n") {
			t.Fatalf("alice should have %s certificates in the directory:\n%s", want, r.stdout)
		}
	}
	certs("2")
	must(t, 0, run(t, "", "ca", "revoke", serials[0], "--reason", "certificateHold", d))
	certs("2")
	must(t, 0, run(t, "", "ca", "revoke", serials[0], "--reason", "keyCompromise", d))
	certs("1")
	must(t, 0, run(t, "", "card", "revoke", id, "--reason", "affiliationChanged", d))
	certs("0")
}

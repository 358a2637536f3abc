package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
)

// newVCard writes a factory-fresh virtual card state file.
func newVCard(t *testing.T, dir string, serial uint32) string {
	t.Helper()
	st, err := virtual.NewState(serial)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "card.json")
	if err := st.Save(p); err != nil {
		t.Fatal(err)
	}
	return p
}

var pinRE = regexp.MustCompile(`Initial PIN \(shown once, give it to \w+\): (\d{8})`)

func TestEnrollCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	must(t, 0, run(t, "", "--dir", dir, "demo", "--no-tui"))
	vc := newVCard(t, t.TempDir(), 1001)

	// Usage errors and refusals change nothing.
	must(t, 2, run(t, "", "--dir", dir, "enroll", "--user", "alice"))
	must(t, 2, run(t, "", "--dir", dir, "enroll", "--user", "alice", "--template", "smartcard-logon", "--vcard", vc, "--pin-stdin", "--random-pin"))
	r := must(t, 1, run(t, "123456\n", "--dir", dir, "enroll", "--user", "alice", "--template", "smartcard-logon", "--vcard", vc, "--pin-stdin"))
	if !strings.Contains(r.stderr, "PIN refused by policy") {
		t.Errorf("weak PIN: %s", r.stderr)
	}
	must(t, 1, run(t, "13572468\n", "--dir", dir, "enroll", "--user", "nobody", "--template", "smartcard-logon", "--vcard", vc, "--pin-stdin"))
	must(t, 1, run(t, "13572468\n", "--dir", dir, "enroll", "--user", "alice", "--template", "no-such-template", "--vcard", vc, "--pin-stdin"))

	r = must(t, 0, run(t, "13572468\n", "--dir", dir, "enroll", "--user", "alice", "--template", "smartcard-logon,smime-signing", "--vcard", vc, "--pin-stdin"))
	for _, w := range []string{"Card guid:", "enrolled for alice", "9A smartcard-logon serial", "9C smime-signing serial", "activate"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("enroll output lacks %q:\n%s", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout+r.stderr, "13572468") {
		t.Error("the PIN was printed")
	}
	st, err := virtual.LoadState(vc)
	if err != nil || string(st.PIN) != "13572468" {
		t.Fatalf("PIN on the card: %v", err)
	}
	// The card is active now: enrolling it again is refused.
	r = must(t, 1, run(t, "24681357\n", "--dir", dir, "enroll", "--user", "bob", "--template", "smartcard-logon", "--vcard", vc, "--pin-stdin"))
	if !strings.Contains(r.stderr, "is active") {
		t.Errorf("second enrollment: %s", r.stderr)
	}

	// A random PIN is shown once, and is the card's.
	vc2 := newVCard(t, t.TempDir(), 1002)
	r = must(t, 0, run(t, "", "--dir", dir, "enroll", "--user", "bob", "--template", "smartcard-logon", "--vcard", vc2, "--random-pin", "--key-algorithm", "rsa2048"))
	m := pinRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no initial PIN shown:\n%s", r.stdout)
	}
	if st, _ := virtual.LoadState(vc2); string(st.PIN) != m[1] {
		t.Fatal("the PIN shown is not the card's")
	}
	// Another officer's PIN from standard input: the demo officer with a
	// wrong PIN is refused and the failure audited.
	vc3 := newVCard(t, t.TempDir(), 1003)
	r = must(t, 1, run(t, "99999999\n", "--dir", dir, "enroll", "--user", "carol", "--template", "smartcard-logon", "--vcard", vc3, "--random-pin", "--officer-pin-stdin"))
	if !strings.Contains(r.stderr, "wrong PIN") {
		t.Errorf("wrong officer PIN: %s", r.stderr)
	}
}

func TestInitOfficer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "station")
	r := must(t, 0, run(t, "97531864\n", "--dir", dir, "init", "--domain", "corp.test", "--no-passphrase", "--officer", "olga", "--officer-pin-stdin"))
	if !strings.Contains(r.stdout, "enrollment officer olga: agent certificate") {
		t.Fatalf("init --officer:\n%s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "vcards", "olga.json")); err != nil {
		t.Fatal(err)
	}
	must(t, 0, run(t, "", "--dir", dir, "user", "add", "dave", "--upn", "dave@corp.test", "--mail", "dave@corp.test"))
	vc := newVCard(t, t.TempDir(), 2001)
	r = must(t, 0, run(t, "97531864\n13572468\n", "--dir", dir, "enroll", "--user", "dave", "--template", "smartcard-logon",
		"--vcard", vc, "--officer", "olga", "--officer-pin-stdin", "--pin-stdin"))
	if !strings.Contains(r.stdout, "enrolled for dave") {
		t.Fatalf("enroll by olga:\n%s", r.stdout)
	}
}

// TestEnrollBatch enrolls a queue of cards in a real pcscd reader.
func TestEnrollBatch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	must(t, 0, run(t, "", "--dir", dir, "demo", "--no-tui"))
	vs, err := virtual.NewState(3001)
	if err != nil {
		t.Fatal(err)
	}
	reader := cardtest.Attach(t, virtual.New(vs, ""))
	csv := filepath.Join(t.TempDir(), "users.csv")
	os.WriteFile(csv, []byte("# user,templates\nalice,smartcard-logon,smime-signing\nnobody,smartcard-logon\n"), 0o600)
	// Enter, alice's PIN; Enter, nobody's PIN (refused: not in the directory).
	r := run(t, "\n13572468\n\n24681357\n", "--dir", dir, "enroll", "--batch", csv, "--reader", reader, "--pin-stdin")
	if r.code != 1 || !strings.Contains(r.stdout, "1 of 2 cards enrolled") || !strings.Contains(r.stderr, "not enrolled: nobody") {
		t.Fatalf("batch: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "enrolled for alice") {
		t.Fatalf("alice not enrolled:\n%s", r.stdout)
	}
}

var cardIDRE = regexp.MustCompile(`Card (guid:[0-9a-f]{32}) `)

func TestManagedCardCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	must(t, 0, run(t, "", "--dir", dir, "demo", "--no-tui"))
	vc := newVCard(t, t.TempDir(), 4001)
	r := must(t, 0, run(t, "13572468\n", "--dir", dir, "enroll", "--user", "alice", "--template", "smartcard-logon,smime-signing", "--vcard", vc, "--pin-stdin"))
	id := cardIDRE.FindStringSubmatch(r.stdout)
	if id == nil {
		t.Fatalf("no card ID:\n%s", r.stdout)
	}

	// Alice blocked her PIN; the officer unblocks it with the stored PUK.
	vs, _ := virtual.LoadState(vc)
	vs.PINRetries = 0
	if err := vs.Save(vc); err != nil {
		t.Fatal(err)
	}
	must(t, 2, run(t, "", "--dir", dir, "card", "unblock", "--vcard", vc))
	r = must(t, 0, run(t, "24681357\n", "--dir", dir, "card", "unblock", "--managed", "--vcard", vc, "--pin-stdin"))
	if !strings.Contains(r.stdout, "set with the stored PUK") {
		t.Errorf("unblock: %s", r.stdout)
	}
	if vs, _ := virtual.LoadState(vc); string(vs.PIN) != "24681357" || vs.PINRetries != vs.PINMaxRetries {
		t.Fatal("PIN not unblocked")
	}
	// Renew with the holder's PIN.
	r = must(t, 0, run(t, "24681357\n", "--dir", dir, "card", "renew", "--vcard", vc, "--pin-stdin"))
	if !strings.Contains(r.stdout, "renewed") || strings.Count(r.stdout, "serial") != 2 {
		t.Errorf("renew: %s", r.stdout)
	}
	r = must(t, 0, run(t, "", "--dir", dir, "ca", "list", "--user", "alice"))
	if strings.Count(r.stdout, "superseded") != 2 {
		t.Errorf("old certificates not superseded:\n%s", r.stdout)
	}
	// The card is lost: replaced by a new one.
	vc2 := newVCard(t, t.TempDir(), 4002)
	r = must(t, 0, run(t, "", "--dir", dir, "card", "replace", id[1], "--vcard", vc2, "--random-pin"))
	if !strings.Contains(r.stdout, "revoked (keyCompromise) and terminated") || pinRE.FindStringSubmatch(r.stdout) == nil {
		t.Errorf("replace: %s", r.stdout)
	}
	must(t, 1, run(t, "", "--dir", dir, "card", "replace", id[1], "--vcard", newVCard(t, t.TempDir(), 4003), "--random-pin"))
	// The new card is reset to blank.
	must(t, 2, run(t, "", "--dir", dir, "card", "reset", "--managed", "--vcard", vc2))
	r = must(t, 0, run(t, "", "--dir", dir, "card", "reset", "--managed", "--vcard", vc2, "--yes", "--detail", "test"))
	if !strings.Contains(r.stdout, "erased and terminated; 2 certificate(s) revoked") {
		t.Errorf("reset: %s", r.stdout)
	}
	if vs, _ := virtual.LoadState(vc2); len(vs.Keys) > 1 {
		t.Error("card not erased")
	}
}

// TestEnrollWithOfficerCardInReader: the first officer is made on a card in
// one pcscd reader (init --officer --officer-reader), signs in from it, and
// enrolls the user's card found in the other reader.
func TestEnrollWithOfficerCardInReader(t *testing.T) {
	ovs, err := virtual.NewState(5001)
	if err != nil {
		t.Fatal(err)
	}
	officerReader := cardtest.Attach(t, virtual.New(ovs, ""))
	dir := filepath.Join(t.TempDir(), "station")
	r := must(t, 0, run(t, "97531864\n", "--dir", dir, "init", "--domain", "example.test", "--no-passphrase",
		"--officer", "olga", "--officer-reader", officerReader, "--officer-pin-stdin"))
	if !strings.Contains(r.stdout, "("+officerReader+")") {
		t.Fatalf("init --officer-reader:\n%s", r.stdout)
	}
	must(t, 0, run(t, "", "--dir", dir, "user", "add", "alice", "--upn", "alice@example.test", "--mail", "alice@example.test"))
	uvs, err := virtual.NewState(5002)
	if err != nil {
		t.Fatal(err)
	}
	userReader := cardtest.Attach(t, virtual.New(uvs, ""))
	// A wrong officer PIN is refused with the tries left.
	r = must(t, 1, run(t, "86420975\n13572468\n", "--dir", dir, "enroll", "--user", "alice", "--template", "smartcard-logon",
		"--reader", userReader, "--officer", "olga", "--officer-reader", officerReader, "--officer-pin-stdin", "--pin-stdin"))
	if !strings.Contains(r.stderr, "wrong PIN — 2 tries left") {
		t.Errorf("wrong officer PIN: %s", r.stderr)
	}
	r = must(t, 0, run(t, "97531864\n13572468\n", "--dir", dir, "enroll", "--user", "alice", "--template", "smartcard-logon",
		"--reader", userReader, "--officer", "olga", "--officer-reader", officerReader, "--officer-pin-stdin", "--pin-stdin"))
	if !strings.Contains(r.stdout, "enrolled for alice") || !strings.Contains(r.stdout, userReader) {
		t.Fatalf("enroll:\n%s", r.stdout)
	}
	r = must(t, 0, run(t, "", "--dir", dir, "ca", "list", "--user", "alice"))
	if !strings.Contains(r.stdout, "smartcard-logon") {
		t.Errorf("ca list:\n%s", r.stdout)
	}
}

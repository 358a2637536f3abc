package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/scstation/scstation/internal/tmuxtest"
)

// e2eWait bounds each wait for the screen; on-card key generation and a
// logon take well under a second here, the margin is for a loaded machine.
const e2eWait = 60 * time.Second

// TestDemoEndToEnd drives the real binary in tmux the way a newcomer does
// with `make run`, guided only by the screen: scstation demo → sign in as
// the officer with the PIN the screen gives → enroll alice on a blank
// virtual card (logon, signing and encryption certificates) → the logon
// test passes → the mail test passes → revoke alice's card → the logon
// test fails, revoked, and so does the mail test.
func TestDemoEndToEnd(t *testing.T) {
	bin := buildBinary(t, t.TempDir())
	dir := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command(bin, "demo", "--no-tui", "--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("demo --no-tui: %v\n%s", err, out)
	}
	freeServicePorts(t, dir)

	// No PC/SC: the demo's in-process virtual cards only, whatever
	// pcscd runs on this machine (libpcsclite finds pcscd's socket through
	// PCSCLITE_CSOCK_NAME). A race (with -race) stops the station, and the
	// next wait fails with the report on the screen.
	s := tmuxtest.Start(t, tmuxtest.Options{Width: 80, Height: 24, NoColor: true,
		Env: []string{"PCSCLITE_CSOCK_NAME=" + filepath.Join(t.TempDir(), "no-pcscd"), "HOME=" + t.TempDir(),
			"GORACE=halt_on_error=1"}},
		bin, "demo", "--dir", dir, "--idle-lock", "0")
	// Home shows the way: Officer, Enroll, Logon.
	s.WaitFor(e2eWait, "Demo: 4 Officer sign in · 5 Enroll alice · 8 Logon", "blank-1", "kdc", "listening on")

	// Sign in: the Officer screen names the card and the demo's PIN.
	s.SendKeys("4")
	screen := s.WaitFor(e2eWait, "virtual card of officer")
	m := regexp.MustCompile(`officer card's PIN is (\d+)`).FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("the Officer screen does not tell a newcomer the demo officer's PIN:\n%s", screen)
	}
	s.Type(m[1])
	s.SendKeys("Enter")
	s.WaitFor(e2eWait, "signed in as officer")

	// Enroll alice on the first blank card, with the logon, mail signing
	// and mail encryption certificates; the card holder types the PIN.
	const pin = "246813"
	s.SendKeys("5")
	s.WaitFor(e2eWait, "Enroll a card")
	s.Type("alice")
	s.WaitForRegexp(e2eWait, regexp.MustCompile(`1 user\n(?:.*\n)*\s*alice +Alice Smith`))
	s.SendKeys("Enter")
	s.WaitFor(e2eWait, "Certificates for alice", "[•] smartcard-logon")
	s.SendKeys("Down", "Down", "Space", "Down", "Space")
	s.WaitForRegexp(e2eWait, regexp.MustCompile(`\[•\] smime-encryption[^\n]*\n[^\n]*\[•\] smime-signing`))
	// huh moves to the next field in a command of its own: wait for the
	// focus (┃) before typing on.
	s.SendKeys("Enter")
	s.WaitForRegexp(e2eWait, regexp.MustCompile(`┃ Card`))
	s.SendKeys("Enter")
	s.WaitForRegexp(e2eWait, regexp.MustCompile(`┃ PIN`))
	s.SendKeys("Enter")
	s.WaitForRegexp(e2eWait, regexp.MustCompile(`┃ New PIN`))
	s.Type(pin)
	s.SendKeys("Enter")
	s.WaitForRegexp(e2eWait, regexp.MustCompile(`┃ The PIN again`))
	s.Type(pin)
	s.SendKeys("Enter")
	s.WaitFor(e2eWait, "Card enrolled for alice: 3 certificate(s)")

	// The logon test passes with alice's card and PIN.
	s.SendKeys("8")
	s.WaitFor(e2eWait, "PIN logon test", "> virtual card blank-1")
	s.SendKeys("Enter") // to the user field
	s.Type("alice")
	s.SendKeys("Enter")
	s.Type(pin)
	s.SendKeys("Enter")
	s.WaitFor(e2eWait, "Logon works", "TGT")

	// The mail test (ctrl+t, as the heading says) passes with the card's
	// own certificates.
	s.SendKeys("C-t")
	s.WaitFor(e2eWait, "Mail test", "> virtual card blank-1")
	s.SendKeys("Enter") // to the PIN
	s.Type(pin)
	s.SendKeys("Enter")
	s.WaitFor(e2eWait, "Mail works", "signature verified")
	s.SendKeys("C-t")
	s.WaitFor(e2eWait, "PIN logon test")

	// Revoke alice's card on the Cards screen: filter by owner, X, the
	// reason, confirm. The Logon screen takes digits for the PIN: leave it
	// with shift+tab, as its help line says (8 Logon → 7 Audit → 6 Cards).
	s.SendKeys("BTab", "BTab")
	s.WaitFor(e2eWait, "officer")
	s.SendKeys("/")
	s.Type("alice")
	s.SendKeys("Enter")
	s.WaitForRegexp(e2eWait, regexp.MustCompile(`> guid:\S+ +alice +active`))
	s.SendKeys("X")
	s.WaitForRegexp(e2eWait, regexp.MustCompile(`┃ Revoke card .* of alice`))
	s.SendKeys("Enter") // key compromise, the first reason
	s.WaitForRegexp(e2eWait, regexp.MustCompile(`┃ Revoke the card and all its certificates`))
	s.SendKeys("Left", "Enter") // Revoke, not Keep
	s.WaitForRegexp(e2eWait, regexp.MustCompile(`state +revoked`))

	// The logon test now fails, and says why: the user and card are
	// still chosen, the PIN is asked again.
	s.SendKeys("8")
	s.WaitFor(e2eWait, "PIN logon test", "user: alice")
	s.Type(pin)
	s.SendKeys("Enter")
	screen = s.WaitFor(e2eWait, "✗")
	if !regexp.MustCompile(`certificate revoked on \d{4}-\d{2}-\d{2}`).MatchString(screen) {
		t.Fatalf("the failed logon test does not say the certificate is revoked:\n%s", screen)
	}
	t.Logf("the logon test after the revocation:\n%s", screen)

	// And the mail test refuses the revoked signing certificate.
	s.SendKeys("C-t")
	s.WaitFor(e2eWait, "Mail test")
	s.Type(pin)
	s.SendKeys("Enter")
	s.WaitForRegexp(e2eWait, regexp.MustCompile(`✗ signing certificate: certificate revoked on \d{4}-\d{2}-\d{2}`))

	// Home's i removes the officer's virtual card (the first on Home's
	// list), which locks the station as pulling a real officer card does.
	s.SendKeys("Tab")
	s.WaitForRegexp(e2eWait, regexp.MustCompile(`> officer +officer's virtual card, inserted`))
	s.SendKeys("i")
	s.WaitFor(e2eWait, "locked: the officer card was removed", "no officer card found")
}

// freeServicePorts points the demo's embedded services at free loopback
// ports (port 0), so that the test neither needs the default ports nor
// meets another station on them.
func freeServicePorts(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, "config.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s*(?:kdc|ldap|ldaps|http)\s*=\s*)"127\.0\.0\.1:\d+"`)
	if n := len(re.FindAll(b, -1)); n != 4 {
		t.Fatalf("config.toml has %d service addresses, want 4:\n%s", n, b)
	}
	b = re.ReplaceAll(b, []byte(`${1}"127.0.0.1:0"`))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

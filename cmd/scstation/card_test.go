package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
)

func guidString(b []byte) string {
	var c card.CHUID
	copy(c.GUID[:], b)
	return c.GUIDString()
}

func contains(t *testing.T, what, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

// TestVCardNew: vcard new writes a loadable, owner-only state file with
// factory defaults and never overwrites one.
func TestVCardNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "card.json")
	r := must(t, 0, run(t, "", "vcard", "new", "--state", path, "--serial", "777"))
	st, err := virtual.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Serial != 777 || string(st.PIN) != card.DefaultPIN || string(st.PUK) != card.DefaultPUK {
		t.Errorf("state: serial %d", st.Serial)
	}
	contains(t, "vcard new", r.stdout, "777", guidString(st.GUID()), "factory defaults: PIN 123456, PUK 12345678, default management key")
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", fi.Mode())
	}
	before, _ := os.ReadFile(path)
	r = must(t, 1, run(t, "", "vcard", "new", "--serial", "778", "--state", path))
	contains(t, "refusal", r.stderr, "exists")
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("vcard new overwrote an existing state file")
	}

	rsaPath := filepath.Join(dir, "rsa.json")
	must(t, 0, run(t, "", "vcard", "new", "--rsa", "--state", rsaPath))
	st, err = virtual.LoadState(rsaPath)
	if err != nil {
		t.Fatal(err)
	}
	if k := st.Keys[virtual.SlotAttestation]; k == nil || k.Algorithm != virtual.AlgRSA2048 {
		t.Errorf("--rsa: attestation key %+v", k)
	}
	if st.Serial < 10_000_000 || st.Serial > 99_999_999 {
		t.Errorf("random serial %d", st.Serial)
	}
	must(t, 2, run(t, "", "vcard", "new", "--rsa", "--ec", "--state", filepath.Join(dir, "x.json")))
	must(t, 2, run(t, "", "vcard", "new"))
	must(t, 2, run(t, "", "vcard", "run", "--state", filepath.Join(dir, "missing.json")))
}

func selfSigned(t *testing.T, key crypto.Signer, cn string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(4711),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"scstation tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestCardCommands drives card list, status, pin change, pin unblock and
// reset against a virtual card through the real pcscd and vpcd.
func TestCardCommands(t *testing.T) {
	st, err := virtual.NewState(31337)
	if err != nil {
		t.Fatal(err)
	}
	guid := guidString(st.GUID())
	reader := cardtest.Attach(t, virtual.New(st, ""))
	rf := "--reader=" + reader
	var all strings.Builder
	cli := func(want int, stdin string, args ...string) result {
		t.Helper()
		r := must(t, want, run(t, stdin, args...))
		all.WriteString(r.stdout + r.stderr)
		return r
	}

	r := cli(0, "", "card", "list", rf)
	contains(t, "card list", r.stdout, reader, "PIV", "31337", "3BF8")

	// A key and a certificate put on the card with the client library.
	cardtest.WithPIV(t, reader, func(p *card.PIV) {
		if err := p.AuthenticateManagementKey(card.MgmtTDES, card.DefaultManagementKey); err != nil {
			t.Fatal(err)
		}
		pub, err := p.GenerateKey(card.SlotAuthentication, card.AlgECCP256, card.KeyPolicy{})
		if err != nil {
			t.Fatal(err)
		}
		k, err := p.PrivateKey(card.SlotAuthentication, pub, card.KeyAuth{PIN: card.DefaultPIN})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.SetCertificate(card.SlotAuthentication, selfSigned(t, k.(crypto.Signer), "Status Check")); err != nil {
			t.Fatal(err)
		}
	})
	r = cli(0, "", "card", "status", rf)
	contains(t, "card status", r.stdout, "GUID            "+guid, "serial          31337", "5.4.3",
		"PIN             3 tries left (factory default)", "PUK             3 tries left",
		"9A  PIV Authentication         key ECC P-256, generated on the card",
		"subject CN=Status Check,O=scstation tests", "issuer  CN=Status Check", "serial  1267",
		"9C  Digital Signature          no key")
	// Without --reader: this card if it is the only one, else a usage
	// error naming the readers with cards (other packages' tests may have
	// cards in the other virtual readers).
	if r := run(t, "", "card", "status"); r.code == 0 {
		contains(t, "card status without --reader", r.stdout, guid)
	} else if r.code != 2 || !strings.Contains(r.stderr, reader) {
		t.Errorf("card status without --reader: exit %d\n%s", r.code, r.stderr)
	}
	cli(2, "", "card", "status", "--reader", "no such reader")

	// PIN change; the new PIN works.
	const pin1, pin2 = "24681357", "97531864"
	cli(0, card.DefaultPIN+"\n"+pin1+"\n", "card", "pin", "change", "--pin-stdin", rf)
	cardtest.WithPIV(t, reader, func(p *card.PIV) {
		if err := p.VerifyPIN(pin1); err != nil {
			t.Errorf("the new PIN: %v", err)
		}
	})
	// Policy refusals cost no tries.
	for _, bad := range []string{"111111", "123456", "87654321", "12345", "123456789"} {
		r = cli(1, pin1+"\n"+bad+"\n", "card", "pin", "change", "--pin-stdin", rf)
		contains(t, "weak PIN", r.stderr, "PIN refused by policy")
	}
	cli(2, pin1+"\n", "card", "pin", "change", "--pin-stdin", rf)
	r = cli(0, "", "card", "status", rf)
	contains(t, "status after refusals", r.stdout, "PIN             3 tries left\n")

	// Wrong PIN until blocked.
	r = cli(1, "000000\n"+pin2+"\n", rf, "card", "pin", "change", "--pin-stdin")
	contains(t, "wrong PIN", r.stderr, "wrong PIN — 2 tries left")
	r = cli(1, "000000\n"+pin2+"\n", "card", "pin", "change", "--pin-stdin", rf)
	contains(t, "wrong PIN", r.stderr, "wrong PIN — 1 try left")
	r = cli(1, "000000\n"+pin2+"\n", "card", "pin", "change", "--pin-stdin", rf)
	contains(t, "wrong PIN", r.stderr, "now blocked", "card pin unblock")
	r = cli(1, pin1+"\n"+pin2+"\n", "card", "pin", "change", "--pin-stdin", rf)
	contains(t, "blocked PIN", r.stderr, "blocked", "unblock it with the PUK")
	r = cli(0, "", "card", "status", rf)
	contains(t, "status when blocked", r.stdout, "PIN             blocked")

	// Unblock with the PUK (a wrong one first).
	r = cli(1, "00000000\n"+pin2+"\n", "card", "pin", "unblock", "--pin-stdin", rf)
	contains(t, "wrong PUK", r.stderr, "wrong PUK — 2 tries left")
	cli(0, card.DefaultPUK+"\n"+pin2+"\n", "card", "unblock", "--pin-stdin", rf)
	cardtest.WithPIV(t, reader, func(p *card.PIV) {
		if err := p.VerifyPIN(pin2); err != nil {
			t.Errorf("the PIN set by unblock: %v", err)
		}
	})

	// Reset needs --yes; with PIN and PUK blocked it is the only way out.
	for range 3 {
		cli(1, "000000\n"+pin1+"\n", "card", "pin", "change", "--pin-stdin", rf)
	}
	// A good PUK restored its tries.
	r = cli(1, "00000000\n"+pin1+"\n", "card", "pin", "unblock", "--pin-stdin", rf)
	contains(t, "wrong PUK", r.stderr, "wrong PUK — 2 tries left")
	r = cli(1, "00000000\n"+pin1+"\n", "card", "pin", "unblock", "--pin-stdin", rf)
	contains(t, "wrong PUK", r.stderr, "wrong PUK — 1 try left")
	r = cli(1, "00000000\n"+pin1+"\n", "card", "pin", "unblock", "--pin-stdin", rf)
	contains(t, "PUK blocked", r.stderr, "PUK is now blocked", "card reset")
	r = cli(1, card.DefaultPUK+"\n"+pin1+"\n", "card", "pin", "unblock", "--pin-stdin", rf)
	contains(t, "PUK blocked", r.stderr, "PUK of the card", "blocked")
	r = cli(2, "", "card", "reset", rf)
	contains(t, "reset without --yes", r.stderr, "--yes")
	r = cli(0, "", "card", "reset", "--yes", rf)
	contains(t, "reset", r.stdout, "factory defaults")
	r = cli(0, "", "card", "status", rf)
	contains(t, "status after reset", r.stdout, "PIN             3 tries left (factory default)",
		"PUK             3 tries left (factory default)", "9A  PIV Authentication         no key")
	if strings.Contains(r.stdout, "Status Check") {
		t.Errorf("the certificate survived the reset:\n%s", r.stdout)
	}
	cardtest.WithPIV(t, reader, func(p *card.PIV) {
		if err := p.VerifyPIN(card.DefaultPIN); err != nil {
			t.Errorf("the default PIN after reset: %v", err)
		}
	})

	for _, secret := range []string{pin1, pin2} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("a PIN appeared in the output")
		}
	}
}

// syncBuffer is a bytes.Buffer for a command running in another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestVCardRun: vcard run attaches a state file to vpcd, card status sees
// it, a change made through PC/SC lands in the state file, and the card
// leaves the reader when the command is stopped.
func TestVCardRun(t *testing.T) {
	reader, addr := cardtest.Reader(t)
	path := filepath.Join(t.TempDir(), "card.json")
	must(t, 0, run(t, "", "vcard", "new", "--state", path, "--serial", "5150"))
	st, err := virtual.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	root := a.rootCommand()
	root.SetArgs([]string{"vcard", "run", "--state", path, "--vpcd", addr})
	root.SetOut(&out)
	root.SetErr(&errb)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	pc, err := card.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Release()
	present := func() bool {
		info, err := pc.Inspect(reader, false)
		return err == nil && info.Present
	}
	waitFor := func(cond func() bool) bool {
		for deadline := time.Now().Add(cardtest.CardWait); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				return false
			}
		}
		return true
	}
	if !waitFor(present) {
		cancel()
		t.Fatalf("the card did not appear in %q\nstdout: %s\nstderr: %s", reader, out.String(), errb.String())
	}

	r := must(t, 0, run(t, "", "card", "status", "--reader", reader))
	contains(t, "card status", r.stdout, "serial          5150", guidString(st.GUID()))
	must(t, 0, run(t, card.DefaultPIN+"\n86427531\n", "card", "pin", "change", "--pin-stdin", "--reader", reader))
	// The same card cannot run twice.
	r = must(t, 1, run(t, "", "vcard", "run", "--state", path, "--vpcd", addr))
	contains(t, "second vcard run", r.stderr, "in use")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("vcard run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("vcard run did not stop")
	}
	if !waitFor(func() bool { return !present() }) {
		t.Error("the card stayed in the reader after vcard run stopped")
	}
	contains(t, "vcard run", out.String(), "5150", "card removed")
	st, err = virtual.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(st.PIN) != "86427531" {
		t.Error("the PIN change is not in the state file")
	}

	// The real binary stops on SIGTERM, exiting 0, and the card leaves.
	if testing.Short() {
		return
	}
	bin := filepath.Join(t.TempDir(), "scstation")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	cmd := exec.Command(bin, "vcard", "run", "--state", path, "--vpcd", addr)
	var binOut syncBuffer
	cmd.Stdout, cmd.Stderr = &binOut, &binOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if !waitFor(present) {
		t.Fatalf("the binary's card did not appear in %q:\n%s", reader, binOut.String())
	}
	r = must(t, 0, run(t, "", "card", "status", "--reader", reader))
	contains(t, "card status", r.stdout, "serial          5150")
	cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("vcard run exited with %v after SIGTERM:\n%s", err, binOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("vcard run did not stop on SIGTERM")
	}
	if !waitFor(func() bool { return !present() }) {
		t.Error("the card stayed in the reader after SIGTERM")
	}
}

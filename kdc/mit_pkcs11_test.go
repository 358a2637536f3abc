package kdc_test

import (
	"crypto"
	"crypto/x509"
	"os"
	"strings"
	"testing"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/kdc/kdctest"
	"github.com/scstation/scstation/pki"
)

// TestMITKinitPKCS11 runs MIT kinit with a PKCS11: identity through
// opensc-pkcs11 against a virtual card on pcscd (an RSA-2048 key generated
// in slot 9A, a smartcard-logon certificate from the test CA), the PIN
// given on standard input, in DH mode and in public-key mode.
func TestMITKinitPKCS11(t *testing.T) {
	s := kdctest.New(t, kdctest.Options{KeyAlgorithm: pki.RSA2048})
	m := requireMITClient(t, s)
	identity := "X509_user_identity=" + kdctest.PKCS11Identity(t)
	s.AddUser("alice")

	st, err := virtual.NewState(5150)
	if err != nil {
		t.Fatal(err)
	}
	reader := cardtest.Attach(t, virtual.New(st, ""))
	cardtest.WithPIV(t, reader, func(p *card.PIV) {
		if err := p.AuthenticateManagementKey(card.MgmtTDES, card.DefaultManagementKey); err != nil {
			t.Fatal(err)
		}
		cardtest.IssueOnCard(t, p, card.SlotAuthentication, card.AlgRSA2048, func(k crypto.Signer) *x509.Certificate {
			return s.CA.IssueKey(t, "smartcard-logon", "alice", k).Certificate
		})
	})

	// OpenSC sees only this test's reader.
	env := cardtest.OpenSCEnv(t, reader)
	m.env = append(m.env, env[len(env)-1])
	for _, mode := range []struct {
		name  string
		extra []string
		trace string
	}{
		{"pkcs11-dh", nil, "PKINIT client used KDF"},
		{"pkcs11-rsa", []string{"-X", "flag_RSA_PROTOCOL=yes"}, "PKINIT client verified RSA reply"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			args := append([]string{"-X", identity}, mode.extra...)
			r := m.runStdin(t, mode.name, card.DefaultPIN+"\n", m.kinit, append(args, "alice@"+kdctest.Realm)...)
			if r.err != nil {
				t.Fatalf("kinit: %v: %s\n%s", r.err, r.out, r.trace)
			}
			if os.Getenv("PKCS11_TRACE") != "" {
				t.Logf("%s\n%s", r.out, r.trace)
			}
			if !strings.Contains(r.trace, "PKINIT PKCS#11 slotid") || !strings.Contains(r.out, "PIN") {
				t.Errorf("kinit did not use the card through PKCS#11 with a PIN prompt:\n%s\n%s", r.out, r.trace)
			}
			if !strings.Contains(r.trace, mode.trace) {
				t.Errorf("kinit trace lacks %q:\n%s", mode.trace, r.trace)
			}
			kl := m.run(t, mode.name, m.klist)
			if kl.err != nil || !strings.Contains(kl.out, "krbtgt/"+kdctest.Realm+"@"+kdctest.Realm) {
				t.Fatalf("klist: %v\n%s", kl.err, kl.out)
			}
			kv := m.run(t, mode.name, m.kvno, kdctest.Service+"@"+kdctest.Realm)
			if kv.err != nil {
				t.Fatalf("kvno: %v: %s", kv.err, kv.out)
			}
		})
	}
	// A wrong PIN: the card refuses to sign, kinit fails before sending.
	r := m.runStdin(t, "pkcs11-wrong-pin", "99999999\n", m.kinit, "-X", identity, "alice@"+kdctest.Realm)
	t.Logf("kinit with a wrong PIN: %v: %s", r.err, r.out)
	if r.err == nil {
		t.Fatalf("kinit with a wrong PIN succeeded:\n%s", r.trace)
	}
	if !strings.Contains(s.Log.String(), "pkinit-rsa") {
		t.Errorf("the KDC did not log the public-key mode logon")
	}
}

package cardtest

import (
	"crypto"
	"crypto/x509"
	"os"
	"testing"

	"github.com/scstation/scstation/card"
)

// OpenSCModule is the path of OpenSC's PKCS#11 module (opensc-pkcs11.so);
// without one the test is skipped (fails under CI).
func OpenSCModule(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{
		"/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
		"/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
		"/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
		"/usr/lib/aarch64-linux-gnu/pkcs11/opensc-pkcs11.so",
		"/usr/lib64/opensc-pkcs11.so",
		"/usr/lib/opensc-pkcs11.so",
	} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	skip(tb, "peer opensc-pkcs11.so is not installed (run make deps)")
	return ""
}

// WithPIV runs fn on the PIV application of the card in reader, reached
// through PC/SC, and closes the connection and the PC/SC context when fn
// returns, so that other programs (OpenSC, kinit) can use the card after.
func WithPIV(tb testing.TB, reader string, fn func(p *card.PIV)) {
	tb.Helper()
	p, closePIV := openPIV(tb, reader)
	defer closePIV()
	fn(p)
}

// OpenPIV opens the PIV application of the card in reader through a PC/SC
// context of its own; both stay open until the end of the test.
func OpenPIV(tb testing.TB, reader string) *card.PIV {
	tb.Helper()
	p, closePIV := openPIV(tb, reader)
	tb.Cleanup(closePIV)
	return p
}

func openPIV(tb testing.TB, reader string) (*card.PIV, func()) {
	tb.Helper()
	ctx, err := card.EstablishContext()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := ctx.Connect(reader)
	if err != nil {
		ctx.Release()
		tb.Fatal(err)
	}
	p, err := card.OpenPIV(c)
	if err != nil {
		c.Close()
		ctx.Release()
		tb.Fatal(err)
	}
	return p, func() { p.Close(); ctx.Release() }
}

// IssueOnCard generates a key of alg in slot on the card (the management
// key must already be authenticated), has issue certify it (the key is the
// card's, usable with the factory PIN) and stores the certificate in the
// slot. It returns the certificate read back from the card and the card key.
func IssueOnCard(tb testing.TB, p *card.PIV, slot card.Slot, alg card.Algorithm, issue func(key crypto.Signer) *x509.Certificate) (*x509.Certificate, crypto.PrivateKey) {
	tb.Helper()
	pub, err := p.GenerateKey(slot, alg, card.KeyPolicy{})
	if err != nil {
		tb.Fatal(err)
	}
	key, err := p.PrivateKey(slot, pub, card.KeyAuth{PIN: card.DefaultPIN})
	if err != nil {
		tb.Fatal(err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		tb.Fatalf("the card key in slot %v is not a crypto.Signer", slot)
	}
	if err := p.SetCertificate(slot, issue(signer)); err != nil {
		tb.Fatal(err)
	}
	cert, err := p.Certificate(slot)
	if err != nil {
		tb.Fatal(err)
	}
	return cert, key
}

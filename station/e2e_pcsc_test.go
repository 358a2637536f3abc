package station

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/internal/testpeer"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/smime"
)

// cardKey opens the card in reader through PC/SC and returns the key of
// slot for cert, unlocked with pin; the card stays open until the test
// ends.
func cardKey(t *testing.T, reader string, slot card.Slot, cert *x509.Certificate, pin string) crypto.PrivateKey {
	t.Helper()
	p := cardtest.OpenPIV(t, reader)
	onCard, err := p.Certificate(slot)
	if err != nil || !onCard.Equal(cert) {
		t.Fatalf("certificate in slot %v: %v", slot, err)
	}
	k, err := p.PrivateKey(slot, cert.PublicKey, card.KeyAuth{PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestEndToEndPCSC is issue 7's end-to-end test, through the real pcscd
// and vpcd with emulated cards: the officer enrolls alice (RSA: MIT kinit
// signs through PKCS#11 with RSA only) and bob (P-256: his card decrypts
// by ECDH) with logon and S/MIME keys; OpenSC reads alice's card back; MIT
// kinit logs alice on with her card through opensc-pkcs11 against the
// embedded KDC; alice signs a mail with her card and encrypts it to bob's
// certificate from the directory; bob's card decrypts it, the station
// verifies alice's signature, and so does openssl cms.
func TestEndToEndPCSC(t *testing.T) {
	pkcs15 := testpeer.Path(t, "pkcs15-tool")
	openssl := testpeer.Path(t, "openssl")
	st := demoStation(t)
	ctx := context.Background()
	templates := []string{"smartcard-logon", "smime-signing", "smime-encryption"}
	const bobPIN = "80642097"

	enroll := func(user, pin string, serial uint32, alg pki.KeyAlgorithm) (string, *EnrollResult) {
		vs, err := virtual.NewState(serial)
		if err != nil {
			t.Fatal(err)
		}
		reader := cardtest.Attach(t, virtual.New(vs, ""))
		res, err := st.Enroll(ctx, EnrollRequest{User: user, Templates: templates, Reader: reader, PIN: pin, KeyAlgorithm: alg})
		if err != nil {
			t.Fatalf("enrolling %s: %v", user, err)
		}
		t.Logf("%s enrolled in %s: %v (card %v, CA %v)", user, reader, res.Total, res.CardTime, res.CATime)
		return reader, res
	}
	aliceReader, alice := enroll("alice", alicePIN, 7001, pki.RSA2048)
	bobReader, bob := enroll("bob", bobPIN, 7002, pki.P256)

	// OpenSC reads alice's card back: the three certificates as issued.
	env := cardtest.OpenSCEnv(t, aliceReader)
	for i, id := range []string{"01", "02", "03"} {
		out, err := runPeer(t, env, "", pkcs15, "--read-certificate", id)
		if err != nil {
			t.Fatalf("pkcs15-tool --read-certificate %s: %v\n%s", id, err, out)
		}
		b, _ := pem.Decode([]byte(out[strings.Index(out, "-----BEGIN"):]))
		if b == nil || !bytes.Equal(b.Bytes, alice.Certificates[i].Raw) {
			t.Fatalf("certificate %s read by OpenSC differs from the issued one", id)
		}
	}

	// MIT kinit logs alice on with her card against the embedded KDC.
	k, stop := serveKDC(t, st, KDCOptions{TCP: "127.0.0.1:0"})
	defer stop()
	kinitCard(t, st, k.TCPAddr().String(), env, alicePIN)

	// Alice signs with her card (9C) and encrypts to bob's certificate,
	// which the station finds in the directory by his mail address.
	mt, err := st.MailTrust()
	if err != nil {
		t.Fatal(err)
	}
	to, err := mt.Recipients(ctx, []string{"bob@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(to) != 1 || !to[0].Equal(bob.Certificates[2]) {
		t.Fatalf("bob's encryption certificate from the directory: %v", to)
	}
	aliceSig := alice.Certificates[1]
	aliceKey := cardKey(t, aliceReader, card.SlotSignature, aliceSig, alicePIN)
	const body = "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: the plan\r\n\r\nMeet at noon.\r\n"
	signed, err := smime.Sign([]byte(body), aliceKey.(crypto.Signer), aliceSig, nil, nil)
	if err != nil {
		t.Fatalf("signing with alice's card: %v", err)
	}
	enc, err := smime.Encrypt(signed, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc, []byte("Meet at noon")) {
		t.Fatal("the encrypted mail shows its body")
	}

	// Bob's card (9D, ECDH) decrypts it; the station verifies alice's
	// signature against its CA, database and directory.
	bobKey := cardKey(t, bobReader, card.SlotKeyManagement, bob.Certificates[2], bobPIN)
	plain, err := smime.Decrypt(enc, bobKey, bob.Certificates[2])
	if err != nil {
		t.Fatalf("decrypting with bob's card: %v", err)
	}
	v, err := smime.Verify(plain, mt.VerifyOptions(ctx))
	if err != nil || !v.Valid() || !v.RevocationChecked || !v.Signer.Equal(aliceSig) {
		t.Fatalf("verifying alice's signature: %v %+v", err, v)
	}
	if !bytes.Contains(v.Content, []byte("Meet at noon.")) {
		t.Fatalf("signed content: %q", v.Content)
	}
	// openssl cms agrees.
	msgFile := filepath.Join(t.TempDir(), "plain.eml")
	if err := os.WriteFile(msgFile, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runPeer(t, nil, "", openssl, "cms", "-verify", "-in", msgFile, "-CAfile", filepath.Join(st.Dir, caChainFile), "-purpose", "smimesign")
	if err != nil || !strings.Contains(out, "Meet at noon.") {
		t.Fatalf("openssl cms -verify: %v\n%s", err, out)
	}
}

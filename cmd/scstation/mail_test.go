package main

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/pki"
)

type mailRealm struct {
	dir, work, d string
}

func newMailRealm(t *testing.T, users ...string) *mailRealm {
	t.Helper()
	r := &mailRealm{dir: filepath.Join(t.TempDir(), "st"), work: t.TempDir()}
	r.d = "--dir=" + r.dir
	must(t, 0, run(t, "", "init", "--domain", "example.test", "--no-passphrase", r.d))
	for _, u := range users {
		must(t, 0, run(t, "", "user", "add", u, "--mail", u+"@example.test", r.d))
	}
	return r
}

// issue has the station CA issue template to user for key; it returns
// the certificate file and, for a soft key, the key file.
func (r *mailRealm) issue(t *testing.T, template, user string, key crypto.Signer) (certFile, keyFile string) {
	t.Helper()
	name := user + "-" + template
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	csrFile := filepath.Join(r.work, name+".csr")
	if err := os.WriteFile(csrFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(r.work, name+".pem")
	must(t, 0, run(t, "", "ca", "issue", "--template", template, "--csr", csrFile, "--user", user, "--out", certFile, r.d))
	if b, err := pki.MarshalPrivateKey(key); err == nil {
		keyFile = filepath.Join(r.work, name+".key")
		if err := os.WriteFile(keyFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

func (r *mailRealm) softIssue(t *testing.T, template, user string, alg pki.KeyAlgorithm) (string, string) {
	t.Helper()
	key, err := pki.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return r.issue(t, template, user, key)
}

func (r *mailRealm) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(r.work, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const mailMsg = "From: Alice <alice@example.test>\nTo: bob@example.test\nSubject: hello\n\nHi Bob, 8-bit: \xc3\xa9t\xc3\xa9.\n"

// TestMailCommands: sign-encrypt, decrypt+verify and verify with key
// files, each checked against openssl cms; the exit codes for invalid
// messages and environment errors.
func TestMailCommands(t *testing.T) {
	r := newMailRealm(t, "alice", "bob", "carol")
	aliceSig, aliceSigKey := r.softIssue(t, "smime-signing", "alice", pki.P256)
	aliceEnc, aliceEncKey := r.softIssue(t, "smime-encryption", "alice", pki.RSA2048)
	bobEnc, bobEncKey := r.softIssue(t, "smime-encryption", "bob", pki.P256)
	carolEnc, carolEncKey := r.softIssue(t, "smime-encryption", "carol", pki.RSA2048)
	chain := filepath.Join(r.dir, "ca", "chain.pem")
	in := r.file(t, "msg.eml", mailMsg)

	for _, opts := range [][]string{nil, {"--gcm"}, {"--oaep", "--aes128"}, {"--opaque", "--gcm", "--oaep"}} {
		enc := filepath.Join(r.work, "enc.eml")
		res := must(t, 0, run(t, "", append([]string{"mail", "sign-encrypt", "--in", in, "--out", enc, "--cert", aliceSig, "--key", aliceSigKey, r.d}, opts...)...))
		contains(t, "sign-encrypt", res.stdout, "encrypted for bob@example.test, alice@example.test")

		// openssl reads it: bob decrypts, then verifies against the CA.
		inner := filepath.Join(r.work, "inner.eml")
		openssl(t, "cms", "-decrypt", "-in", enc, "-recip", bobEnc, "-inkey", bobEncKey, "-out", inner)
		if !strings.Contains(openssl(t, "cms", "-verify", "-in", inner, "-CAfile", chain), "Hi Bob, 8-bit: =C3=A9t=C3=A9.") {
			t.Fatal("openssl verify output lacks the body")
		}

		// We read it: bob, and alice (the sender, always a recipient).
		for _, k := range [][2]string{{bobEnc, bobEncKey}, {aliceEnc, aliceEncKey}} {
			out := filepath.Join(r.work, "plain.eml")
			res = must(t, 0, run(t, "", "mail", "decrypt", "--in", enc, "--out", out, "--cert", k[0], "--key", k[1], r.d))
			contains(t, "decrypt report", res.stdout, "signature:   ok", "certificate: ok", "address:     ok    alice@example.test", "revocation:  ok")
			plain, _ := os.ReadFile(out)
			contains(t, "decrypted", string(plain), "From: Alice <alice@example.test>", "Subject: hello", "=C3=A9t=C3=A9.")
		}
		// carol is not a recipient: invalid for her (exit 1).
		res = must(t, 1, run(t, "", "mail", "decrypt", "--in", enc, "--cert", carolEnc, "--key", carolEncKey, r.d))
		contains(t, "carol", res.stderr, "not encrypted for this certificate")
	}

	// sign, then verify; tampered is invalid (exit 1), openssl agrees.
	signed := filepath.Join(r.work, "signed.eml")
	must(t, 0, run(t, "", "mail", "sign", "--in", in, "--out", signed, "--cert", aliceSig, "--key", aliceSigKey, r.d))
	openssl(t, "cms", "-verify", "-in", signed, "-CAfile", chain, "-out", os.DevNull)
	res := must(t, 0, run(t, "", "mail", "verify", "--in", signed, r.d))
	contains(t, "verify", res.stdout, "Subject: hello")
	contains(t, "verify report", res.stderr, "signature:   ok")
	b, _ := os.ReadFile(signed)
	tampered := r.file(t, "tampered.eml", strings.Replace(string(b), "Hi Bob", "Hi Bop", 1))
	res = must(t, 1, run(t, "", "mail", "verify", "--in", tampered, r.d))
	contains(t, "tampered", res.stderr, "signature:   FAIL", "message was changed")

	// What openssl signs with alice's key we verify, certificate attached
	// or not (then found in the directory).
	body := r.file(t, "body.txt", "Content-Type: text/plain\r\n\r\nfrom openssl\r\n")
	for _, extra := range [][]string{nil, {"-nocerts"}} {
		out := filepath.Join(r.work, "os-signed.eml")
		openssl(t, append([]string{"cms", "-sign", "-in", body, "-signer", aliceSig, "-inkey", aliceSigKey, "-md", "sha256", "-from", "alice@example.test", "-out", out}, extra...)...)
		// The signing certificate is not in the directory as an encryption
		// one, but it is published: the lookup finds it.
		must(t, 0, run(t, "", "mail", "verify", "--in", out, r.d))
	}

	// certs-only for bob: openssl finds his certificate and the CA.
	certsFile := filepath.Join(r.work, "bob.p7c")
	must(t, 0, run(t, "", "mail", "certs", "--to", "bob@example.test", "--out", certsFile, r.d))
	p7 := filepath.Join(r.work, "bob.p7")
	openssl(t, "smime", "-pk7out", "-in", certsFile, "-out", p7)
	listed := openssl(t, "pkcs7", "-in", p7, "-print_certs", "-noout")
	if strings.Count(listed, "subject=") != 2 || !strings.Contains(listed, "EXAMPLE.TEST") {
		t.Fatalf("certs-only lists:\n%s", listed)
	}
	must(t, 1, run(t, "", "mail", "certs", "--to", "nobody@example.test", r.d))

	// Refusals and errors.
	res = must(t, 1, run(t, "", "mail", "encrypt", "--in", in, "--to", "nobody@example.test", r.d))
	contains(t, "unknown recipient", res.stderr, "nobody@example.test", "no user with this mail address")
	must(t, 2, run(t, "", "mail", "verify", "--in", filepath.Join(r.work, "missing.eml"), r.d))
	must(t, 2, run(t, "", "mail", "sign", "--in", in, r.d))                                          // no key
	must(t, 1, run(t, "", "mail", "decrypt", "--in", in, "--cert", bobEnc, "--key", bobEncKey, r.d)) // not encrypted
	res = must(t, 1, run(t, "", "mail", "sign", "--in", in, "--cert", bobEnc, "--key", bobEncKey, r.d))
	contains(t, "encryption cert signs", res.stderr, "key usage does not allow mail signing")
	bobSig, bobSigKey := r.softIssue(t, "smime-signing", "bob", pki.P256)
	res = must(t, 1, run(t, "", "mail", "sign", "--in", in, "--cert", bobSig, "--key", bobSigKey, r.d))
	contains(t, "bob signs as alice", res.stderr, "From alice@example.test is not an address of the signing certificate")
}

// TestMailCard: keys generated on a virtual card behind pcscd sign (9C)
// and decrypt (9D) through the command line, with the PIN on stdin.
func TestMailCard(t *testing.T) {
	r := newMailRealm(t, "alice", "bob")
	bobEnc, bobEncKey := r.softIssue(t, "smime-encryption", "bob", pki.RSA2048)
	st, err := virtual.NewState(5151)
	if err != nil {
		t.Fatal(err)
	}
	reader := cardtest.Attach(t, virtual.New(st, ""))
	cardtest.WithPIV(t, reader, func(p *card.PIV) {
		if err := p.AuthenticateManagementKey(card.MgmtTDES, card.DefaultManagementKey); err != nil {
			t.Fatal(err)
		}
		for _, s := range []struct {
			slot     card.Slot
			alg      card.Algorithm
			template string
		}{{card.SlotSignature, card.AlgECCP256, "smime-signing"}, {card.SlotKeyManagement, card.AlgECCP256, "smime-encryption"}} {
			pub, err := p.GenerateKey(s.slot, s.alg, card.KeyPolicy{})
			if err != nil {
				t.Fatal(err)
			}
			k, err := p.PrivateKey(s.slot, pub, card.KeyAuth{PIN: card.DefaultPIN})
			if err != nil {
				t.Fatal(err)
			}
			certFile, _ := r.issue(t, s.template, "alice", k.(crypto.Signer))
			pemData, _ := os.ReadFile(certFile)
			blk, _ := pem.Decode(pemData)
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.SetCertificate(s.slot, cert); err != nil {
				t.Fatal(err)
			}
		}
	})
	in := r.file(t, "msg.eml", mailMsg)
	enc := filepath.Join(r.work, "enc.eml")
	pin := card.DefaultPIN + "\n"
	must(t, 0, run(t, pin, "mail", "sign-encrypt", "--in", in, "--out", enc, "--reader", reader, "--pin-stdin", r.d))
	// bob (soft key) and openssl read it.
	inner := filepath.Join(r.work, "inner.eml")
	openssl(t, "cms", "-decrypt", "-in", enc, "-recip", bobEnc, "-inkey", bobEncKey, "-out", inner)
	openssl(t, "cms", "-verify", "-in", inner, "-CAfile", filepath.Join(r.dir, "ca", "chain.pem"), "-out", os.DevNull)
	// alice's card decrypts her sent mail (ECDH in slot 9D) and verifies it.
	res := must(t, 0, run(t, pin, "mail", "decrypt", "--in", enc, "--out", filepath.Join(r.work, "plain.eml"), "--reader", reader, "--pin-stdin", r.d))
	contains(t, "card decrypt", res.stdout, "signature:   ok", "revocation:  ok")
	// A wrong PIN is a refusal.
	res = must(t, 1, run(t, "654321\n", "mail", "decrypt", "--in", enc, "--reader", reader, "--pin-stdin", r.d))
	contains(t, "wrong PIN", res.stderr, "wrong PIN")
}

// --out /dev/null writes to the device; it never replaces it with a file
// (as root, a rename over it did, for the whole machine).
func TestMailOutDevNull(t *testing.T) {
	if err := writeMailOutput(&cobra.Command{}, os.DevNull, []byte("message")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(os.DevNull); err != nil || fi.Mode().IsRegular() {
		t.Fatalf("%s is now %v, %v", os.DevNull, fi.Mode(), err)
	}
}

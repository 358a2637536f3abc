package smime_test

import (
	"crypto"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/cardtest"
	"github.com/scstation/scstation/card/virtual"
	"github.com/scstation/scstation/pki/pkitest"
	"github.com/scstation/scstation/pki/smime"
)

// TestCardKeysThroughPCSCD: keys generated on a virtual card, reached
// through the real pcscd; the card signs (9C) what openssl verifies, and
// decrypts (9D RSA, 9A EC) what openssl cms -encrypt makes, OAEP and GCM
// included.
func TestCardKeysThroughPCSCD(t *testing.T) {
	w := newWorld(t)
	w.env.Users.Add("dave")
	st, err := virtual.NewState(7001)
	if err != nil {
		t.Fatal(err)
	}
	reader := cardtest.Attach(t, virtual.New(st, ""))
	cardtest.WithPIV(t, reader, func(p *card.PIV) {
		if err := p.AuthenticateManagementKey(card.MgmtTDES, card.DefaultManagementKey); err != nil {
			t.Fatal(err)
		}
		// onCard generates a key in slot, has the CA issue template for it
		// (the request signed by the card key) and stores the certificate.
		onCard := func(slot card.Slot, alg card.Algorithm, template string) (*x509.Certificate, crypto.PrivateKey, string) {
			cert, key := cardtest.IssueOnCard(t, p, slot, alg, func(k crypto.Signer) *x509.Certificate {
				return w.env.IssueKey(t, template, "dave", k).Certificate
			})
			return cert, key, writeCert(t, w, slot, cert)
		}
		sigCert, sigKey, sigFile := onCard(card.SlotSignature, card.AlgECCP256, "smime-signing")
		rsaCert, rsaKey, rsaFile := onCard(card.SlotKeyManagement, card.AlgRSA2048, "smime-encryption")
		ecCert, ecKey, ecFile := onCard(card.SlotAuthentication, card.AlgECCP256, "smime-encryption")
		_ = sigFile

		// Signed on the card, verified by openssl.
		signed, err := smime.Sign([]byte(strings.ReplaceAll(sample, "alice", "dave")), sigKey.(crypto.Signer), sigCert, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := openssl(t, nil, "cms", "-verify", "-in", writeFile(t, t.TempDir(), "s.eml", signed), "-CAfile", w.CAFile)
		checkEntity(t, "card-signed, openssl-verified", out)
		if _, err := smime.Verify(signed, smime.VerifyOptions{Roots: w.Roots}); err != nil {
			t.Fatal(err)
		}

		in := writeFile(t, t.TempDir(), "in.txt", []byte("Content-Type: text/plain\r\n\r\nfor the card\r\n"))
		for _, tc := range []struct {
			name string
			cert *x509.Certificate
			key  crypto.PrivateKey
			args []string
		}{
			{"rsa-v15", rsaCert, rsaKey, []string{"-aes256", "-recip", rsaFile}},
			{"rsa-oaep", rsaCert, rsaKey, []string{"-aes256", "-recip", rsaFile, "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha256"}},
			{"rsa-gcm", rsaCert, rsaKey, []string{"-aes-256-gcm", "-recip", rsaFile}},
			{"ec-ecdh", ecCert, ecKey, []string{"-aes256", "-recip", ecFile}},
			{"ec-ecdh-gcm", ecCert, ecKey, []string{"-aes-256-gcm", "-recip", ecFile, "-keyopt", "ecdh_kdf_md:sha256"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				enc := openssl(t, nil, append([]string{"cms", "-encrypt", "-in", in}, tc.args...)...)
				dec, err := smime.Decrypt(enc, tc.key, tc.cert)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasSuffix(string(dec), "\r\n\r\nfor the card\r\n") {
					t.Fatalf("decrypted %q", dec)
				}
			})
		}
		// Our own encryption to the card keys, OAEP for RSA.
		enc, err := smime.Encrypt([]byte(sample), []*x509.Certificate{rsaCert, ecCert}, &smime.EncryptOptions{OAEP: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			c *x509.Certificate
			k crypto.PrivateKey
		}{{rsaCert, rsaKey}, {ecCert, ecKey}} {
			dec, err := smime.Decrypt(enc, r.k, r.c)
			if err != nil {
				t.Fatal(err)
			}
			checkEntity(t, "decrypted on the card", dec[strings.Index(string(dec), "Content-Type"):])
		}
	})
}

func writeCert(t *testing.T, w *world, slot card.Slot, cert *x509.Certificate) string {
	t.Helper()
	return pkitest.WritePEM(t, w.dir, "card-"+slot.String()+".pem", cert)
}

package smime_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/smime"
)

// invalid asserts err says the message is bad (exit 1 in the CLI).
func invalid(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted", what)
	}
	if !smime.IsInvalid(err) {
		t.Fatalf("%s: %v is not reported as an invalid message", what, err)
	}
}

func TestTamperedSignedContent(t *testing.T) {
	w := newWorld(t)
	alice := w.user(t, "alice", "smime-signing", pki.P256)
	signed, err := smime.Sign([]byte(sample), alice.Key, alice.Cert, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(signed, []byte("42 =E2=82=AC"), []byte("43 =E2=82=AC"), 1)
	v, err := smime.Verify(bad, smime.VerifyOptions{Roots: w.Roots})
	invalid(t, "tampered", err)
	var ve *smime.VerifyError
	if !errors.As(err, &ve) || v == nil || v.SignatureValid || !v.ChainValid || !v.AddressMatches {
		t.Fatalf("want only the signature invalid, got %v, %+v", err, v)
	}
	if !strings.Contains(err.Error(), "message was changed") {
		t.Fatalf("unclear error: %v", err)
	}
	// openssl agrees.
	f := writeFile(t, t.TempDir(), "bad.eml", bad)
	if _, err := opensslErr(t, nil, "cms", "-verify", "-in", f, "-CAfile", w.CAFile); err == nil {
		t.Fatal("openssl accepted the tampered message")
	}

	// Another From than the certificate's address.
	forged := bytes.Replace(signed, []byte("From: Alice <alice@example.test>"), []byte("From: Boss <boss@example.test>"), 1)
	v, err = smime.Verify(forged, smime.VerifyOptions{Roots: w.Roots})
	invalid(t, "forged From", err)
	if !v.SignatureValid || v.AddressMatches || v.From != "boss@example.test" {
		t.Fatalf("forged From: %+v", v)
	}
}

func TestUnknownSigner(t *testing.T) {
	w := newWorld(t)
	other := newWorld(t)
	mallory := other.user(t, "alice", "smime-signing", pki.P256)
	signed, err := smime.Sign([]byte(sample), mallory.Key, mallory.Cert, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := smime.Verify(signed, smime.VerifyOptions{Roots: w.Roots})
	invalid(t, "foreign CA", err)
	if !v.SignatureValid || v.ChainValid || v.ChainError == nil {
		t.Fatalf("foreign CA: %+v", v)
	}

	// Without the certificate in the message: found only by lookup.
	alice := w.user(t, "alice", "smime-signing", pki.RSA2048)
	in := writeFile(t, t.TempDir(), "in.txt", []byte("Content-Type: text/plain\r\n\r\nno certs\r\n"))
	nocerts := openssl(t, nil, "cms", "-sign", "-nocerts", "-in", in, "-signer", alice.CertFile, "-inkey", alice.KeyFile, "-md", "sha256", "-from", alice.Addr)
	_, err = smime.Verify(nocerts, smime.VerifyOptions{Roots: w.Roots})
	invalid(t, "no certificate", err)
	if !strings.Contains(err.Error(), "neither in the message nor found") {
		t.Fatalf("unclear: %v", err)
	}
	var asked string
	v, err = smime.Verify(nocerts, smime.VerifyOptions{Roots: w.Roots, LookupSigner: func(addr string) ([]*x509.Certificate, error) {
		asked = addr
		return []*x509.Certificate{mallory.Cert, alice.Cert}, nil
	}})
	if err != nil || asked != alice.Addr || !v.Signer.Equal(alice.Cert) {
		t.Fatalf("lookup: %v (asked %q)", err, asked)
	}

	// Revoked.
	v, err = smime.Verify(nocerts, smime.VerifyOptions{Roots: w.Roots,
		LookupSigner: func(string) ([]*x509.Certificate, error) { return []*x509.Certificate{alice.Cert}, nil },
		Revocation: func(c *x509.Certificate) (bool, time.Time, error) {
			return true, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), nil
		}})
	invalid(t, "revoked", err)
	if !v.RevocationChecked || v.NotRevoked || !v.SignatureValid || !strings.Contains(err.Error(), "revoked at 2026-01-02") {
		t.Fatalf("revoked: %v %+v", err, v)
	}
}

func TestNotForRecipientAndTamperedCiphertext(t *testing.T) {
	w := newWorld(t)
	alice := w.user(t, "alice", "smime-encryption", pki.RSA2048)
	bob := w.user(t, "bob", "smime-encryption", pki.P256)
	carol := w.user(t, "carol", "smime-encryption", pki.RSA2048)
	for _, c := range []smime.Cipher{smime.AES256CBC, smime.AES256GCM} {
		enc, err := smime.Encrypt([]byte(sample), []*x509.Certificate{alice.Cert, bob.Cert}, &smime.EncryptOptions{Cipher: c})
		if err != nil {
			t.Fatal(err)
		}
		_, err = smime.Decrypt(enc, carol.Key, carol.Cert)
		if !errors.Is(err, smime.ErrNotForRecipient) {
			t.Fatalf("carol: %v", err)
		}
		invalid(t, "not for carol", err)
		// A key that does not match the certificate is refused.
		if _, err := smime.Decrypt(enc, carol.Key, alice.Cert); err == nil || !strings.Contains(err.Error(), "does not belong") {
			t.Fatalf("mismatched key: %v", err)
		}

		// Crafted padding / tampered ciphertext: the pad byte of the last
		// block is set to 0xff via the previous ciphertext block (CBC), or
		// the tag fails (GCM). Both recipients get ErrDecrypt, never a panic.
		der := cmsDER(t, enc)
		n := len(der)
		if c == smime.AES256CBC {
			p := 16 - (len(entityOf(t, alice, enc)) % 16)
			der[n-17] ^= byte(p) ^ 0xff
		} else {
			// The MAC is the last field; flip a byte of the content before it.
			der[n-40] ^= 1
		}
		bad := reMime(enc, der)
		for _, r := range []*identity{alice, bob} {
			_, err := smime.Decrypt(bad, r.Key, r.Cert)
			if !errors.Is(err, smime.ErrDecrypt) {
				t.Fatalf("%v tampered for %s: %v", c, r.Addr, err)
			}
		}
	}
}

func entityOf(t *testing.T, id *identity, enc []byte) []byte {
	t.Helper()
	dec, err := smime.Decrypt(enc, id.Key, id.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return dec[bytes.Index(dec, []byte("Content-Type")):]
}

// cmsDER extracts the base64 body of a pkcs7-mime message.
func cmsDER(t *testing.T, msg []byte) []byte {
	t.Helper()
	i := bytes.Index(msg, []byte("\r\n\r\n"))
	der, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(msg[i+4:])))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func reMime(msg, der []byte) []byte {
	i := bytes.Index(msg, []byte("\r\n\r\n"))
	return append(append([]byte(nil), msg[:i+4]...), base64.StdEncoding.EncodeToString(der)+"\r\n"...)
}

func TestMalformedMessages(t *testing.T) {
	w := newWorld(t)
	alice := w.user(t, "alice", "smime-encryption", pki.RSA2048)
	signer := w.user(t, "alice", "smime-signing", pki.RSA2048)
	signed, err := smime.Sign([]byte(sample), signer.Key, signer.Cert, nil, &smime.SignOptions{Opaque: true})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := smime.Encrypt([]byte(sample), []*x509.Certificate{alice.Cert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	encDER := cmsDER(t, enc)
	sigDER := cmsDER(t, signed)
	const pk = "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	const ps = "From: alice@example.test\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	cases := map[string][]byte{
		"not a header":           []byte("hello world\r\n"),
		"header without end":     []byte("Content-Type: text/plain"),
		"bad content type":       []byte("Content-Type: ;;;\r\n\r\nx"),
		"plain text":             []byte("Content-Type: text/plain\r\n\r\nhello"),
		"bad base64":             []byte(pk + "!!!!"),
		"empty CMS":              []byte(pk),
		"truncated CMS":          reMime(enc, encDER[:len(encDER)/2]),
		"trailing garbage":       reMime(enc, append(append([]byte(nil), encDER...), 0, 1)),
		"deep BER":               reMime(enc, bytes.Repeat([]byte{0x30, 0x80}, 1000)),
		"huge length":            reMime(enc, []byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02}),
		"signed as enveloped":    reMime(enc, sigDER),
		"truncated signed":       []byte(ps + base64.StdEncoding.EncodeToString(sigDER[:len(sigDER)-30])),
		"multipart no bound":     []byte("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"\r\n\r\nx"),
		"multipart one part":     []byte("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n"),
		"multipart not smime":    []byte("Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=b\r\n\r\n--b\r\n\r\nhi\r\n--b\r\n\r\nsig\r\n--b--\r\n"),
		"multipart bad sig":      []byte("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\nMAA=\r\n--b--\r\n"),
		"8-bit inside multipart": []byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n\xe2\x82\xac\r\n--x--\r\n"),
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := smime.Decrypt(msg, alice.Key, alice.Cert)
			invalid(t, "decrypt", err)
			_, err = smime.Verify(msg, smime.VerifyOptions{Roots: w.Roots})
			invalid(t, "verify", err)
		})
	}
	// Encrypting and signing check their input too.
	if _, err := smime.Encrypt(cases["8-bit inside multipart"], []*x509.Certificate{alice.Cert}, nil); !smime.IsInvalid(err) {
		t.Fatalf("8-bit multipart: %v", err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ed"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, edKey.Public(), edKey)
	edCert, _ := x509.ParseCertificate(der)
	if _, err := smime.Encrypt([]byte(sample), []*x509.Certificate{edCert}, nil); err == nil {
		t.Fatal("encrypted to an Ed25519 certificate")
	}
	if _, err := smime.Sign([]byte(sample), alice.Key, signer.Cert, nil, nil); err == nil {
		t.Fatal("signed with a key that is not the certificate's")
	}
}

package smime_test

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/smime"
)

// message1MB is a 1 MB mail message of text lines.
func message1MB() []byte {
	var b strings.Builder
	b.WriteString("From: alice@example.test\r\nTo: bob@example.test\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n")
	line := "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
	for b.Len() < 1<<20 {
		b.WriteString(line)
	}
	return []byte(b.String())
}

func BenchmarkMail1MB(b *testing.B) {
	w := newWorld(b)
	alice := w.user(b, "alice", "smime-signing", pki.P256)
	aliceEnc := w.user(b, "alice", "smime-encryption", pki.RSA2048)
	bob := w.user(b, "bob", "smime-encryption", pki.RSA2048)
	bobEC := w.user(b, "bob", "smime-encryption", pki.P256)
	msg := message1MB()
	rcpts := []*x509.Certificate{bob.Cert, aliceEnc.Cert}
	signed, _ := smime.Sign(msg, alice.Key, alice.Cert, nil, nil)
	enc, _ := smime.Encrypt(signed, rcpts, nil)
	encGCM, _ := smime.Encrypt(signed, rcpts, &smime.EncryptOptions{Cipher: smime.AES256GCM})
	encEC, _ := smime.Encrypt(signed, []*x509.Certificate{bobEC.Cert}, nil)
	opts := smime.VerifyOptions{Roots: w.Roots}

	b.Run("sign", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if _, err := smime.Sign(msg, alice.Key, alice.Cert, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sign+encrypt", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			s, err := smime.Sign(msg, alice.Key, alice.Cert, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := smime.Encrypt(s, rcpts, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	for name, e := range map[string][]byte{"rsa-cbc": enc, "rsa-gcm": encGCM, "ecdh-cbc": encEC} {
		key, cert := bob.Key, bob.Cert
		if name == "ecdh-cbc" {
			key, cert = bobEC.Key, bobEC.Cert
		}
		b.Run("decrypt+verify/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				d, err := smime.Decrypt(e, key, cert)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := smime.Verify(d, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

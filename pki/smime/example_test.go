package smime_test

import (
	"crypto/x509"
	"fmt"
	"log"

	"github.com/scstation/scstation/pki/smime"
)

// The sender signs with their key (a card key is a crypto.Signer too),
// encrypts to the recipient and to themself; the recipient decrypts with
// their key and verifies against the CA.
func Example() {
	ca, alice, bob := exampleIdentities()
	msg := []byte("From: alice@example.test\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nHello Bob.\r\n")

	signed, err := smime.Sign(msg, alice.Key, alice.Cert, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	enc, err := smime.Encrypt(signed, []*x509.Certificate{bob.Cert, alice.Cert}, &smime.EncryptOptions{Cipher: smime.AES256GCM})
	if err != nil {
		log.Fatal(err)
	}

	plain, err := smime.Decrypt(enc, bob.Key, bob.Cert)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	v, err := smime.Verify(plain, smime.VerifyOptions{Roots: roots})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v.SignatureValid, v.ChainValid, v.AddressMatches, v.From)
	// Output: true true true alice@example.test
}

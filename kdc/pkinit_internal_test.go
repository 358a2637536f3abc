package kdc

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"testing"
	"time"
)

// TestAgilityKDFVectors checks the RFC 8636 KDF against the test vectors
// MIT's pkinit_kdf_test.c uses (from the PKINIT algorithm agility draft):
// a 256-byte all-zero secret, lha@SU.SE, krbtgt/SU.SE@SU.SE, an AS-REQ of
// ten 0xaa bytes and a PA-PK-AS-REP of nine 0xbb bytes, aes256-cts.
func TestAgilityKDFVectors(t *testing.T) {
	z := make([]byte, 256)
	asReq := bytes.Repeat([]byte{0xaa}, 10)
	rep := bytes.Repeat([]byte{0xbb}, 9)
	u, _ := marshalKRB5PrincipalName("SU.SE", 1, []string{"lha"})
	v, _ := marshalKRB5PrincipalName("SU.SE", 1, []string{"krbtgt", "SU.SE"})
	for _, c := range []struct {
		name string
		kdf  []int
		want string
	}{
		{"sha1", []int{1, 3, 6, 1, 5, 2, 3, 6, 1}, "e6ab38c9413e035bb079201ed0b6b73d8d49a814a737c04ee6649614206f73ad"},
		{"sha256", []int{1, 3, 6, 1, 5, 2, 3, 6, 2}, "77ef4e48c420ae3fec75109d7981697eed5d295c90c62564f7bfd101fa9bc1d5"},
	} {
		oid := append(oidKDFSHA1[:0:0], c.kdf...)
		other, err := marshalOtherInfo(oid, u, v, 18, asReq, rep)
		if err != nil {
			t.Fatal(err)
		}
		k, err := agilityKDF(oid, z, other, 18)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(k.KeyValue); got != c.want {
			t.Errorf("%s: key %s, want %s", c.name, got, c.want)
		}
	}
}

func TestDHAgreement(t *testing.T) {
	for _, g := range acceptedGroups {
		a, err := newDHKey(g)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := newDHKey(g)
		za, err := a.shared(b.Public)
		if err != nil {
			t.Fatal(err)
		}
		zb, _ := b.shared(a.Public)
		if !bytes.Equal(za, zb) || len(za) != g.bits/8 {
			t.Fatalf("group %d: secrets differ or have the wrong length", g.bits)
		}
		for _, bad := range []*big.Int{big.NewInt(0), big.NewInt(1), new(big.Int).Sub(g.P, big.NewInt(1)), g.P} {
			if _, err := a.shared(bad); err == nil {
				t.Errorf("group %d: accepted public value %v", g.bits, bad)
			}
		}
	}
	// RFC 3526 primes: the well-known low and high words, and (p-1)/2 prime.
	for _, g := range []dhGroup{modp2, modp14, modp16} {
		if !g.Q.ProbablyPrime(2) {
			t.Errorf("MODP %d: (p-1)/2 is not prime", g.bits)
		}
	}
}

// TestCMSLenientSignatureLabel: MIT 1.20 labels ECDSA signatures
// sha256WithRSAEncryption; the signature is verified under the key's
// actual type.
func TestCMSLenientSignatureLabel(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "c"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	cert, _ := x509.ParseCertificate(der)
	relabelled, err := signCMSLabelled(oidAuthData, []byte{0x30, 0x00}, key, []*x509.Certificate{cert}, oidSHA256WithRSA)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := parseSignedData(relabelled)
	if err != nil {
		t.Fatal(err)
	}
	got, mislabelled, err := sd.verify()
	if err != nil || !mislabelled || !got.Equal(cert) {
		t.Fatalf("verify: %v mislabelled=%v", err, mislabelled)
	}
	sd.Content = []byte{0x30, 0x01}
	if _, _, err := sd.verify(); err == nil {
		t.Fatal("changed content verified")
	}
}

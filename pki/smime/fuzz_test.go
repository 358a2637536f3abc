package smime_test

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/smime"
)

// seeds are the real openssl cms outputs in testdata.
func seeds(f *testing.F) [][]byte {
	f.Helper()
	files, err := filepath.Glob("testdata/openssl-*.eml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	var out [][]byte
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func loadIdentity(f *testing.F, name string) (*x509.Certificate, crypto.PrivateKey) {
	f.Helper()
	cb, err := os.ReadFile("testdata/" + name + ".pem")
	if err != nil {
		f.Fatal(err)
	}
	blk, _ := pem.Decode(cb)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		f.Fatal(err)
	}
	kb, err := os.ReadFile("testdata/" + name + ".key")
	if err != nil {
		f.Fatal(err)
	}
	key, err := pki.ParsePrivateKeyPEM(kb, nil)
	if err != nil {
		f.Fatal(err)
	}
	return cert, key
}

// FuzzVerify parses MIME and CMS SignedData: no panic, and a message is
// either verified or refused with an error.
func FuzzVerify(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	rsaCert, _ := loadIdentity(f, "rsa")
	ecCert, _ := loadIdentity(f, "ec")
	roots := x509.NewCertPool()
	roots.AddCert(rsaCert)
	roots.AddCert(ecCert)
	f.Fuzz(func(t *testing.T, msg []byte) {
		v, err := smime.Verify(msg, smime.VerifyOptions{Roots: roots})
		if err == nil && (v == nil || !v.Valid()) {
			t.Fatalf("no error but not valid: %+v", v)
		}
		smime.IsSigned(msg)
	})
}

// FuzzDecrypt parses MIME and CMS (Auth)EnvelopedData and decrypts with
// the RSA and EC test keys: no panic on crafted padding or structure.
func FuzzDecrypt(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	rsaCert, rsaKey := loadIdentity(f, "rsa")
	ecCert, ecKey := loadIdentity(f, "ec")
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, id := range []struct {
			c *x509.Certificate
			k crypto.PrivateKey
		}{{rsaCert, rsaKey}, {ecCert, ecKey}} {
			out, err := smime.Decrypt(msg, id.k, id.c)
			if err == nil && out == nil {
				t.Fatal("no error and no content")
			}
		}
	})
}

// FuzzCMS feeds raw DER/BER to the CMS decoder.
func FuzzCMS(f *testing.F) {
	for _, s := range seeds(f) {
		if der, err := smime.SmimeDERForTest(s); err == nil {
			f.Add(der)
		}
	}
	rsaCert, rsaKey := loadIdentity(f, "rsa")
	ecCert, ecKey := loadIdentity(f, "ec")
	f.Fuzz(func(t *testing.T, der []byte) {
		smime.DecryptCMS(der, rsaKey, rsaCert)
		smime.DecryptCMS(der, ecKey, ecCert)
	})
}

package card

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"
)

var testRSA = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// rawSign is what the card does: m^d mod n.
func rawSign(k *rsa.PrivateKey, m []byte) []byte {
	c := new(big.Int).Exp(new(big.Int).SetBytes(m), k.D, k.N)
	return c.FillBytes(make([]byte, k.Size()))
}

func TestPKCS1v15SignPad(t *testing.T) {
	d := sha256.Sum256([]byte("m"))
	for _, h := range []crypto.Hash{crypto.SHA256, 0} {
		in := d[:]
		em, err := pkcs1v15SignPad(h, in, testRSA.Size())
		if err != nil {
			t.Fatal(err)
		}
		want, _ := rsa.SignPKCS1v15(nil, testRSA, h, in)
		if got := rawSign(testRSA, em); !bytes.Equal(got, want) {
			t.Errorf("hash %v: differs from crypto/rsa", h)
		}
	}
	if _, err := pkcs1v15SignPad(crypto.SHA512, make([]byte, 64), 64); err == nil {
		t.Error("too long for the key accepted")
	}
	if _, err := pkcs1v15SignPad(crypto.MD4, make([]byte, 16), 256); err == nil {
		t.Error("MD4 accepted")
	}
}

func TestPSSEncode(t *testing.T) {
	d := sha256.Sum256([]byte("m"))
	for _, salt := range []int{rsa.PSSSaltLengthAuto, rsa.PSSSaltLengthEqualsHash, 20} {
		em, err := emsaPSSEncode(rand.Reader, d[:], testRSA.N.BitLen()-1, crypto.SHA256, salt)
		if err != nil {
			t.Fatal(err)
		}
		sig := rawSign(testRSA, em)
		if err := rsa.VerifyPSS(&testRSA.PublicKey, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: salt}); err != nil {
			t.Errorf("salt %d: %v", salt, err)
		}
	}
	if _, err := emsaPSSEncode(rand.Reader, d[:16], 2047, crypto.SHA256, 0); err == nil {
		t.Error("short digest accepted")
	}
}

func TestUnpad(t *testing.T) {
	msg := []byte("session key")
	ct, _ := rsa.EncryptPKCS1v15(rand.Reader, &testRSA.PublicKey, msg)
	em := new(big.Int).Exp(new(big.Int).SetBytes(ct), testRSA.D, testRSA.N).FillBytes(make([]byte, 256))
	valid, idx := pkcs1v15Unpad(em)
	if valid != 1 || !bytes.Equal(em[idx:], msg) {
		t.Fatalf("valid %d idx %d", valid, idx)
	}
	for name, mut := range map[string]func([]byte){
		"first byte":  func(b []byte) { b[0] = 1 },
		"block type":  func(b []byte) { b[1] = 1 },
		"no zero":     func(b []byte) { copy(b[2:], bytes.Repeat([]byte{1}, len(b)-2)) },
		"short PS":    func(b []byte) { b[5] = 0 },
		"all zero PS": func(b []byte) { clear(b[2:]) },
	} {
		b := bytes.Clone(em)
		mut(b)
		if v, _ := pkcs1v15Unpad(b); v != 0 {
			t.Errorf("%s: accepted", name)
		}
	}
	ct, _ = rsa.EncryptOAEP(sha256.New(), rand.Reader, &testRSA.PublicKey, msg, nil)
	em = new(big.Int).Exp(new(big.Int).SetBytes(ct), testRSA.D, testRSA.N).FillBytes(make([]byte, 256))
	got, err := oaepUnpad(em, crypto.SHA256, crypto.SHA256, nil)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("OAEP: %q %v", got, err)
	}
	em[100] ^= 1
	if _, err := oaepUnpad(em, crypto.SHA256, crypto.SHA256, nil); !errors.Is(err, rsa.ErrDecryption) {
		t.Errorf("OAEP corrupted: %v", err)
	}
}

func TestECDSASignature(t *testing.T) {
	curve := elliptic.P256()
	k, _ := ecdsa.GenerateKey(curve, rand.Reader)
	d := sha256.Sum256([]byte("m"))
	der, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
	got, err := ecdsaSignature(der, curve)
	if err != nil || !bytes.Equal(got, der) {
		t.Fatalf("DER: %v", err)
	}
	// r‖s from a card that does not encode
	var sig struct{ R, S *big.Int }
	if _, err := asn1Unmarshal(der, &sig); err != nil {
		t.Fatal(err)
	}
	raw := append(sig.R.FillBytes(make([]byte, 32)), sig.S.FillBytes(make([]byte, 32))...)
	got, err = ecdsaSignature(raw, curve)
	if err != nil || !ecdsa.VerifyASN1(&k.PublicKey, d[:], got) {
		t.Fatalf("r‖s: %v", err)
	}
	for name, b := range map[string][]byte{
		"zero r":    make([]byte, 64),
		"r = n":     append(curve.Params().N.FillBytes(make([]byte, 32)), raw[32:]...),
		"trailing":  append(bytes.Clone(der), 0),
		"truncated": der[:len(der)-1],
	} {
		if _, err := ecdsaSignature(b, curve); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCompressedCertificate(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gz"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(der)
	w.Close()
	obj := appendTLV(nil, 0x70, gz.Bytes())
	obj = append(obj, 0x71, 0x01, 0x01, 0xFE, 0x00)
	got, err := parseCertObject(obj)
	if err != nil || !bytes.Equal(got, der) {
		t.Fatalf("compressed: %v", err)
	}
	if got, err := parseCertObject(certObject(der)); err != nil || !bytes.Equal(got, der) {
		t.Fatalf("plain: %v", err)
	}
	bomb := appendTLV(nil, 0x70, gzipOf(make([]byte, maxCertificate+10)))
	bomb = append(bomb, 0x71, 0x01, 0x01)
	if _, err := parseCertObject(bomb); err == nil {
		t.Error("oversized certificate accepted")
	}
	for _, v := range [][]byte{nil, {0x70, 0x00, 0x71, 0x01, 0x00}} {
		if _, err := parseCertObject(v); !errors.Is(err, ErrNotFound) {
			t.Errorf("empty object %X: %v", v, err)
		}
	}
}

func gzipOf(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func asn1Unmarshal(b []byte, v any) ([]byte, error) { return asn1.Unmarshal(b, v) }

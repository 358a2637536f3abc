package pki

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// kfPassphrase is the passphrase most tests use. It is long and distinctive
// so that tests can check that it never appears in an error message.
const kfPassphrase = "correct horse battery staple"

// kfTestdataPassphrase is the passphrase of testdata/openssl-pbes2.key, an
// EC P-256 key made with
//
//	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
//	    -aes256 -pass pass:testdata-passphrase -out testdata/openssl-pbes2.key
//
// (OpenSSL 3.0: PBES2, PBKDF2 with hmacWithSHA256, 2048 iterations, 8-byte
// salt, AES-256-CBC).
const kfTestdataPassphrase = "testdata-passphrase"

// kfTestdataPublicKey is the public key of testdata/openssl-pbes2.key, as
// printed by `openssl pkey -in testdata/openssl-pbes2.key -pubout`.
const kfTestdataPublicKey = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEzN2xivtsXtSQlCXa7x4XnkufZSXr
oDGMGC8qhcrdpguG7Vbvn4EMdMMcVcxqzv+xXEpXZu5wsiL3GTgLLr07og==
-----END PUBLIC KEY-----
`

// kfTestIterations is the PBKDF2 iteration count for tests that do not
// exercise the default, to keep them fast (600000 takes about 0.25 s).
const kfTestIterations = minPBKDF2Iterations

// Test keys are generated once per test binary: RSA generation is slow.
var (
	kfKeysOnce sync.Once
	kfKeys     map[string]crypto.Signer
)

func kfKey(t testing.TB, name string) crypto.Signer {
	t.Helper()
	kfKeysOnce.Do(func() {
		rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			panic(err)
		}
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		kfKeys = map[string]crypto.Signer{"RSA-2048": rsaKey, "P-256": p256, "P-384": p384, "Ed25519": ed}
	})
	k, ok := kfKeys[name]
	if !ok {
		t.Fatalf("no test key %q", name)
	}
	return k
}

func kfSameKey(t testing.TB, got, want crypto.Signer) {
	t.Helper()
	type equaler interface{ Equal(crypto.PrivateKey) bool }
	if got == nil {
		t.Fatal("got nil key")
	}
	if !want.(equaler).Equal(got) {
		t.Fatalf("parsed key (%T) differs from the original (%T)", got, want)
	}
}

// kfCheckErr fails if err is nil, wraps none of the allowed sentinels when
// one is given, or leaks the passphrase.
func kfCheckErr(t testing.TB, err error, want error) {
	t.Helper()
	if err == nil {
		t.Fatal("got no error")
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("error %q, want %q", err, want)
	}
	if strings.Contains(err.Error(), kfPassphrase) {
		t.Fatalf("error %q contains the passphrase", err)
	}
}

func TestKeyfileRoundTrip(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"RSA-2048", "P-256", "P-384", "Ed25519"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			key := kfKey(t, name)
			pass := []byte(kfPassphrase)

			enc, err := marshalEncryptedPrivateKey(key, pass, kfTestIterations, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if !IsEncryptedPrivateKeyPEM(enc) {
				t.Error("IsEncryptedPrivateKeyPEM(encrypted) = false")
			}
			if bytes.Contains(enc, []byte(kfPassphrase)) {
				t.Error("output contains the passphrase")
			}
			got, err := ParsePrivateKeyPEM(enc, pass)
			if err != nil {
				t.Fatal(err)
			}
			kfSameKey(t, got, key)
			if string(pass) != kfPassphrase {
				t.Error("passphrase buffer was modified")
			}

			for _, tc := range []struct {
				name string
				pass []byte
				want error
			}{
				{"wrong", []byte("correct horse battery stapler"), ErrIncorrectPassphrase},
				{"wrong case", []byte(strings.ToUpper(kfPassphrase)), ErrIncorrectPassphrase},
				{"empty", []byte{}, ErrPassphraseRequired},
				{"nil", nil, ErrPassphraseRequired},
			} {
				k, err := ParsePrivateKeyPEM(enc, tc.pass)
				if k != nil {
					t.Errorf("%s passphrase: got a key", tc.name)
				}
				kfCheckErr(t, err, tc.want)
			}

			plain, err := MarshalPrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			if IsEncryptedPrivateKeyPEM(plain) {
				t.Error("IsEncryptedPrivateKeyPEM(unencrypted) = true")
			}
			if b, _ := pem.Decode(plain); b == nil || b.Type != "PRIVATE KEY" {
				t.Fatalf("MarshalPrivateKey wrote %q", plain)
			}
			for _, p := range [][]byte{nil, pass, []byte("ignored")} {
				got, err := ParsePrivateKeyPEM(plain, p)
				if err != nil {
					t.Fatal(err)
				}
				kfSameKey(t, got, key)
			}
		})
	}
}

// TestKeyfileDefaultParameters checks the exact structure
// MarshalEncryptedPrivateKey writes, with the full iteration count.
func TestKeyfileDefaultParameters(t *testing.T) {
	t.Parallel()
	key := kfKey(t, "P-256")
	enc, err := MarshalEncryptedPrivateKey(key, []byte(kfPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(enc)
	if block == nil || block.Type != "ENCRYPTED PRIVATE KEY" || len(block.Headers) != 0 || len(rest) != 0 {
		t.Fatalf("unexpected PEM output:\n%s", enc)
	}
	p, err := parsePBES2(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if p.iterations != 600000 {
		t.Errorf("iterations = %d, want 600000", p.iterations)
	}
	if len(p.salt) != 16 || len(p.iv) != 16 || p.keyLen != 32 {
		t.Errorf("salt %d bytes, IV %d bytes, key %d bytes; want 16, 16, 32", len(p.salt), len(p.iv), p.keyLen)
	}

	// Check the OIDs and encodings independently of parsePBES2.
	var info encryptedPrivateKeyInfo
	var params pbes2Params
	var kdf pbkdf2Params
	if err := unmarshalExact(block.Bytes, &info); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalExact(info.Algo.Parameters.FullBytes, &params); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalExact(params.KeyDerivationFunc.Parameters.FullBytes, &kdf); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want asn1.ObjectIdentifier
	}{
		{"scheme", info.Algo.Algorithm, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}},
		{"KDF", params.KeyDerivationFunc.Algorithm, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}},
		{"PRF", kdf.PRF.Algorithm, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}},
		{"cipher", params.EncryptionScheme.Algorithm, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}},
	} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s OID = %v, want %v", c.name, c.got, c.want)
		}
	}
	if !isNull(kdf.PRF.Parameters) {
		t.Error("PRF parameters are not NULL")
	}
	if kdf.KeyLength != 0 {
		t.Errorf("keyLength = %d, want it omitted", kdf.KeyLength)
	}

	got, err := ParsePrivateKeyPEM(enc, []byte(kfPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	kfSameKey(t, got, key)
}

func TestKeyfileRandomSaltAndIV(t *testing.T) {
	t.Parallel()
	key := kfKey(t, "P-256")
	seen := map[string]bool{}
	for range 3 {
		enc, err := marshalEncryptedPrivateKey(key, []byte(kfPassphrase), kfTestIterations, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(enc)
		p, err := parsePBES2(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"salt" + string(p.salt), "iv" + string(p.iv), "ct" + string(p.ciphertext)} {
			if seen[v] {
				t.Fatal("salt, IV or ciphertext repeated between two encryptions")
			}
			seen[v] = true
		}
	}
}

func TestKeyfileMarshalErrors(t *testing.T) {
	t.Parallel()
	key := kfKey(t, "P-256")
	for _, pass := range [][]byte{nil, {}} {
		out, err := MarshalEncryptedPrivateKey(key, pass)
		if out != nil || !errors.Is(err, ErrEmptyPassphrase) {
			t.Errorf("MarshalEncryptedPrivateKey(%q) = %q, %v; want ErrEmptyPassphrase", pass, out, err)
		}
	}
	for _, k := range []crypto.Signer{nil, (*rsa.PrivateKey)(nil), (*ecdsa.PrivateKey)(nil), &ecdsa.PrivateKey{}, ed25519.PrivateKey(nil), kfNotAKey{}} {
		if out, err := MarshalPrivateKey(k); out != nil || err == nil {
			t.Errorf("MarshalPrivateKey(%#v) = %q, %v; want an error", k, out, err)
		}
		if out, err := MarshalEncryptedPrivateKey(k, []byte(kfPassphrase)); out != nil || err == nil {
			t.Errorf("MarshalEncryptedPrivateKey(%#v) = %q, %v; want an error", k, out, err)
		}
	}
}

// kfNotAKey is a crypto.Signer that PKCS#8 cannot hold, like a card key.
type kfNotAKey struct{}

func (kfNotAKey) Public() crypto.PublicKey { return nil }
func (kfNotAKey) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("no")
}

// kfPBES2 describes an EncryptedPrivateKeyInfo for kfBuild. The zero value
// of each field means "what MarshalEncryptedPrivateKey would write", at
// kfTestIterations.
type kfPBES2 struct {
	schemeOID  asn1.ObjectIdentifier
	kdfOID     asn1.ObjectIdentifier
	prfOID     asn1.ObjectIdentifier // nil: hmacWithSHA256; use kfAbsent for none
	prfParams  *asn1.RawValue        // nil: NULL
	newHash    func() hash.Hash      // nil: SHA-256
	cipherOID  asn1.ObjectIdentifier // nil: AES-256-CBC
	keyLen     int                   // derived key length; 0: 32
	keyLenTag  int                   // keyLength field; 0: omitted
	iterations int                   // 0: kfTestIterations
	salt       []byte                // nil: 16 zero bytes
	iv         []byte                // nil: 16 bytes
	ivRaw      []byte                // if set, the full DER of the cipher parameters
	plaintext  []byte                // nil: PKCS#8 of P-256 test key
	noPad      bool                  // encrypt plaintext without padding (it must be block aligned)
	trailing   []byte                // appended to the outer DER
	ciphertext []byte                // if set, used instead of encrypting
}

var kfAbsent = asn1.ObjectIdentifier{}

// kfBuild encodes p as a PEM "ENCRYPTED PRIVATE KEY", encrypting with pass.
func kfBuild(t testing.TB, p kfPBES2, pass string) []byte {
	t.Helper()
	or := func(a, b asn1.ObjectIdentifier) asn1.ObjectIdentifier {
		if a == nil {
			return b
		}
		return a
	}
	if p.iterations == 0 {
		p.iterations = kfTestIterations
	}
	if p.salt == nil {
		p.salt = make([]byte, 16)
	}
	if p.iv == nil {
		p.iv = bytes.Repeat([]byte{7}, 16)
	}
	if p.newHash == nil {
		p.newHash = sha256.New
	}
	if p.keyLen == 0 {
		p.keyLen = 32
	}
	if p.plaintext == nil {
		der, err := x509.MarshalPKCS8PrivateKey(kfKey(t, "P-256"))
		if err != nil {
			t.Fatal(err)
		}
		p.plaintext = der
	}
	ct := p.ciphertext
	if ct == nil {
		buf := append([]byte(nil), p.plaintext...)
		if !p.noPad {
			n := aes.BlockSize - len(buf)%aes.BlockSize
			buf = append(buf, bytes.Repeat([]byte{byte(n)}, n)...)
		}
		dk, err := pbkdf2.Key(p.newHash, pass, p.salt, p.iterations, p.keyLen)
		if err != nil {
			t.Fatal(err)
		}
		block, err := aes.NewCipher(dk)
		if err != nil {
			t.Fatal(err)
		}
		ct = make([]byte, len(buf))
		cipher.NewCBCEncrypter(block, p.iv).CryptBlocks(ct, buf)
	}

	kp := pbkdf2Params{Salt: p.salt, IterationCount: p.iterations, KeyLength: p.keyLenTag}
	if prf := or(p.prfOID, oidHMACWithSHA256); len(prf) != 0 {
		kp.PRF = pkix.AlgorithmIdentifier{Algorithm: prf, Parameters: asn1.NullRawValue}
		if p.prfParams != nil {
			kp.PRF.Parameters = *p.prfParams
		}
	}
	kdfDER := kfMarshal(t, kp)
	ivDER := p.ivRaw
	if ivDER == nil {
		ivDER = kfMarshal(t, p.iv)
	}
	schemeDER := kfMarshal(t, pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: or(p.kdfOID, oidPBKDF2), Parameters: asn1.RawValue{FullBytes: kdfDER}},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: or(p.cipherOID, oidAES256CBC), Parameters: asn1.RawValue{FullBytes: ivDER}},
	})
	der := kfMarshal(t, encryptedPrivateKeyInfo{
		Algo:          pkix.AlgorithmIdentifier{Algorithm: or(p.schemeOID, oidPBES2), Parameters: asn1.RawValue{FullBytes: schemeDER}},
		EncryptedData: ct,
	})
	der = append(der, p.trailing...)
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
}

func kfMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyfileParseVariants decrypts every supported PRF and key size, built
// independently of MarshalEncryptedPrivateKey.
func TestKeyfileParseVariants(t *testing.T) {
	t.Parallel()
	want := kfKey(t, "P-256")
	prfs := []struct {
		name string
		oid  asn1.ObjectIdentifier
		h    func() hash.Hash
	}{
		{"SHA1-default", kfAbsent, sha1.New},
		{"SHA1", oidHMACWithSHA1, sha1.New},
		{"SHA224", oidHMACWithSHA224, sha256.New224},
		{"SHA256", oidHMACWithSHA256, sha256.New},
		{"SHA384", oidHMACWithSHA384, sha512.New384},
		{"SHA512", oidHMACWithSHA512, sha512.New},
	}
	ciphers := []struct {
		name   string
		oid    asn1.ObjectIdentifier
		keyLen int
	}{
		{"AES-128", oidAES128CBC, 16},
		{"AES-192", oidAES192CBC, 24},
		{"AES-256", oidAES256CBC, 32},
	}
	for _, prf := range prfs {
		for _, c := range ciphers {
			for _, explicitLen := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/keyLength=%v", prf.name, c.name, explicitLen)
				t.Run(name, func(t *testing.T) {
					p := kfPBES2{prfOID: prf.oid, newHash: prf.h, cipherOID: c.oid, keyLen: c.keyLen, salt: []byte("8 bytes!")}
					if explicitLen {
						p.keyLenTag = c.keyLen
					}
					got, err := ParsePrivateKeyPEM(kfBuild(t, p, kfPassphrase), []byte(kfPassphrase))
					if err != nil {
						t.Fatal(err)
					}
					kfSameKey(t, got, want)
				})
			}
		}
	}
	t.Run("absent PRF parameters", func(t *testing.T) {
		got, err := ParsePrivateKeyPEM(kfBuild(t, kfPBES2{prfParams: &asn1.RawValue{}}, kfPassphrase), []byte(kfPassphrase))
		if err != nil {
			t.Fatal(err)
		}
		kfSameKey(t, got, want)
	})
	t.Run("non-ASCII passphrase", func(t *testing.T) {
		pass := "pässwörd\x00\xff"
		got, err := ParsePrivateKeyPEM(kfBuild(t, kfPBES2{}, pass), []byte(pass))
		if err != nil {
			t.Fatal(err)
		}
		kfSameKey(t, got, want)
	})
}

// TestKeyfileParseRejects feeds malformed and unsupported encrypted keys.
// None may cost a key derivation at a hostile iteration count, so each must
// fail fast.
func TestKeyfileParseRejects(t *testing.T) {
	t.Parallel()
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519DER, err := x509.MarshalPKCS8PrivateKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	// A well-formed PKCS#8 PrivateKeyInfo of an algorithm crypto/x509 does
	// not know (ML-DSA-44's OID).
	unknownAlgDER := kfMarshal(t, pkcs8Outer{
		Algo:       pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 17}},
		PrivateKey: bytes.Repeat([]byte{1}, 32),
	})
	octet8, octet17 := kfMarshal(t, make([]byte, 8)), kfMarshal(t, make([]byte, 17))
	nullDER := kfMarshal(t, asn1.NullRawValue)
	garbage := bytes.Repeat([]byte("not a PKCS#8 structure\x00"), 4)[:80] // 80: block aligned

	for _, tc := range []struct {
		name string
		p    kfPBES2
		want error  // sentinel the error must wrap, if any
		msg  string // substring the error must contain
	}{
		{"iterations below minimum", kfPBES2{iterations: 999}, nil, "iteration count 999"},
		{"iterations above maximum", kfPBES2{iterations: 10000001, ciphertext: make([]byte, 16)}, nil, "iteration count 10000001"},
		{"iterations huge", kfPBES2{iterations: 1 << 40, ciphertext: make([]byte, 16)}, nil, "iteration count"},
		{"iterations negative", kfPBES2{iterations: -600000, ciphertext: make([]byte, 16)}, nil, "iteration count"},
		{"key length mismatch 128/256", kfPBES2{keyLenTag: 16, ciphertext: make([]byte, 16)}, nil, "key length 16"},
		{"key length mismatch 256/128", kfPBES2{cipherOID: oidAES128CBC, keyLenTag: 32, ciphertext: make([]byte, 16)}, nil, "key length 32"},
		{"key length negative", kfPBES2{keyLenTag: -32, ciphertext: make([]byte, 16)}, nil, "key length"},
		{"IV 8 bytes", kfPBES2{ivRaw: octet8, ciphertext: make([]byte, 16)}, nil, "IV is 8 bytes"},
		{"IV 17 bytes", kfPBES2{ivRaw: octet17, ciphertext: make([]byte, 16)}, nil, "IV is 17 bytes"},
		{"IV NULL", kfPBES2{ivRaw: nullDER, ciphertext: make([]byte, 16)}, nil, "IV"},
		{"IV absent", kfPBES2{ivRaw: []byte{}, ciphertext: make([]byte, 16)}, nil, "IV"},
		{"salt too short", kfPBES2{salt: make([]byte, 7), ciphertext: make([]byte, 16)}, nil, "salt length 7"},
		{"salt too long", kfPBES2{salt: make([]byte, 1025), ciphertext: make([]byte, 16)}, nil, "salt length 1025"},
		{"PRF HMAC-MD5", kfPBES2{prfOID: asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}, ciphertext: make([]byte, 16)}, nil, "pseudorandom function"},
		{"PRF bad parameters", kfPBES2{prfParams: &asn1.RawValue{FullBytes: octet8}, ciphertext: make([]byte, 16)}, nil, "pseudorandom function"},
		{"cipher DES-EDE3-CBC", kfPBES2{cipherOID: asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}, ciphertext: make([]byte, 16)}, nil, "cipher"},
		{"cipher AES-256-GCM", kfPBES2{cipherOID: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 46}, ciphertext: make([]byte, 16)}, nil, "cipher"},
		{"KDF scrypt", kfPBES2{kdfOID: oidScrypt, ciphertext: make([]byte, 16)}, nil, "scrypt"},
		{"scheme PBES1", kfPBES2{schemeOID: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 3}, ciphertext: make([]byte, 16)}, nil, "only PBES2"},
		{"ciphertext empty", kfPBES2{ciphertext: []byte{}}, nil, "multiple of the AES block size"},
		{"ciphertext unaligned", kfPBES2{ciphertext: make([]byte, 33)}, nil, "multiple of the AES block size"},
		{"ciphertext too large", kfPBES2{ciphertext: make([]byte, 64<<10+16)}, nil, "too large"},
		{"trailing data", kfPBES2{trailing: []byte{0}, ciphertext: make([]byte, 16)}, nil, "malformed"},
		// Well-formed parameters, but the plaintext is not a key.
		{"bad padding", kfPBES2{plaintext: make([]byte, 32), noPad: true}, ErrIncorrectPassphrase, ""},
		{"zero padding byte", kfPBES2{plaintext: append(make([]byte, 31), 0), noPad: true}, ErrIncorrectPassphrase, ""},
		{"padding 17", kfPBES2{plaintext: bytes.Repeat([]byte{17}, 32), noPad: true}, ErrIncorrectPassphrase, ""},
		{"inconsistent padding", kfPBES2{plaintext: kfBadPadding(t), noPad: true}, ErrIncorrectPassphrase, ""},
		{"garbage with valid padding", kfPBES2{plaintext: garbage}, ErrIncorrectPassphrase, ""},
		{"empty plaintext", kfPBES2{plaintext: []byte{}}, ErrIncorrectPassphrase, ""},
		{"corrupt PKCS#8", kfPBES2{plaintext: kfCorruptPKCS8(t)}, ErrIncorrectPassphrase, ""},
		// Correctly decrypted keys that are not usable signers.
		{"unknown key algorithm", kfPBES2{plaintext: unknownAlgDER}, nil, "unsupported private key algorithm 2.16.840.1.101.3.4.3.17"},
		{"X25519 key", kfPBES2{plaintext: x25519DER}, nil, "cannot sign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := kfBuild(t, tc.p, kfPassphrase)
			// A derivation at a hostile iteration count could run for
			// hours; give up after a few seconds (the derivation goroutine
			// is abandoned and dies with the test binary).
			type result struct {
				key crypto.Signer
				err error
			}
			done := make(chan result, 1)
			go func() {
				key, err := ParsePrivateKeyPEM(data, []byte(kfPassphrase))
				done <- result{key, err}
			}()
			var key crypto.Signer
			var err error
			select {
			case r := <-done:
				key, err = r.key, r.err
			case <-time.After(5 * time.Second):
				t.Fatal("still running after 5s; parameters must be checked before key derivation")
			}
			if key != nil {
				t.Error("got a key")
			}
			kfCheckErr(t, err, tc.want)
			if tc.want == nil && errors.Is(err, ErrIncorrectPassphrase) {
				t.Errorf("error %q: a structural problem reported as a wrong passphrase", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
			// Without a passphrase, nothing is inspected.
			if _, err := ParsePrivateKeyPEM(data, nil); !errors.Is(err, ErrPassphraseRequired) {
				t.Errorf("with no passphrase: %v, want ErrPassphraseRequired", err)
			}
		})
	}
}

// kfBadPadding returns a PKCS#8 key followed by PKCS#7 padding whose last
// byte is right but whose other padding bytes are not.
func kfBadPadding(t testing.TB) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(kfKey(t, "P-256"))
	if err != nil {
		t.Fatal(err)
	}
	n := aes.BlockSize - len(der)%aes.BlockSize
	if n < 2 {
		t.Fatalf("PKCS#8 P-256 key of %d bytes leaves no room for bad padding", len(der))
	}
	pad := bytes.Repeat([]byte{byte(n)}, n)
	pad[0]++
	return append(bytes.Clone(der), pad...)
}

// kfCorruptPKCS8 returns a PKCS#8 RSA key whose inner key is damaged.
func kfCorruptPKCS8(t testing.TB) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(kfKey(t, "RSA-2048"))
	if err != nil {
		t.Fatal(err)
	}
	der = bytes.Clone(der)
	der[len(der)-40] ^= 0xff // inside the CRT coefficients
	return der
}

func TestKeyfileParsePEMForms(t *testing.T) {
	t.Parallel()
	rsaKey := kfKey(t, "RSA-2048").(*rsa.PrivateKey)
	ecKey := kfKey(t, "P-256").(*ecdsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(b *pem.Block) []byte { return pem.EncodeToMemory(b) }
	ecParams := enc(&pem.Block{Type: "EC PARAMETERS", Bytes: kfMarshal(t, asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})})
	encrypted := kfBuild(t, kfPBES2{}, kfPassphrase)

	for _, tc := range []struct {
		name      string
		data      []byte
		want      crypto.Signer // nil: an error is expected
		encrypted bool
		msg       string
	}{
		{"PKCS#1", enc(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), rsaKey, false, ""},
		{"SEC 1", enc(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), ecKey, false, ""},
		{"EC PARAMETERS first", append(bytes.Clone(ecParams), enc(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...), ecKey, false, ""},
		{"EC PARAMETERS then encrypted", append(bytes.Clone(ecParams), encrypted...), ecKey, true, ""},
		{"leading text", append([]byte("Bag Attributes\n  friendlyName: ca\n"), encrypted...), ecKey, true, ""},
		{"encrypted first of two", append(bytes.Clone(encrypted), enc(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})...), ecKey, true, ""},
		{"legacy encrypted PKCS#1", enc(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00000000000000000000000000000000"}, Bytes: make([]byte, 32)}), nil, false, "legacy OpenSSL PEM encryption"},
		{"legacy encrypted SEC 1", enc(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"DEK-Info": "AES-256-CBC,00000000000000000000000000000000"}, Bytes: make([]byte, 32)}), nil, false, "legacy OpenSSL PEM encryption"},
		{"corrupt PKCS#1", enc(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{0x30, 0}}), nil, false, "PKCS#1"},
		{"corrupt SEC 1", enc(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{0x30, 0}}), nil, false, "EC private key"},
		{"corrupt PKCS#8", enc(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0}}), nil, false, "PKCS#8"},
		{"certificate", enc(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}}), nil, false, `"CERTIFICATE" is not a private key`},
		{"public key", enc(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{0x30, 0}}), nil, false, "not a private key"},
		{"long type", enc(&pem.Block{Type: strings.Repeat("X", 1000), Bytes: nil}), nil, false, "not a private key"},
		{"only EC PARAMETERS", ecParams, nil, false, "no PEM data"},
		{"DER", sec1, nil, false, "no PEM data"},
		{"empty", nil, nil, false, "no PEM data"},
		{"passphrase-like garbage", []byte(kfPassphrase), nil, false, "no PEM data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsEncryptedPrivateKeyPEM(tc.data); got != tc.encrypted {
				t.Errorf("IsEncryptedPrivateKeyPEM = %v, want %v", got, tc.encrypted)
			}
			key, err := ParsePrivateKeyPEM(tc.data, []byte(kfPassphrase))
			if tc.want == nil {
				if key != nil {
					t.Error("got a key")
				}
				kfCheckErr(t, err, nil)
				if !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("error %q does not mention %q", err, tc.msg)
				}
				if len(err.Error()) > 300 {
					t.Errorf("error is %d bytes long", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			kfSameKey(t, key, tc.want)
		})
	}
}

func TestKeyfileOpenSSLTestdata(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "openssl-pbes2.key"))
	if err != nil {
		t.Fatal(err)
	}
	if !IsEncryptedPrivateKeyPEM(data) {
		t.Error("IsEncryptedPrivateKeyPEM(testdata/openssl-pbes2.key) = false")
	}
	if _, err := ParsePrivateKeyPEM(data, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Errorf("no passphrase: %v, want ErrPassphraseRequired", err)
	}
	if _, err := ParsePrivateKeyPEM(data, []byte("testdata-passphrasE")); !errors.Is(err, ErrIncorrectPassphrase) {
		t.Errorf("wrong passphrase: %v, want ErrIncorrectPassphrase", err)
	}
	key, err := ParsePrivateKeyPEM(data, []byte(kfTestdataPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		t.Fatalf("got %T, want a P-256 *ecdsa.PrivateKey", key)
	}
	if got := kfPublicPEM(t, key); got != kfTestdataPublicKey {
		t.Errorf("public key\n%s\nwant\n%s", got, kfTestdataPublicKey)
	}
}

func kfPublicPEM(t testing.TB, key crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// kfOpenSSL returns the openssl binary, skipping the test if there is none,
// except in CI (CI=true), where it fails.
func kfOpenSSL(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl is required in CI: %v", err)
		}
		t.Skipf("openssl not found: %v", err)
	}
	return path
}

// kfRun runs openssl with args and returns its standard output.
func kfRun(t *testing.T, openssl string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(openssl, args...)
	cmd.Env = append(os.Environ(), "OPENSSL_CONF=/dev/null") // ignore local configuration
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

func kfMustRun(t *testing.T, openssl string, args ...string) []byte {
	t.Helper()
	out, err := kfRun(t, openssl, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// kfPassFile writes pass to a file in dir for openssl's -pass file:,
// -passin file: and -passout file: (which read its first line).
func kfPassFile(t *testing.T, dir, pass string) string {
	t.Helper()
	f := filepath.Join(dir, "pass")
	if err := os.WriteFile(f, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func kfWrite(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestKeyfileOpenSSLReadsOurs checks that OpenSSL decrypts what
// MarshalEncryptedPrivateKey writes (with the default 600000 iterations) and
// finds the same key.
func TestKeyfileOpenSSLReadsOurs(t *testing.T) {
	openssl := kfOpenSSL(t)
	t.Parallel()
	for _, name := range []string{"RSA-2048", "P-384"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			key := kfKey(t, name)
			dir := t.TempDir()
			pass := kfPassFile(t, dir, kfPassphrase)
			enc, err := MarshalEncryptedPrivateKey(key, []byte(kfPassphrase))
			if err != nil {
				t.Fatal(err)
			}
			f := kfWrite(t, dir, "key.pem", enc)

			kfMustRun(t, openssl, "pkey", "-in", f, "-passin", "file:"+pass, "-noout")
			pub := kfMustRun(t, openssl, "pkey", "-in", f, "-passin", "file:"+pass, "-pubout")
			if want := kfPublicPEM(t, key); string(pub) != want {
				t.Errorf("openssl's public key\n%s\nwant\n%s", pub, want)
			}
			// OpenSSL really decrypts: a wrong passphrase fails.
			wrong := kfWrite(t, dir, "wrong", []byte("not the passphrase\n"))
			if _, err := kfRun(t, openssl, "pkey", "-in", f, "-passin", "file:"+wrong, "-noout"); err == nil {
				t.Error("openssl accepted a wrong passphrase")
			}

			// And the unencrypted form.
			plain, err := MarshalPrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			pub = kfMustRun(t, openssl, "pkey", "-in", kfWrite(t, dir, "plain.pem", plain), "-pubout")
			if want := kfPublicPEM(t, key); string(pub) != want {
				t.Errorf("openssl's public key of the unencrypted key\n%s\nwant\n%s", pub, want)
			}
		})
	}
}

// TestKeyfileReadsOpenSSL checks that ParsePrivateKeyPEM reads the keys
// OpenSSL writes, generated now, and refuses the kinds it does not support.
func TestKeyfileReadsOpenSSL(t *testing.T) {
	openssl := kfOpenSSL(t)
	t.Parallel()
	dir := t.TempDir()
	pass := kfPassFile(t, dir, kfPassphrase)

	// Unencrypted PKCS#8 inputs for `openssl pkcs8 -topk8`.
	plainFiles := map[string]string{}
	for _, name := range []string{"RSA-2048", "P-256", "P-384", "Ed25519"} {
		plain, err := MarshalPrivateKey(kfKey(t, name))
		if err != nil {
			t.Fatal(err)
		}
		plainFiles[name] = kfWrite(t, dir, name+".pem", plain)
	}

	for i, tc := range []struct {
		name string
		key  string   // test key given to openssl with -in; "" for genpkey
		args []string // openssl arguments; -out is added
		msg  string   // "": must parse; else a substring of the expected error
	}{
		{name: "genpkey P-256 aes256", args: []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass", "file:" + pass}},
		{name: "genpkey P-384 aes-128-cbc", args: []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-aes-128-cbc", "-pass", "file:" + pass}},
		{name: "genpkey Ed25519 aes-192-cbc", args: []string{"genpkey", "-algorithm", "ED25519", "-aes-192-cbc", "-pass", "file:" + pass}},
		{name: "pkcs8 aes256 default PRF", key: "RSA-2048", args: []string{"pkcs8", "-topk8", "-v2", "aes256"}},
		{name: "pkcs8 aes128 hmacWithSHA512", key: "P-256", args: []string{"pkcs8", "-topk8", "-v2", "aes128", "-v2prf", "hmacWithSHA512"}},
		{name: "pkcs8 aes192 hmacWithSHA384", key: "P-384", args: []string{"pkcs8", "-topk8", "-v2", "aes192", "-v2prf", "hmacWithSHA384"}},
		{name: "pkcs8 aes256 hmacWithSHA1", key: "P-256", args: []string{"pkcs8", "-topk8", "-v2", "aes256", "-v2prf", "hmacWithSHA1"}},
		{name: "pkcs8 aes256 hmacWithSHA224", key: "Ed25519", args: []string{"pkcs8", "-topk8", "-v2", "aes256", "-v2prf", "hmacWithSHA224"}},
		{name: "pkcs8 aes256 100000 iterations", key: "P-256", args: []string{"pkcs8", "-topk8", "-v2", "aes256", "-iter", "100000"}},
		{name: "pkcs8 aes-256-cbc 1000 iterations", key: "RSA-2048", args: []string{"pkcs8", "-topk8", "-v2", "aes-256-cbc", "-iter", "1000"}},
		{name: "pkcs8 unencrypted", key: "P-384", args: []string{"pkcs8", "-topk8", "-nocrypt"}},
		{name: "traditional RSA", key: "RSA-2048", args: []string{"pkey", "-traditional"}},
		{name: "traditional EC", key: "P-256", args: []string{"pkey", "-traditional"}},
		{name: "ecparam -genkey", args: []string{"ecparam", "-name", "prime256v1", "-genkey"}},
		// Refused.
		{name: "pkcs8 999 iterations", key: "P-256", args: []string{"pkcs8", "-topk8", "-v2", "aes256", "-iter", "999"}, msg: "iteration count 999"},
		{name: "pkcs8 des3", key: "P-256", args: []string{"pkcs8", "-topk8", "-v2", "des3"}, msg: "cipher"},
		{name: "pkcs8 scrypt", key: "P-256", args: []string{"pkcs8", "-topk8", "-scrypt"}, msg: "scrypt"},
		{name: "pkcs8 PBES1", key: "P-256", args: []string{"pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES"}, msg: "only PBES2"},
		{name: "traditional encrypted", key: "RSA-2048", args: []string{"pkey", "-traditional", "-aes256"}, msg: "legacy OpenSSL PEM encryption"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("out%d.pem", i))
			args := append(append([]string(nil), tc.args...), "-out", out)
			if tc.key != "" {
				args = append(args, "-in", plainFiles[tc.key], "-passout", "file:"+pass)
			}
			kfMustRun(t, openssl, args...)
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			key, err := ParsePrivateKeyPEM(data, []byte(kfPassphrase))
			if tc.msg != "" {
				if key != nil {
					t.Error("got a key")
				}
				kfCheckErr(t, err, nil)
				if errors.Is(err, ErrIncorrectPassphrase) || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("error %q, want one mentioning %q", err, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.key != "" {
				kfSameKey(t, key, kfKey(t, tc.key))
			}
			// OpenSSL's view of the public key must match ours.
			pub := kfMustRun(t, openssl, "pkey", "-in", out, "-passin", "file:"+pass, "-pubout")
			if got := kfPublicPEM(t, key); got != string(pub) {
				t.Errorf("public key\n%s\nopenssl says\n%s", got, pub)
			}
			if IsEncryptedPrivateKeyPEM(data) {
				if _, err := ParsePrivateKeyPEM(data, []byte("wrong")); !errors.Is(err, ErrIncorrectPassphrase) {
					t.Errorf("wrong passphrase: %v, want ErrIncorrectPassphrase", err)
				}
				if _, err := ParsePrivateKeyPEM(data, nil); !errors.Is(err, ErrPassphraseRequired) {
					t.Errorf("no passphrase: %v, want ErrPassphraseRequired", err)
				}
			}
		})
	}
}

// FuzzParsePrivateKeyPEM checks that ParsePrivateKeyPEM never panics and
// returns either a key or an error. Besides the seeds below, the committed
// corpus in testdata/fuzz/FuzzParsePrivateKeyPEM holds keys made by OpenSSL
// 3.0 (passphrase "fuzz-corpus-pass"), most with -iter 1000 to keep each
// execution fast, and some in formats that are refused (PBES1, scrypt,
// DES3, 999 iterations, DEK-Info).
func FuzzParsePrivateKeyPEM(f *testing.F) {
	pass := []byte(kfPassphrase)
	if data, err := os.ReadFile(filepath.Join("testdata", "openssl-pbes2.key")); err == nil {
		f.Add(data, []byte(kfTestdataPassphrase))
		f.Add(data, []byte("wrong"))
		f.Add(data, []byte{})
	}
	key := kfKey(f, "P-256")
	enc, err := marshalEncryptedPrivateKey(key, pass, kfTestIterations, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc, pass)
	f.Add(kfBuild(f, kfPBES2{prfOID: kfAbsent, newHash: sha1.New, cipherOID: oidAES128CBC, keyLen: 16, keyLenTag: 16, salt: []byte("saltsalt")}, kfPassphrase), pass)
	f.Add(kfBuild(f, kfPBES2{prfOID: oidHMACWithSHA512, newHash: sha512.New, cipherOID: oidAES192CBC, keyLen: 24}, kfPassphrase), pass)
	plain, err := MarshalPrivateKey(key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plain, []byte(nil))
	sec1, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), []byte(nil))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(kfKey(f, "RSA-2048").(*rsa.PrivateKey))}), []byte(nil))
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\n-----END ENCRYPTED PRIVATE KEY-----\n"), pass)
	f.Add([]byte{}, []byte{})

	f.Fuzz(func(t *testing.T, data, passphrase []byte) {
		encrypted := IsEncryptedPrivateKeyPEM(data)
		key, err := ParsePrivateKeyPEM(data, passphrase)
		if err != nil {
			if key != nil {
				t.Fatalf("got both a key (%T) and an error (%v)", key, err)
			}
			msg := err.Error()
			if msg == "" {
				t.Fatal("empty error message")
			}
			// Long passphrases only: a short one may occur in any message.
			if len(passphrase) >= 16 && strings.Contains(msg, string(passphrase)) {
				t.Fatalf("error %q contains the passphrase", msg)
			}
			if encrypted && len(passphrase) == 0 && !errors.Is(err, ErrPassphraseRequired) {
				t.Fatalf("encrypted key without passphrase: %v, want ErrPassphraseRequired", err)
			}
			return
		}
		if key == nil {
			t.Fatal("no key and no error")
		}
		if encrypted && len(passphrase) == 0 {
			t.Fatal("decrypted a key without a passphrase")
		}
		if key.Public() == nil {
			t.Fatalf("%T key has no public key", key)
		}
		// What was read can be written and read back.
		out, err := MarshalPrivateKey(key)
		if err != nil {
			return // a key PKCS#8 cannot hold
		}
		again, err := ParsePrivateKeyPEM(out, nil)
		if err != nil {
			t.Fatalf("re-reading the key: %v", err)
		}
		kfSameKey(t, again, key)
	})
}

func ExampleMarshalEncryptedPrivateKey() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	// Stored as PKCS#8 with PBES2 (PBKDF2-HMAC-SHA256, 600000 iterations,
	// AES-256-CBC); `openssl pkey -in ca.key` reads it.
	data, err := MarshalEncryptedPrivateKey(key, []byte("a long and secret passphrase"))
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.SplitN(string(data), "\n", 2)[0])
	fmt.Println(IsEncryptedPrivateKeyPEM(data))

	_, err = ParsePrivateKeyPEM(data, nil)
	fmt.Println(errors.Is(err, ErrPassphraseRequired))

	signer, err := ParsePrivateKeyPEM(data, []byte("a long and secret passphrase"))
	if err != nil {
		panic(err)
	}
	fmt.Println(key.Equal(signer))
	// Output:
	// -----BEGIN ENCRYPTED PRIVATE KEY-----
	// true
	// true
	// true
}

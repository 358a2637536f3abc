package card_test

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
)

// newVirtual opens PIV on a fresh in-process virtual card.
func newVirtual(t testing.TB, opts ...card.Option) (*virtual.Card, *card.PIV) {
	t.Helper()
	st, err := virtual.NewState(12345678)
	if err != nil {
		t.Fatal(err)
	}
	vc := virtual.New(st, "")
	p, err := card.OpenPIV(vc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return vc, p
}

func mustAuth(t testing.TB, p *card.PIV) {
	t.Helper()
	if err := p.AuthenticateManagementKey(card.MgmtTDES, card.DefaultManagementKey); err != nil {
		t.Fatal(err)
	}
}

func TestOpenVirtual(t *testing.T) {
	vc, p := newVirtual(t)
	if maj, min, pat, ok := p.Version(); !ok || maj != 5 {
		t.Errorf("Version = %d.%d.%d %v", maj, min, pat, ok)
	}
	if s, ok := p.Serial(); !ok || s != 12345678 {
		t.Errorf("Serial = %d %v", s, ok)
	}
	c, err := p.CHUID()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.GUID[:], vc.State().GUID()) {
		t.Errorf("GUID %X, card has %X", c.GUID, vc.State().GUID())
	}
	if _, err := p.CCC(); err != nil {
		t.Error(err)
	}
	d, err := p.Discovery()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(d.AID, []byte{0xA0, 0, 0, 3, 8}) {
		t.Errorf("discovery AID %X", d.AID)
	}
	if _, err := p.Certificate(card.SlotAuthentication); !errors.Is(err, card.ErrNotFound) {
		t.Errorf("empty slot: %v", err)
	}
}

func TestPINLifecycle(t *testing.T) {
	_, p := newVirtual(t)
	n, err := p.PINRetries()
	if err != nil || n != 3 {
		t.Fatalf("PINRetries = %d, %v", n, err)
	}
	for want := 2; want >= 0; want-- {
		err := p.VerifyPIN("654321")
		var ae *card.AuthError
		if !errors.As(err, &ae) || ae.Retries != want {
			t.Fatalf("wrong PIN: %v, want %d retries", err, want)
		}
		if got := errors.Is(err, card.ErrBlocked); got != (want == 0) {
			t.Errorf("errors.Is(%v, ErrBlocked) = %v", err, got)
		}
		if strings.Contains(err.Error(), "654321") {
			t.Errorf("error shows the PIN: %v", err)
		}
	}
	if err := p.VerifyPIN(card.DefaultPIN); !errors.Is(err, card.ErrBlocked) {
		t.Fatalf("right PIN on a blocked card: %v", err)
	}
	if n, err := p.PINRetries(); err != nil || n != 0 {
		t.Errorf("PINRetries when blocked = %d, %v", n, err)
	}
	// wrong PUK
	err = p.Unblock("87654321", "11112222")
	var ae *card.AuthError
	if !errors.As(err, &ae) || ae.Retries != 2 || ae.What != "PUK" {
		t.Fatalf("wrong PUK: %v", err)
	}
	if n, err := p.PUKRetries(); err != nil || n != 2 {
		t.Errorf("PUKRetries = %d, %v", n, err)
	}
	if err := p.Unblock(card.DefaultPUK, "11112222"); err != nil {
		t.Fatal(err)
	}
	if n, err := p.PINRetries(); err != nil || n != 3 {
		t.Errorf("PINRetries after unblock = %d, %v", n, err)
	}
	if err := p.VerifyPIN("11112222"); err != nil {
		t.Fatal(err)
	}
	if _, verified, err := p.PINStatus(); err != nil || !verified {
		t.Errorf("PINStatus after verify: %v %v", verified, err)
	}
	if n, err := p.PINRetries(); err != nil || n != 3 {
		t.Errorf("PINRetries when verified = %d, %v (metadata)", n, err)
	}
	if err := p.ChangePIN("11112222", "2468024"); err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyPIN("2468024"); err != nil {
		t.Fatal(err)
	}
	if err := p.ChangePUK(card.DefaultPUK, "abcdefgh"); err != nil {
		t.Fatal(err)
	}
	if err := p.ChangePUK(card.DefaultPUK, "abcdefgh"); err == nil {
		t.Fatal("old PUK still works")
	}
	md, err := p.Metadata(card.SlotPIN)
	if err != nil {
		t.Fatal(err)
	}
	if md.Default || md.RetriesTotal != 3 {
		t.Errorf("PIN metadata %+v", md)
	}
}

func TestManagementKey(t *testing.T) {
	_, p := newVirtual(t)
	wrong := bytes.Clone(card.DefaultManagementKey)
	wrong[0] ^= 0x80 // not the DES parity bit
	err := p.AuthenticateManagementKey(card.MgmtTDES, wrong)
	if !errors.Is(err, card.ErrWrongManagementKey) {
		t.Fatalf("wrong key: %v", err)
	}
	if strings.Contains(err.Error(), "0203") {
		t.Errorf("error shows key bytes? %v", err)
	}
	// Without authentication, writes are refused.
	if err := p.SetManagementKey(card.MgmtAES192, bytes.Repeat([]byte{9}, 24), false); !errors.Is(err, card.ErrSecurityStatus) {
		t.Fatalf("set key unauthenticated: %v", err)
	}
	mustAuth(t, p)
	if alg, err := p.ManagementKeyAlgorithm(); err != nil || alg != card.MgmtTDES {
		t.Errorf("ManagementKeyAlgorithm = %v, %v", alg, err)
	}
	newKey := []byte("0123456789abcdefghijklmn")
	if err := p.SetManagementKey(card.MgmtAES192, newKey, false); err != nil {
		t.Fatal(err)
	}
	if err := p.AuthenticateManagementKey(card.MgmtTDES, card.DefaultManagementKey); err == nil {
		t.Fatal("old key still accepted")
	}
	if err := p.AuthenticateManagementKey(card.MgmtAES192, card.DefaultManagementKey); !errors.Is(err, card.ErrWrongManagementKey) {
		t.Fatalf("old key bytes as AES-192: %v", err)
	}
	if err := p.AuthenticateManagementKey(card.MgmtAES192, newKey); err != nil {
		t.Fatal(err)
	}
	md, err := p.Metadata(card.SlotManagementKey)
	if err != nil {
		t.Fatal(err)
	}
	if card.ManagementKeyAlgorithm(md.Algorithm) != card.MgmtAES192 || md.Default {
		t.Errorf("9B metadata %+v", md)
	}
	// AES-128 and AES-256 too.
	for _, tc := range []struct {
		alg card.ManagementKeyAlgorithm
		n   int
	}{{card.MgmtAES128, 16}, {card.MgmtAES256, 32}, {card.MgmtTDES, 24}} {
		k := make([]byte, tc.n)
		rand.Read(k)
		if err := p.SetManagementKey(tc.alg, k, false); err != nil {
			t.Fatalf("%v: %v", tc.alg, err)
		}
		if err := p.AuthenticateManagementKey(tc.alg, k); err != nil {
			t.Fatalf("%v: %v", tc.alg, err)
		}
	}
	// Key length is checked before anything is sent.
	if err := p.AuthenticateManagementKey(card.MgmtAES256, make([]byte, 24)); err == nil {
		t.Error("24-byte AES-256 key accepted")
	}
}

func selfSign(t testing.TB, key crypto.Signer, cn string) *x509.Certificate {
	t.Helper()
	cert, err := trySelfSign(key, cn)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func trySelfSign(key crypto.Signer, cn string) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func TestGenerateSignCertificate(t *testing.T) {
	for _, tc := range []struct {
		alg      card.Algorithm
		extended bool
	}{
		{card.AlgECCP256, false},
		{card.AlgECCP384, true},
		{card.AlgRSA2048, false},
	} {
		t.Run(tc.alg.String(), func(t *testing.T) {
			_, p := newVirtual(t, card.WithExtendedLength(tc.extended))
			if _, err := p.GenerateKey(card.SlotAuthentication, tc.alg, card.KeyPolicy{}); !errors.Is(err, card.ErrSecurityStatus) {
				t.Fatalf("generate unauthenticated: %v", err)
			}
			mustAuth(t, p)
			pub, err := p.GenerateKey(card.SlotAuthentication, tc.alg, card.KeyPolicy{})
			if err != nil {
				t.Fatal(err)
			}
			md, err := p.Metadata(card.SlotAuthentication)
			if err != nil {
				t.Fatal(err)
			}
			if md.Algorithm != tc.alg || md.Origin != 1 || !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(md.PublicKey) {
				t.Errorf("metadata %+v", md)
			}
			priv, err := p.PrivateKey(card.SlotAuthentication, pub, card.KeyAuth{PIN: card.DefaultPIN})
			if err != nil {
				t.Fatal(err)
			}
			signer := priv.(crypto.Signer)
			cert := selfSign(t, signer, "card "+tc.alg.String())
			if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
				t.Fatalf("self-signed certificate: %v", err)
			}
			if err := p.SetCertificate(card.SlotAuthentication, cert); err != nil {
				t.Fatal(err)
			}
			got, err := p.Certificate(card.SlotAuthentication)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(cert) {
				t.Fatal("certificate read back differs")
			}

			digest := sha256.Sum256([]byte("hello"))
			sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			switch pub := pub.(type) {
			case *ecdsa.PublicKey:
				if !ecdsa.VerifyASN1(pub, digest[:], sig) {
					t.Error("ECDSA signature does not verify")
				}
				// SHA-512 digest on a smaller curve is truncated as ECDSA says.
				d512 := sha512.Sum512([]byte("hello"))
				sig, err := signer.Sign(rand.Reader, d512[:], crypto.SHA512)
				if err != nil {
					t.Fatal(err)
				}
				if !ecdsa.VerifyASN1(pub, d512[:], sig) {
					t.Error("ECDSA/SHA-512 signature does not verify")
				}
				testECDH(t, priv.(*card.ECDSAPrivateKey), pub)
			case *rsa.PublicKey:
				if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
					t.Error(err)
				}
				pss := &rsa.PSSOptions{Hash: crypto.SHA256}
				sig, err := signer.Sign(rand.Reader, digest[:], pss)
				if err != nil {
					t.Fatal(err)
				}
				if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, nil); err != nil {
					t.Errorf("PSS: %v", err)
				}
				pss.SaltLength = rsa.PSSSaltLengthEqualsHash
				if sig, err = signer.Sign(rand.Reader, digest[:], pss); err != nil {
					t.Fatal(err)
				}
				if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, pss); err != nil {
					t.Errorf("PSS salt = hash: %v", err)
				}
				testRSADecrypt(t, priv.(*card.RSAPrivateKey), pub)
			}

			att, err := p.Attest(card.SlotAuthentication)
			if err != nil {
				t.Fatal(err)
			}
			ac, err := p.AttestationCertificate()
			if err != nil {
				t.Fatal(err)
			}
			if err := att.CheckSignatureFrom(ac); err != nil {
				t.Errorf("attestation: %v", err)
			}
			if !att.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Error("attested key differs")
			}
		})
	}
}

func testECDH(t *testing.T, k *card.ECDSAPrivateKey, pub *ecdsa.PublicKey) {
	cardPub, err := pub.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	peer, err := cardPub.Curve().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.ECDH(peer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	want, err := peer.ECDH(cardPub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ECDH: card %X, crypto/ecdh %X", got, want)
	}
	other := ecdh.X25519()
	if cardPub.Curve() == ecdh.P256() {
		other = ecdh.P384()
	}
	op, _ := other.GenerateKey(rand.Reader)
	if _, err := k.ECDH(op.PublicKey()); err == nil {
		t.Error("ECDH with a key on another curve succeeded")
	}
}

func testRSADecrypt(t *testing.T, k *card.RSAPrivateKey, pub *rsa.PublicKey) {
	msg := []byte("a session key, 32 bytes long....")
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Decrypt(rand.Reader, ct, nil)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("PKCS #1 v1.5: %q, %v", got, err)
	}
	got, err = k.Decrypt(rand.Reader, ct, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 32})
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("session key: %q, %v", got, err)
	}
	// A wrong length gives a random key, no error (Bleichenbacher).
	got, err = k.Decrypt(rand.Reader, ct, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 16})
	if err != nil || len(got) != 16 || bytes.Equal(got, msg[:16]) {
		t.Fatalf("session key of wrong length: %q, %v", got, err)
	}
	ct, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, msg, []byte("label"))
	if err != nil {
		t.Fatal(err)
	}
	got, err = k.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA256, Label: []byte("label")})
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("OAEP: %q, %v", got, err)
	}
	if _, err := k.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA256}); !errors.Is(err, rsa.ErrDecryption) {
		t.Fatalf("OAEP with wrong label: %v", err)
	}
	// A ciphertext that is not PKCS #1 v1.5.
	ct[len(ct)-1] ^= 1
	if _, err := k.Decrypt(rand.Reader, ct, nil); !errors.Is(err, rsa.ErrDecryption) {
		t.Fatalf("bad padding: %v", err)
	}
}

func TestSignatureSlotPINAlways(t *testing.T) {
	_, p := newVirtual(t)
	mustAuth(t, p)
	pub, err := p.GenerateKey(card.SlotSignature, card.AlgECCP256, card.KeyPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	// No PIN: refused.
	k, _ := p.PrivateKey(card.SlotSignature, pub, card.KeyAuth{})
	if _, err := k.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); !errors.Is(err, card.ErrSecurityStatus) {
		t.Fatalf("9C without PIN: %v", err)
	}
	// A PIN verified earlier is not enough for 9C...
	if err := p.VerifyPIN(card.DefaultPIN); err != nil {
		t.Fatal(err)
	}
	prompts := 0
	k, _ = p.PrivateKey(card.SlotSignature, pub, card.KeyAuth{PINPrompt: func() (string, error) {
		prompts++
		return card.DefaultPIN, nil
	}})
	for i := 0; i < 2; i++ {
		sig, err := k.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
			t.Fatal("signature does not verify")
		}
	}
	if prompts != 2 {
		t.Errorf("PIN prompted %d times for 2 signatures with 9C", prompts)
	}
	// A wrong PIN from the prompt comes back as AuthError.
	k, _ = p.PrivateKey(card.SlotSignature, pub, card.KeyAuth{PIN: "000000"})
	var ae *card.AuthError
	if _, err := k.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); !errors.As(err, &ae) {
		t.Fatalf("wrong PIN: %v", err)
	}
}

func TestPINOnceVerifiedOnDemand(t *testing.T) {
	_, p := newVirtual(t)
	mustAuth(t, p)
	pub, err := p.GenerateKey(card.SlotKeyManagement, card.AlgECCP256, card.KeyPolicy{PIN: card.PINPolicyOnce})
	if err != nil {
		t.Fatal(err)
	}
	prompts := 0
	k, _ := p.PrivateKey(card.SlotKeyManagement, pub, card.KeyAuth{PINPrompt: func() (string, error) {
		prompts++
		return card.DefaultPIN, nil
	}})
	digest := sha256.Sum256([]byte("x"))
	for i := 0; i < 3; i++ {
		if _, err := k.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	}
	if prompts != 1 {
		t.Errorf("PIN prompted %d times for a PIN-once key", prompts)
	}
}

// A key from the wrong slot is caught: its signatures do not verify.
func TestWrongPublicKey(t *testing.T) {
	_, p := newVirtual(t)
	mustAuth(t, p)
	if _, err := p.GenerateKey(card.SlotAuthentication, card.AlgECCP256, card.KeyPolicy{}); err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, _ := p.PrivateKey(card.SlotAuthentication, &other.PublicKey, card.KeyAuth{PIN: card.DefaultPIN})
	digest := sha256.Sum256([]byte("x"))
	if _, err := k.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
		t.Fatal("signature with a mismatched public key reported as good")
	}
}

func TestConcurrentSigners(t *testing.T) {
	_, p := newVirtual(t)
	mustAuth(t, p)
	pub, err := p.GenerateKey(card.SlotAuthentication, card.AlgECCP256, card.KeyPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := p.PrivateKey(card.SlotAuthentication, pub, card.KeyAuth{PIN: card.DefaultPIN})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			d := sha256.Sum256([]byte{byte(i)})
			sig, err := k.(crypto.Signer).Sign(rand.Reader, d[:], crypto.SHA256)
			if err == nil && !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig) {
				err = errors.New("bad signature")
			}
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestCHUIDAndCCCWrite(t *testing.T) {
	_, p := newVirtual(t)
	c, err := card.NewCHUID()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetCHUID(c); !errors.Is(err, card.ErrSecurityStatus) {
		t.Fatalf("unauthenticated SetCHUID: %v", err)
	}
	mustAuth(t, p)
	if err := p.SetCHUID(c); err != nil {
		t.Fatal(err)
	}
	got, err := p.CHUID()
	if err != nil {
		t.Fatal(err)
	}
	if got.GUID != c.GUID || got.Expiration != c.Expiration || !bytes.Equal(got.FASCN, c.FASCN) {
		t.Errorf("CHUID read back %+v", got)
	}
	ccc, err := card.NewCCC()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetCCC(ccc); err != nil {
		t.Fatal(err)
	}
	gc, err := p.CCC()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gc.CardIdentifier, ccc.CardIdentifier) || gc.ContainerVersion != 0x21 {
		t.Errorf("CCC read back %+v", gc)
	}
}

func TestReset(t *testing.T) {
	_, p := newVirtual(t)
	mustAuth(t, p)
	newKey := bytes.Repeat([]byte{7}, 24)
	if err := p.SetManagementKey(card.MgmtTDES, newKey, false); err != nil {
		t.Fatal(err)
	}
	if err := p.AuthenticateManagementKey(card.MgmtTDES, newKey); err != nil {
		t.Fatal(err)
	}
	pub, err := p.GenerateKey(card.SlotAuthentication, card.AlgECCP256, card.KeyPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := p.PrivateKey(card.SlotAuthentication, pub, card.KeyAuth{PIN: card.DefaultPIN})
	if err := p.SetCertificate(card.SlotAuthentication, selfSign(t, k.(crypto.Signer), "x")); err != nil {
		t.Fatal(err)
	}
	if err := p.ChangePIN(card.DefaultPIN, "777777"); err != nil {
		t.Fatal(err)
	}
	if err := p.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Certificate(card.SlotAuthentication); !errors.Is(err, card.ErrNotFound) {
		t.Errorf("certificate after reset: %v", err)
	}
	if _, err := p.Metadata(card.SlotAuthentication); !errors.Is(err, card.ErrNotFound) {
		t.Errorf("key after reset: %v", err)
	}
	mustAuth(t, p)
	if err := p.VerifyPIN(card.DefaultPIN); err != nil {
		t.Errorf("default PIN after reset: %v", err)
	}
}

func TestDeleteCertificate(t *testing.T) {
	_, p := newVirtual(t)
	mustAuth(t, p)
	pub, err := p.GenerateKey(card.SlotCardAuthentication, card.AlgECCP256, card.KeyPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	// 9E needs no PIN.
	k, _ := p.PrivateKey(card.SlotCardAuthentication, pub, card.KeyAuth{})
	cert := selfSign(t, k.(crypto.Signer), "card auth")
	if err := p.SetCertificate(card.SlotCardAuthentication, cert); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Certificate(card.SlotCardAuthentication); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteCertificate(card.SlotCardAuthentication); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Certificate(card.SlotCardAuthentication); !errors.Is(err, card.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
}

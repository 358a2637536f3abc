package card_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/scstation/scstation/card"
)

// flow is what a station does with a card, checked step by step. It runs
// on the in-process emulator and through pcscd + vpcd alike.
func flow(t *testing.T, p *card.PIV, serial uint32) {
	if s, ok := p.Serial(); !ok || s != serial {
		t.Errorf("Serial = %d %v, want %d", s, ok, serial)
	}
	chuid, err := p.CHUID()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("GUID %s", chuid.GUIDString())

	// PIN: wrong until blocked, then the PUK.
	for want := 2; want >= 0; want-- {
		var ae *card.AuthError
		if err := p.VerifyPIN("000000"); !errors.As(err, &ae) || ae.Retries != want {
			t.Fatalf("wrong PIN: %v, want %d tries left", err, want)
		}
	}
	if err := p.VerifyPIN(card.DefaultPIN); !errors.Is(err, card.ErrBlocked) {
		t.Fatalf("blocked PIN: %v", err)
	}
	if err := p.Unblock(card.DefaultPUK, "24681357"); err != nil {
		t.Fatal(err)
	}
	if n, err := p.PINRetries(); err != nil || n != 3 {
		t.Fatalf("PINRetries after unblock = %d, %v", n, err)
	}
	pin := "24681357"

	// Management key: default 3DES, then AES-192.
	mustAuth(t, p)
	aesKey := make([]byte, 24)
	rand.Read(aesKey)
	if err := p.SetManagementKey(card.MgmtAES192, aesKey, false); err != nil {
		t.Fatal(err)
	}
	if err := p.AuthenticateManagementKey(card.MgmtTDES, card.DefaultManagementKey); err == nil {
		t.Fatal("default key still accepted")
	}
	if err := p.AuthenticateManagementKey(card.MgmtAES192, aesKey); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		slot card.Slot
		alg  card.Algorithm
	}{
		{card.SlotAuthentication, card.AlgECCP256},
		{card.SlotKeyManagement, card.AlgRSA2048},
		{card.SlotSignature, card.AlgECCP384},
	} {
		pub, err := p.GenerateKey(tc.slot, tc.alg, card.KeyPolicy{})
		if err != nil {
			t.Fatalf("%v in %v: %v", tc.alg, tc.slot, err)
		}
		priv, err := p.PrivateKey(tc.slot, pub, card.KeyAuth{PIN: pin})
		if err != nil {
			t.Fatal(err)
		}
		signer := priv.(crypto.Signer)
		cert := selfSign(t, signer, "flow "+tc.alg.String())
		if err := p.SetCertificate(tc.slot, cert); err != nil {
			t.Fatal(err)
		}
		got, err := p.Certificate(tc.slot)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(cert) {
			t.Fatalf("certificate in %v differs", tc.slot)
		}
		d := sha256.Sum256([]byte("flow"))
		sig, err := signer.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		switch pub := pub.(type) {
		case *ecdsa.PublicKey:
			if !ecdsa.VerifyASN1(pub, d[:], sig) {
				t.Fatal("ECDSA signature does not verify")
			}
			ep, _ := pub.ECDH()
			peer, _ := ep.Curve().GenerateKey(rand.Reader)
			s1, err := priv.(*card.ECDSAPrivateKey).ECDH(peer.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			s2, _ := peer.ECDH(ep)
			if !bytes.Equal(s1, s2) {
				t.Fatal("ECDH secrets differ")
			}
		case *rsa.PublicKey:
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
				t.Fatal(err)
			}
			ct, _ := rsa.EncryptPKCS1v15(rand.Reader, pub, []byte("secret"))
			pt, err := priv.(crypto.Decrypter).Decrypt(rand.Reader, ct, nil)
			if err != nil || string(pt) != "secret" {
				t.Fatalf("decrypt: %q %v", pt, err)
			}
		}
	}
}

func TestFlowInProcess(t *testing.T) {
	_, p := newVirtual(t)
	flow(t, p, 12345678)
}

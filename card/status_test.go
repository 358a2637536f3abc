package card_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
)

// plainPIV hides the Yubico extensions of a card: a PIV card of another
// make.
type plainPIV struct{ card.Card }

func (c plainPIV) Transmit(apdu []byte) ([]byte, error) {
	if len(apdu) >= 2 {
		switch apdu[1] {
		case 0xFD, 0xF8, 0xF7, 0xF9, 0xFB, 0xFF:
			return []byte{0x6D, 0x00}, nil
		}
	}
	return c.Card.Transmit(apdu)
}

func findSlot(t *testing.T, s *card.Status, slot card.Slot) card.SlotStatus {
	t.Helper()
	for _, ss := range s.Slots {
		if ss.Slot == slot {
			return ss
		}
	}
	t.Fatalf("no slot %s in the status", slot)
	return card.SlotStatus{}
}

func TestReadStatusYubico(t *testing.T) {
	_, p := newVirtual(t)
	s, err := card.ReadStatus(p)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Yubico || s.Version != [3]int{5, 4, 3} || !s.HasSerial || s.Serial != 12345678 || s.CHUID == nil {
		t.Errorf("identity: %+v", s)
	}
	if s.PINRetries != 3 || s.PUKRetries != 3 || !s.Metadata || s.PINDefault == nil || !*s.PINDefault ||
		s.ManagementKeyAlgorithm != card.MgmtTDES || !*s.ManagementKeyDefault {
		t.Errorf("PIN, PUK, management key: %+v", s)
	}
	if len(s.Slots) != 4 {
		t.Errorf("%d slots on a blank card", len(s.Slots))
	}
	for _, ss := range s.Slots {
		if ss.Key || ss.Certificate != nil {
			t.Errorf("blank card, slot %s: %+v", ss.Slot, ss)
		}
	}

	mustAuth(t, p)
	pub, err := p.GenerateKey(card.SlotSignature, card.AlgECCP384, card.KeyPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := p.PrivateKey(card.SlotSignature, pub, card.KeyAuth{PIN: card.DefaultPIN})
	cert := selfSign(t, k.(crypto.Signer), "signer")
	if err := p.SetCertificate(card.SlotSignature, cert); err != nil {
		t.Fatal(err)
	}
	r3, _ := card.RetiredSlot(3)
	if _, err := p.GenerateKey(r3, card.AlgECCP256, card.KeyPolicy{}); err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyPIN("000000"); err == nil {
		t.Fatal("wrong PIN accepted")
	}
	if s, err = card.ReadStatus(p); err != nil {
		t.Fatal(err)
	}
	if s.PINRetries != 2 {
		t.Errorf("PIN retries %d after a wrong PIN", s.PINRetries)
	}
	ss := findSlot(t, s, card.SlotSignature)
	if !ss.Key || ss.Algorithm != card.AlgECCP384 || ss.Origin != 1 || ss.Certificate == nil ||
		ss.Certificate.Subject.CommonName != "signer" || !pub.(*ecdsa.PublicKey).Equal(ss.PublicKey) {
		t.Errorf("9C: %+v", ss)
	}
	if ss := findSlot(t, s, r3); !ss.Key || ss.Certificate != nil {
		t.Errorf("retired slot 3: %+v", ss)
	}
	if len(s.Slots) != 5 {
		t.Errorf("%d slots listed, want the four and one retired", len(s.Slots))
	}
	if card.SlotSignature.Name() != "Digital Signature" || r3.Name() != "Retired Key Management 3" {
		t.Errorf("names %q %q", card.SlotSignature.Name(), r3.Name())
	}
}

// Without metadata, keys are inferred from certificates, and the PUK's
// tries are unknown.
func TestReadStatusPlainPIV(t *testing.T) {
	st, err := virtual.NewState(1)
	if err != nil {
		t.Fatal(err)
	}
	vc := virtual.New(st, "")
	yp, err := card.OpenPIV(vc)
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, yp)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := yp.SetCertificate(card.SlotKeyManagement, selfSign(t, key, "no metadata")); err != nil {
		t.Fatal(err)
	}
	if err := yp.WriteObject([]byte{0x5F, 0xC1, 0x0A}, []byte{0x70, 0x03, 1, 2, 3, 0x71, 0x01, 0x00, 0xFE, 0x00}); err != nil {
		t.Fatal(err)
	}

	p, err := card.OpenPIV(plainPIV{vc})
	if err != nil {
		t.Fatal(err)
	}
	s, err := card.ReadStatus(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Yubico || s.HasSerial || s.Metadata || s.PUKRetries != -1 || s.PINRetries != 3 || s.PINDefault != nil || s.CHUID == nil {
		t.Errorf("plain PIV status: %+v", s)
	}
	if ss := findSlot(t, s, card.SlotKeyManagement); !ss.Key || ss.Certificate == nil || ss.Algorithm != 0 {
		t.Errorf("9D: %+v", ss)
	}
	if ss := findSlot(t, s, card.SlotSignature); ss.Key || ss.CertificateError == nil {
		t.Errorf("9C with a broken certificate: %+v", ss)
	}
	if ss := findSlot(t, s, card.SlotAuthentication); ss.Key || ss.Certificate != nil || ss.CertificateError != nil {
		t.Errorf("9A: %+v", ss)
	}
}

func TestCheckNewPIN(t *testing.T) {
	for _, pin := range []string{"24681357", "975310", "1234567a", "a1b2c3d4", "123457"} {
		if err := card.CheckNewPIN(pin); err != nil {
			t.Errorf("%q refused: %v", pin, err)
		}
	}
	for _, pin := range []string{"", "12345", "123456789", "000000", "99999999", "123456", "12345678",
		"876543", "abcdef", "fedcba", "12 456", "12345\xff", "äöü123"} {
		err := card.CheckNewPIN(pin)
		if !errors.Is(err, card.ErrWeakPIN) {
			t.Errorf("%q accepted (%v)", pin, err)
		}
	}
}

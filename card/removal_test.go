package card_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
)

// pullCard is a Card whose card is pulled from the reader after a number
// of APDUs: from then on every call fails as a PC/SC reader's would.
type pullCard struct {
	inner  *virtual.Card
	left   int  // APDUs until the pull; <0: never
	close  bool // pull by closing the virtual card instead of failing here
	pulled bool
	sent   int
}

func (c *pullCard) Transmit(apdu []byte) ([]byte, error) {
	if c.left == 0 && !c.pulled {
		c.pulled = true
		if c.close {
			c.inner.Close()
		}
	}
	if c.pulled && !c.close {
		return nil, card.ErrCardRemoved
	}
	if c.left > 0 {
		c.left--
	}
	c.sent++
	return c.inner.Transmit(apdu)
}

func (c *pullCard) BeginTransaction() error {
	if c.pulled && !c.close {
		return card.ErrCardRemoved
	}
	return c.inner.BeginTransaction()
}

func (c *pullCard) EndTransaction() error {
	err := c.inner.EndTransaction()
	if c.pulled && !c.close {
		return card.ErrCardRemoved
	}
	return err
}

func (c *pullCard) Close() error { return c.inner.Close() }

// generation is the first half of an enrollment: authenticate, generate.
func generation(alg card.Algorithm, pub *crypto.PublicKey) func(p *card.PIV) []func() error {
	return func(p *card.PIV) []func() error {
		return []func() error{
			func() error { return p.AuthenticateManagementKey(card.MgmtTDES, card.DefaultManagementKey) },
			func() error {
				k, err := p.GenerateKey(card.SlotAuthentication, alg, card.KeyPolicy{})
				if err == nil {
					*pub = k
				}
				return err
			},
		}
	}
}

// usage is the rest, on a card that holds the key: sign a certificate,
// write it, read it back, decrypt, verify the PIN.
func usage(t testing.TB, pub crypto.PublicKey) func(p *card.PIV) []func() error {
	return func(p *card.PIV) []func() error {
		var cert *x509.Certificate
		var priv crypto.PrivateKey
		return []func() error{
			func() error { return p.AuthenticateManagementKey(card.MgmtTDES, card.DefaultManagementKey) },
			func() (err error) {
				priv, err = p.PrivateKey(card.SlotAuthentication, pub, card.KeyAuth{PIN: card.DefaultPIN})
				return err
			},
			func() error {
				d := sha256.Sum256([]byte("tbs"))
				_, err := priv.(crypto.Signer).Sign(rand.Reader, d[:], crypto.SHA256)
				return err
			},
			func() (err error) {
				cert, err = trySelfSign(priv.(crypto.Signer), "pulled")
				return err
			},
			func() error { return p.SetCertificate(card.SlotAuthentication, cert) },
			func() error {
				got, err := p.Certificate(card.SlotAuthentication)
				if err == nil && !got.Equal(cert) {
					t.Fatal("certificate differs")
				}
				return err
			},
			func() error {
				if k, ok := priv.(*card.RSAPrivateKey); ok {
					ct, _ := rsa.EncryptPKCS1v15(rand.Reader, pub.(*rsa.PublicKey), []byte("secret"))
					_, err := k.Decrypt(rand.Reader, ct, nil)
					return err
				}
				return nil
			},
			func() error { return p.VerifyPIN(card.DefaultPIN) },
		}
	}
}

// pullEach runs the steps on a copy of st, pulling the card after 0, 1, 2,
// … APDUs, and checks that no step that was cut short reports success, the
// first failure is a removal, and after it the PIV refuses with
// ErrCardRemoved. It returns the card state after a run without a pull.
func pullEach(t *testing.T, st *virtual.State, closeCard, extended bool, steps func(*card.PIV) []func() error) *virtual.State {
	t.Helper()
	var final *virtual.State
	total := -1
	for n := 0; total < 0 || n < total; n++ {
		vc := virtual.New(st.Clone(), "")
		pc := &pullCard{inner: vc, left: -1, close: closeCard}
		p, err := card.OpenPIV(pc, card.WithExtendedLength(extended))
		if err != nil {
			t.Fatal(err)
		}
		if total >= 0 {
			pc.left = n
		}
		pc.sent = 0
		failed := false
		for i, step := range steps(p) {
			err := step()
			if err == nil {
				if pc.pulled {
					t.Fatalf("pull after %d APDUs: step %d reports success after the card was pulled", n, i)
				}
				continue
			}
			if !pc.pulled {
				t.Fatalf("pull after %d APDUs: step %d failed with the card in: %v", n, i, err)
			}
			if closeCard {
				if !errors.Is(err, virtual.ErrClosed) && !errors.Is(err, card.ErrCardRemoved) {
					t.Fatalf("step %d: %v", i, err)
				}
			} else {
				if !errors.Is(err, card.ErrCardRemoved) {
					t.Fatalf("pull after %d APDUs: step %d: %v is not ErrCardRemoved", n, i, err)
				}
				// Sticky: nothing more is tried on a pulled card.
				before := pc.sent
				if err := p.VerifyPIN(card.DefaultPIN); !errors.Is(err, card.ErrCardRemoved) {
					t.Fatalf("after the pull: %v", err)
				}
				if pc.sent != before {
					t.Fatal("APDUs sent after the card was reported removed")
				}
			}
			failed = true
			break
		}
		if total < 0 {
			if failed {
				t.Fatal("the run without a pull failed")
			}
			total = pc.sent
			final = vc.State()
			continue
		}
		if !failed {
			t.Fatalf("pull after %d of %d APDUs: everything succeeded", n, total)
		}
		p.Close()
	}
	t.Logf("%d APDUs, pulled after each", total)
	return final
}

// TestCardPulled pulls the card after every possible number of APDUs of
// an enrollment.
func TestCardPulled(t *testing.T) {
	for _, tc := range []struct {
		name     string
		alg      card.Algorithm
		close    bool
		extended bool
	}{
		{"P-256", card.AlgECCP256, false, false},
		{"RSA-2048 chained", card.AlgRSA2048, false, false},
		{"RSA-2048 extended", card.AlgRSA2048, false, true},
		{"P-256 virtual card closed", card.AlgECCP256, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := virtual.NewState(1)
			if err != nil {
				t.Fatal(err)
			}
			var pub crypto.PublicKey
			st = pullEach(t, st, tc.close, tc.extended, generation(tc.alg, &pub))
			pullEach(t, st, tc.close, tc.extended, usage(t, pub))
		})
	}
}

package station

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"sync"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/internal/atomicfile"
)

// masterKeyFile holds the station master secret: 32 random bytes from which
// every card's management key and the PUK sealing key are derived. Losing it
// means losing the right to administer the cards this station issued.
const masterKeyFile = "station.key"

// MgmtKeyVersion is the derivation the station uses for new cards; the
// inventory records it per card so that a later derivation can coexist.
const MgmtKeyVersion = 1

// Labels that separate the uses of the master secret.
const (
	mgmtKeyLabel = "piv-mgmt-v1"
	pukSealInfo  = "scstation puk seal v1"
)

// ErrMasterSecret is returned when the station master secret is unreadable
// or damaged.
var ErrMasterSecret = errors.New("station: the station master secret (station.key) is damaged")

// masterSecret loads the station master secret, creating it on first use
// (older data directories have none yet).
func (s *Station) masterSecret() ([]byte, error) {
	sh := s.shared
	sh.masterMu.Lock()
	defer sh.masterMu.Unlock()
	if sh.master != nil {
		return sh.master, nil
	}
	p := s.path(masterKeyFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		b = make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		if err := atomicfile.Write(p, b, 0o600); err != nil {
			return nil, err
		}
		s.Log.Info("station master secret created", "file", p)
	} else if err != nil {
		return nil, err
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("%w: want 32 bytes, the file has %d", ErrMasterSecret, len(b))
	}
	sh.master = b
	return b, nil
}

// CardManagementKey is the management key this station gives the card with
// the given inventory ID: HMAC-SHA256(master, "piv-mgmt-v1" ‖ id), cut to
// the length alg needs (24 bytes for 3DES and AES-192). Only a station with
// the same master secret can administer the card.
func (s *Station) CardManagementKey(id string, alg card.ManagementKeyAlgorithm, version int) ([]byte, error) {
	if version != MgmtKeyVersion {
		return nil, fmt.Errorf("station: unknown management key derivation %d", version)
	}
	if id == "" {
		return nil, errors.New("station: a card ID is needed to derive its management key")
	}
	m, err := s.masterSecret()
	if err != nil {
		return nil, err
	}
	var n int
	switch alg {
	case card.MgmtTDES, card.MgmtAES192:
		n = 24
	case card.MgmtAES128:
		n = 16
	case card.MgmtAES256:
		n = 32
	default:
		return nil, fmt.Errorf("station: unknown management key algorithm %v", alg)
	}
	h := hmac.New(sha256.New, m)
	h.Write([]byte(mgmtKeyLabel))
	h.Write([]byte(id))
	return h.Sum(nil)[:n], nil
}

// pukKey is the AES-256 key that seals PUKs, derived from the master secret
// with HKDF so that it is independent of the management keys.
func (s *Station) pukKey() ([]byte, error) {
	m, err := s.masterSecret()
	if err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, m, nil, pukSealInfo, 32)
}

// ErrSealedPUK is returned when a sealed PUK does not open: it was sealed by
// another station, for another card, or it is damaged.
var ErrSealedPUK = errors.New("station: the stored PUK does not open (another station's, another card's, or damaged)")

// SealPUK encrypts a PUK for the inventory with AES-256-GCM; the card ID is
// the additional data, so a sealed PUK moved to another card's record does
// not open.
func (s *Station) SealPUK(id, puk string) ([]byte, error) {
	k, err := s.pukKey()
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(k)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(puk)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, []byte(puk), []byte(id)), nil
}

// OpenPUK decrypts a PUK sealed by SealPUK for the same card ID.
func (s *Station) OpenPUK(id string, sealed []byte) (string, error) {
	k, err := s.pukKey()
	if err != nil {
		return "", err
	}
	aead, err := newGCM(k)
	if err != nil {
		return "", err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return "", ErrSealedPUK
	}
	n := aead.NonceSize()
	puk, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
	if err != nil {
		return "", ErrSealedPUK
	}
	return string(puk), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// RandomDigits returns n random decimal digits.
func RandomDigits(n int) (string, error) {
	b := make([]byte, n)
	ten := big.NewInt(10)
	for i := range b {
		d, err := rand.Int(rand.Reader, ten)
		if err != nil {
			return "", err
		}
		b[i] = '0' + byte(d.Int64())
	}
	return string(b), nil
}

// NewPUK returns a random 8-digit PUK.
func NewPUK() (string, error) { return RandomDigits(8) }

// RandomPIN returns a random 8-digit PIN that passes CheckPIN, for a card
// whose holder is not at the kiosk: it is shown once and never stored.
func RandomPIN() (string, error) {
	for {
		p, err := RandomDigits(8)
		if err != nil {
			return "", err
		}
		if CheckPIN(p) == nil {
			return p, nil
		}
	}
}

// CheckPIN is the station's PIN policy: 6 to 8 digits, not one digit
// repeated, not an ascending or descending run (card.CheckNewPIN), and so
// never the factory PIN 123456. The PIN never appears in the error.
func CheckPIN(pin string) error {
	for i := 0; i < len(pin); i++ {
		if pin[i] < '0' || pin[i] > '9' {
			return fmt.Errorf("%w: a PIN has digits only", card.ErrWeakPIN)
		}
	}
	if err := card.CheckNewPIN(pin); err != nil {
		return err
	}
	if pin == card.DefaultPIN {
		return fmt.Errorf("%w: it is the factory PIN", card.ErrWeakPIN)
	}
	return nil
}

// enrollState is the Station's part for enrollment: the signed-in officer.
// (The master secret, one per process, is in stores.)
type enrollState struct {
	mu      sync.Mutex
	officer *Officer
}

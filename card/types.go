package card

import "fmt"

// Slot is a PIV key reference (SP 800-78-4 Table 6-1).
type Slot byte

const (
	SlotAuthentication     Slot = 0x9A // PIV Authentication
	SlotSignature          Slot = 0x9C // Digital Signature (PIN always)
	SlotKeyManagement      Slot = 0x9D // Key Management
	SlotCardAuthentication Slot = 0x9E // Card Authentication (no PIN)
	SlotAttestation        Slot = 0xF9 // Yubico attestation key
	SlotManagementKey      Slot = 0x9B // card management key (for Metadata)
	SlotPIN                Slot = 0x80 // PIN (for Metadata)
	SlotPUK                Slot = 0x81 // PUK (for Metadata)
)

// RetiredSlot returns retired key management slot n (1..20: 82..95).
func RetiredSlot(n int) (Slot, bool) {
	if n < 1 || n > 20 {
		return 0, false
	}
	return Slot(0x81 + n), true
}

func (s Slot) String() string { return fmt.Sprintf("%02X", byte(s)) }

// object returns the data object holding the slot's certificate.
func (s Slot) object() ([]byte, bool) {
	switch {
	case s == SlotAuthentication:
		return []byte{0x5F, 0xC1, 0x05}, true
	case s == SlotSignature:
		return []byte{0x5F, 0xC1, 0x0A}, true
	case s == SlotKeyManagement:
		return []byte{0x5F, 0xC1, 0x0B}, true
	case s == SlotCardAuthentication:
		return []byte{0x5F, 0xC1, 0x01}, true
	case s >= 0x82 && s <= 0x95:
		return []byte{0x5F, 0xC1, 0x0D + byte(s-0x82)}, true
	case s == SlotAttestation:
		return []byte{0x5F, 0xFF, 0x01}, true
	}
	return nil, false
}

func (s Slot) isKey() bool {
	switch s {
	case SlotAuthentication, SlotSignature, SlotKeyManagement, SlotCardAuthentication, SlotAttestation:
		return true
	}
	return s >= 0x82 && s <= 0x95
}

// Algorithm is a PIV cryptographic algorithm identifier (SP 800-78-4 Table 6-2).
type Algorithm byte

const (
	AlgRSA1024 Algorithm = 0x06
	AlgRSA2048 Algorithm = 0x07
	AlgRSA3072 Algorithm = 0x05 // SP 800-78-5; YubiKey 5.7
	AlgRSA4096 Algorithm = 0x16 // YubiKey 5.7
	AlgECCP256 Algorithm = 0x11
	AlgECCP384 Algorithm = 0x14
)

func (a Algorithm) String() string {
	switch a {
	case AlgRSA1024:
		return "RSA-1024"
	case AlgRSA2048:
		return "RSA-2048"
	case AlgRSA3072:
		return "RSA-3072"
	case AlgRSA4096:
		return "RSA-4096"
	case AlgECCP256:
		return "ECC P-256"
	case AlgECCP384:
		return "ECC P-384"
	case 0xE0:
		return "Ed25519"
	case 0xE1:
		return "X25519"
	}
	if m := ManagementKeyAlgorithm(a); m.blockSize() != 0 {
		return m.String()
	}
	return fmt.Sprintf("algorithm %02X", byte(a))
}

func (a Algorithm) rsaBits() int {
	switch a {
	case AlgRSA1024:
		return 1024
	case AlgRSA2048:
		return 2048
	case AlgRSA3072:
		return 3072
	case AlgRSA4096:
		return 4096
	}
	return 0
}

// ManagementKeyAlgorithm is the algorithm of the card management key (9B).
type ManagementKeyAlgorithm byte

const (
	MgmtTDES   ManagementKeyAlgorithm = 0x03 // 3-key triple DES, 24-byte key
	MgmtAES128 ManagementKeyAlgorithm = 0x08
	MgmtAES192 ManagementKeyAlgorithm = 0x0A
	MgmtAES256 ManagementKeyAlgorithm = 0x0C
)

func (m ManagementKeyAlgorithm) String() string {
	switch m {
	case MgmtTDES:
		return "3DES"
	case MgmtAES128:
		return "AES-128"
	case MgmtAES192:
		return "AES-192"
	case MgmtAES256:
		return "AES-256"
	}
	return fmt.Sprintf("management algorithm %02X", byte(m))
}

func (m ManagementKeyAlgorithm) keyLen() int {
	switch m {
	case MgmtTDES, MgmtAES192:
		return 24
	case MgmtAES128:
		return 16
	case MgmtAES256:
		return 32
	}
	return 0
}

func (m ManagementKeyAlgorithm) blockSize() int {
	switch m {
	case MgmtTDES:
		return 8
	case MgmtAES128, MgmtAES192, MgmtAES256:
		return 16
	}
	return 0
}

// DefaultManagementKey is the factory management key of PIV cards
// (3DES on most cards, AES-192 on YubiKey 5.7 and later).
var DefaultManagementKey = []byte{
	1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
}

// Factory PIN and PUK.
const (
	DefaultPIN = "123456"
	DefaultPUK = "12345678"
)

// PINPolicy says when a key needs the PIN (Yubico extension; PIV's own
// rule is "once per session", and always for 9C).
type PINPolicy byte

const (
	PINPolicyDefault PINPolicy = 0
	PINPolicyNever   PINPolicy = 1
	PINPolicyOnce    PINPolicy = 2
	PINPolicyAlways  PINPolicy = 3
)

func (p PINPolicy) String() string {
	switch p {
	case PINPolicyDefault:
		return "default"
	case PINPolicyNever:
		return "never"
	case PINPolicyOnce:
		return "once"
	case PINPolicyAlways:
		return "always"
	case 4:
		return "match-once"
	case 5:
		return "match-always"
	}
	return fmt.Sprintf("pin policy %d", byte(p))
}

// TouchPolicy says when a key needs a touch (Yubico extension).
type TouchPolicy byte

const (
	TouchPolicyDefault TouchPolicy = 0
	TouchPolicyNever   TouchPolicy = 1
	TouchPolicyAlways  TouchPolicy = 2
	TouchPolicyCached  TouchPolicy = 3
)

func (t TouchPolicy) String() string {
	switch t {
	case TouchPolicyDefault:
		return "default"
	case TouchPolicyNever:
		return "never"
	case TouchPolicyAlways:
		return "always"
	case TouchPolicyCached:
		return "cached"
	}
	return fmt.Sprintf("touch policy %d", byte(t))
}

// KeyPolicy is the PIN and touch policy of a generated key. Non-default
// values are Yubico extensions.
type KeyPolicy struct {
	PIN   PINPolicy
	Touch TouchPolicy
}

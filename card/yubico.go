package card

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
)

// Metadata describes a key or reference on the card (Yubico GET METADATA,
// INS F7, firmware 5.3 and later).
type Metadata struct {
	Algorithm   Algorithm // for 9B a ManagementKeyAlgorithm; FF for PIN and PUK
	PINPolicy   PINPolicy
	TouchPolicy TouchPolicy
	// Origin: 1 generated on the card, 2 imported; 0 when not reported.
	Origin    int
	PublicKey crypto.PublicKey // for asymmetric keys
	// Default: the PIN, PUK or management key still has its factory value.
	Default bool
	// RetriesTotal and RetriesRemaining, for PIN and PUK.
	RetriesTotal, RetriesRemaining int
}

// Metadata reads Yubico metadata for a key slot, 9B (management key), 80
// (PIN) or 81 (PUK). An empty slot gives ErrNotFound; cards without the
// extension give ErrNotSupported.
func (p *PIV) Metadata(slot Slot) (*Metadata, error) {
	if err := p.requireYubico("metadata"); err != nil {
		return nil, err
	}
	var md *Metadata
	err := p.tx(func() (err error) {
		md, err = p.metadata(slot)
		return err
	})
	return md, err
}

func (p *PIV) metadata(slot Slot) (*Metadata, error) {
	r, err := p.do("read metadata", "", command{ins: 0xF7, p2: byte(slot), ne: maxExtNe})
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.SW == 0x6A86 && !p.versionAtLeast(5, 3, 0) {
			return nil, fmt.Errorf("%w: %w", ErrNotSupported, err)
		}
		return nil, err
	}
	return parseMetadata(r)
}

func parseMetadata(r []byte) (*Metadata, error) {
	tlvs, err := parseTLVs(r)
	if err != nil {
		return nil, err
	}
	md := &Metadata{}
	for _, t := range tlvs {
		switch t.tag {
		case 0x01:
			if len(t.value) != 1 {
				return nil, fmt.Errorf("%w: metadata algorithm", ErrMalformedResponse)
			}
			md.Algorithm = Algorithm(t.value[0])
		case 0x02:
			if len(t.value) != 2 {
				return nil, fmt.Errorf("%w: metadata policy", ErrMalformedResponse)
			}
			md.PINPolicy, md.TouchPolicy = PINPolicy(t.value[0]), TouchPolicy(t.value[1])
		case 0x03:
			if len(t.value) != 1 {
				return nil, fmt.Errorf("%w: metadata origin", ErrMalformedResponse)
			}
			md.Origin = int(t.value[0])
		case 0x04:
			pub, err := parsePublicKey(md.Algorithm, t.value)
			if err != nil {
				return nil, err
			}
			md.PublicKey = pub
		case 0x05:
			if len(t.value) != 1 {
				return nil, fmt.Errorf("%w: metadata default flag", ErrMalformedResponse)
			}
			md.Default = t.value[0] != 0
		case 0x06:
			if len(t.value) != 2 {
				return nil, fmt.Errorf("%w: metadata retries", ErrMalformedResponse)
			}
			md.RetriesTotal, md.RetriesRemaining = int(t.value[0]), int(t.value[1])
		}
	}
	return md, nil
}

// Attest returns the Yubico attestation certificate for a key generated on
// the card (INS F9), signed by the attestation key in slot F9; see
// AttestationCertificate.
func (p *PIV) Attest(slot Slot) (*x509.Certificate, error) {
	if err := p.requireYubico("attestation"); err != nil {
		return nil, err
	}
	var der []byte
	err := p.tx(func() (err error) {
		der, err = p.do("attest key "+slot.String(), "", command{ins: 0xF9, p1: byte(slot), ne: maxExtNe})
		return err
	})
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("card: attestation certificate: %w", err)
	}
	return cert, nil
}

// AttestationCertificate reads the certificate of the attestation key (slot
// F9, object 5FFF01), the intermediate between Attest's certificates and the
// vendor's attestation root.
func (p *PIV) AttestationCertificate() (*x509.Certificate, error) {
	return p.Certificate(SlotAttestation)
}

// Reset returns the PIV application to factory state (Yubico RESET, INS
// FB): all keys and objects are deleted and PIN, PUK and management key get
// their defaults. The card allows it only with PIN and PUK blocked, so Reset
// blocks them first, in the same transaction. Cards without Yubico
// extensions give ErrNotSupported.
func (p *PIV) Reset() error {
	if err := p.requireYubico("reset"); err != nil {
		return err
	}
	return p.tx(func() error {
		if err := p.blockRef(refPIN); err != nil {
			return err
		}
		if err := p.blockRef(refPUK); err != nil {
			return err
		}
		_, err := p.do("reset PIV application", "", command{ins: 0xFB})
		return err
	})
}

// blockRef uses up the tries of the PIN or PUK with random wrong values.
func (p *PIV) blockRef(ref byte) error {
	var wrong [16]byte
	for range 256 {
		if _, err := rand.Read(wrong[:]); err != nil {
			return err
		}
		for i := 8; i < 16; i++ { // a valid new value for CHANGE REFERENCE DATA
			wrong[i] = '0' + wrong[i]%10
		}
		var sw uint16
		var err error
		if ref == refPIN {
			_, sw, err = p.t.transmit(command{ins: 0x20, p2: refPIN, data: wrong[:8], secret: true})
		} else {
			_, sw, err = p.t.transmit(command{ins: 0x24, p2: refPUK, data: wrong[:], secret: true})
		}
		if err != nil {
			return fmt.Errorf("card: reset: %w", err)
		}
		switch {
		case sw == 0x6983 || sw == 0x63C0:
			clear(wrong[:])
			return nil
		case sw&0xFFF0 == 0x63C0, sw == 0x9000:
			continue
		default:
			return statusError("reset: block PIN or PUK", "", sw)
		}
	}
	return errors.New("card: reset: PIN or PUK does not block")
}

package card

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ebfe/scard"
)

// Status is what a PIV card tells about itself without a PIN: identity,
// retry counters, and what its key slots hold. ReadStatus fills it in.
type Status struct {
	// Reader and ATR, when the Card knows them (a PC/SC card does).
	Reader string
	ATR    []byte

	// Yubico is true when the card answers GET VERSION; Version is then
	// the firmware version and Serial the serial number (HasSerial when the
	// card tells it).
	Yubico    bool
	Version   [3]int
	Serial    uint32
	HasSerial bool

	// CHUID is nil when the card has none.
	CHUID *CHUID

	// PINRetries is the PIN tries left (0: blocked). PUKRetries is -1 when
	// the card cannot tell (PIV has no PUK status query; Yubico metadata
	// has one).
	PINRetries int
	PUKRetries int
	// PINDefault, PUKDefault and ManagementKeyDefault report, from Yubico
	// metadata, that the value is still the factory one; nil when unknown.
	PINDefault, PUKDefault, ManagementKeyDefault *bool
	// ManagementKeyAlgorithm, from Yubico metadata; 0 when unknown.
	ManagementKeyAlgorithm ManagementKeyAlgorithm

	// Metadata is true when the key information came from Yubico
	// metadata; otherwise a key is inferred from a certificate in its slot.
	Metadata bool
	// Slots are the four PIV key slots (9A, 9C, 9D, 9E) in that order,
	// then the retired key slots (82–95) that hold a key or certificate.
	Slots []SlotStatus
}

// SlotStatus is what a key slot holds.
type SlotStatus struct {
	Slot Slot
	// Key: the slot holds a key (from metadata, or inferred from a
	// certificate when the card has no metadata).
	Key bool
	// From metadata only: the key's algorithm, policies and origin (1
	// generated on the card, 2 imported), and its public key.
	Algorithm   Algorithm
	PINPolicy   PINPolicy
	TouchPolicy TouchPolicy
	Origin      int
	PublicKey   crypto.PublicKey
	// Certificate in the slot's object, nil when none. CertificateError is
	// set when the object is there but does not parse.
	Certificate      *x509.Certificate
	CertificateError error
}

// Name is the slot's SP 800-73-4 name.
func (s Slot) Name() string {
	switch s {
	case SlotAuthentication:
		return "PIV Authentication"
	case SlotSignature:
		return "Digital Signature"
	case SlotKeyManagement:
		return "Key Management"
	case SlotCardAuthentication:
		return "Card Authentication"
	case SlotAttestation:
		return "Attestation"
	case SlotManagementKey:
		return "Card Management Key"
	case SlotPIN:
		return "PIN"
	case SlotPUK:
		return "PUK"
	}
	if s.retired() {
		return fmt.Sprintf("Retired Key Management %d", int(s)-0x81)
	}
	return "slot " + s.String()
}

func (s Slot) retired() bool { return s >= 0x82 && s <= 0x95 }

// objKeyHistory is the Key History object (SP 800-73-4 Table 19).
var objKeyHistory = []byte{0x5F, 0xC1, 0x0C}

// ReadStatus reads the card's status: Yubico version and serial, CHUID,
// PIN and PUK retries, and each key slot's key and certificate. It needs no
// PIN and changes nothing on the card. Missing objects are not errors; a
// card pulled or a PC/SC failure is.
func ReadStatus(p *PIV) (*Status, error) {
	s := &Status{PUKRetries: -1}
	if r, ok := p.card.(interface{ Reader() string }); ok {
		s.Reader = r.Reader()
	}
	if a, ok := p.card.(interface{ ATR() []byte }); ok {
		s.ATR = a.ATR()
	}
	if maj, mnr, pat, ok := p.Version(); ok {
		s.Yubico, s.Version = true, [3]int{maj, mnr, pat}
	}
	s.Serial, s.HasSerial = p.Serial()

	chuid, err := p.CHUID()
	switch {
	case err == nil:
		s.CHUID = chuid
	case !tolerable(err):
		return nil, err
	}

	if s.PINRetries, err = p.PINRetries(); err != nil {
		return nil, err
	}

	// Yubico metadata (firmware 5.3 and later): PIN, PUK and management
	// key defaults, PUK retries, and which slots hold keys.
	if p.Yubico() {
		md, err := p.Metadata(SlotPIN)
		switch {
		case err == nil:
			s.Metadata = true
			s.PINDefault = &md.Default
		case !tolerable(err):
			return nil, err
		}
	}
	if s.Metadata {
		if md, err := p.Metadata(SlotPUK); err == nil {
			s.PUKRetries = md.RetriesRemaining
			s.PUKDefault = &md.Default
		} else if !tolerable(err) {
			return nil, err
		}
		if md, err := p.Metadata(SlotManagementKey); err == nil {
			s.ManagementKeyAlgorithm = ManagementKeyAlgorithm(md.Algorithm)
			s.ManagementKeyDefault = &md.Default
		} else if !tolerable(err) {
			return nil, err
		}
	}

	slots := []Slot{SlotAuthentication, SlotSignature, SlotKeyManagement, SlotCardAuthentication}
	retired, err := p.retiredSlots(s.Metadata)
	if err != nil {
		return nil, err
	}
	for _, slot := range append(slots, retired...) {
		ss, err := p.slotStatus(slot, s.Metadata)
		if err != nil {
			return nil, err
		}
		if slot.retired() && !ss.Key && ss.Certificate == nil && ss.CertificateError == nil {
			continue
		}
		s.Slots = append(s.Slots, ss)
	}
	return s, nil
}

// tolerable errors leave a part of the status unknown: the object or key
// is not there, the card does not support the query, or refuses it.
func tolerable(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotSupported) ||
		errors.Is(err, ErrSecurityStatus) || errors.Is(err, ErrMalformedResponse)
}

// retiredSlots lists the retired slots worth looking at: all twenty with
// metadata (an empty slot costs one APDU), else as many as the Key History
// object counts.
func (p *PIV) retiredSlots(metadata bool) ([]Slot, error) {
	n := 0
	if metadata {
		n = 20
	} else {
		v, err := p.ReadObject(objKeyHistory)
		if err != nil && !tolerable(err) {
			return nil, err
		}
		if err == nil {
			if tlvs, err := parseTLVs(v); err == nil {
				for _, tag := range []uint32{0xC1, 0xC2} {
					if c, ok := find(tlvs, tag); ok && len(c) == 1 {
						n += int(c[0])
					}
				}
			}
		}
	}
	var out []Slot
	for i := 1; i <= min(n, 20); i++ {
		s, _ := RetiredSlot(i)
		out = append(out, s)
	}
	return out, nil
}

func (p *PIV) slotStatus(slot Slot, metadata bool) (SlotStatus, error) {
	ss := SlotStatus{Slot: slot}
	if metadata {
		md, err := p.Metadata(slot)
		switch {
		case err == nil:
			ss.Key = true
			ss.Algorithm, ss.PINPolicy, ss.TouchPolicy = md.Algorithm, md.PINPolicy, md.TouchPolicy
			ss.Origin, ss.PublicKey = md.Origin, md.PublicKey
		case !tolerable(err):
			return ss, err
		}
		if slot.retired() && !ss.Key {
			return ss, nil // an empty retired slot: its certificate object is not read
		}
	}
	cert, err := p.Certificate(slot)
	switch {
	case err == nil:
		ss.Certificate = cert
		if !metadata {
			ss.Key = true
		}
	case errors.Is(err, ErrNotFound):
	case errors.Is(err, ErrCardRemoved), errors.Is(err, ErrNoService):
		return ss, err
	default:
		ss.CertificateError = err // e.g. the object is there but holds no certificate
	}
	return ss, nil
}

// ReaderInfo is what Inspect finds in a reader.
type ReaderInfo struct {
	Reader string
	// Present: a card is in the reader. InUse: another application holds
	// it exclusively (then nothing more is known).
	Present, InUse bool
	ATR            []byte
	// PIV: the card answered SELECT of the PIV application (only looked at
	// when Inspect is asked to). Yubico, Version, Serial as in Status.
	PIV       bool
	Yubico    bool
	Version   [3]int
	Serial    uint32
	HasSerial bool
}

// Inspect looks at the card in a reader: whether one is there and its ATR
// and, with piv, whether it has a PIV application and (Yubico extensions)
// its version and serial number. A reader without a card is not an error;
// an unknown reader gives ErrNoReader.
//
// Without piv it sends the card nothing and leaves it as it was, so it is
// safe on cards other programs are using. With piv it selects the PIV
// application, which (as on a YubiKey) ends a PIN or management key
// session another program has open on the card; it does not reset the
// card when it disconnects.
func (c *Context) Inspect(reader string, piv bool) (*ReaderInfo, error) {
	ctx, err := c.get()
	if err != nil {
		return nil, err
	}
	info := &ReaderInfo{Reader: reader}
	h, err := ctx.Connect(reader, scard.ShareShared, scard.ProtocolT1|scard.ProtocolT0)
	if err != nil {
		err = pcscError("connect to "+reader, err, false)
		switch {
		case errors.Is(err, ErrNoCard):
			return info, nil
		case errors.Is(err, ErrCardInUse):
			info.Present, info.InUse = true, true
			return info, nil
		}
		return nil, err
	}
	pc := &pcscCard{h: h, reader: reader}
	defer pc.leave()
	info.Present = true
	if st, err := h.Status(); err == nil {
		info.ATR = bytes.Clone(st.Atr)
		pc.atr = info.ATR
	}
	if !piv {
		return info, nil
	}
	p, err := OpenPIV(pc)
	switch {
	case err == nil:
		info.PIV = true
		if maj, mnr, pat, ok := p.Version(); ok {
			info.Yubico, info.Version = true, [3]int{maj, mnr, pat}
		}
		info.Serial, info.HasSerial = p.Serial()
	case errors.Is(err, ErrCardRemoved):
		info.Present, info.ATR = false, nil
	case errors.Is(err, ErrNoService):
		return nil, err
	}
	// Any other answer (not found, wrong status) is a card without PIV.
	return info, nil
}

// leave disconnects without resetting the card: nothing was verified or
// authenticated on this connection.
func (c *pcscCard) leave() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.h.Disconnect(scard.LeaveCard)
}

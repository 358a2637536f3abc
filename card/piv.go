package card

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// pivAID is the PIV application identifier prefix (SP 800-73-4 §2.2).
var pivAID = []byte{0xA0, 0x00, 0x00, 0x03, 0x08}

// PIV is an open PIV application on a card. Its methods are safe for
// concurrent use; each runs as one PC/SC transaction. Close closes the Card.
//
// Authentication state (a verified PIN, an authenticated management key)
// lives on the card: it lasts until the card is reset or removed, or another
// application selects something else on it. Operations that need a PIN take
// a KeyAuth and verify inside their own transaction. When another
// application resets the card between two operations (yubico-piv-tool does
// on exit), a PC/SC Card reconnects and PIV is selected again; the next
// operation needing management key authentication then fails with
// ErrSecurityStatus until AuthenticateManagementKey is called again.
type PIV struct {
	mu   sync.Mutex
	card Card
	t    transport

	yubico  bool
	version [3]byte
	serial  uint32
	hasSer  bool
	apt     []byte // application property template from SELECT

	gone error // sticky: the card was removed
}

// Option adjusts OpenPIV.
type Option func(*PIV)

// WithExtendedLength forces extended-length APDUs on or off. By default
// they are used when the card's ATR announces them (Card implementations
// that have an ATR() []byte method); otherwise long data goes by command
// chaining.
func WithExtendedLength(on bool) Option {
	return func(p *PIV) { p.t.extended = on }
}

// OpenPIV selects the PIV application on c. When the card answers the
// Yubico GET VERSION command, Yubico extensions (serial, metadata, set
// management key, reset, attestation) are enabled.
func OpenPIV(c Card, opts ...Option) (*PIV, error) {
	if c == nil {
		return nil, errors.New("card: nil Card")
	}
	p := &PIV{card: c, t: transport{card: c}}
	if a, ok := c.(interface{ ATR() []byte }); ok {
		p.t.extended = atrExtendedLength(a.ATR())
	}
	for _, o := range opts {
		o(p)
	}
	err := p.tx(func() error {
		if err := p.selectPIV(); err != nil {
			return err
		}
		v, sw, err := p.t.transmit(command{ins: 0xFD, ne: maxShortNe})
		if err != nil {
			return err
		}
		if sw == 0x9000 && len(v) == 3 {
			p.yubico = true
			copy(p.version[:], v)
			s, sw, err := p.t.transmit(command{ins: 0xF8, ne: maxShortNe})
			if err != nil {
				return err
			}
			if sw == 0x9000 && len(s) == 4 {
				p.serial = binary.BigEndian.Uint32(s)
				p.hasSer = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *PIV) selectPIV() error {
	r, err := p.do("select PIV application", "", command{ins: 0xA4, p1: 0x04, data: pivAID, ne: maxShortNe})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("card: not a PIV card: %w", err)
		}
		return err
	}
	p.apt = bytes.Clone(r)
	return nil
}

// Close closes the underlying Card.
func (p *PIV) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gone = errors.New("card: PIV closed")
	return p.card.Close()
}

// Yubico reports whether Yubico extensions are in use.
func (p *PIV) Yubico() bool { return p.yubico }

// Version is the Yubico firmware version; ok is false on other cards.
func (p *PIV) Version() (major, minor, patch int, ok bool) {
	return int(p.version[0]), int(p.version[1]), int(p.version[2]), p.yubico
}

// Serial is the Yubico serial number, when the card tells it.
func (p *PIV) Serial() (uint32, bool) { return p.serial, p.hasSer }

// ExtendedLength reports whether extended-length APDUs are used.
func (p *PIV) ExtendedLength() bool { return p.t.extended }

// versionAtLeast compares the Yubico version.
func (p *PIV) versionAtLeast(major, minor, patch byte) bool {
	if !p.yubico {
		return false
	}
	return bytes.Compare(p.version[:], []byte{major, minor, patch}) >= 0
}

// tx runs fn inside one card transaction. An error from EndTransaction
// (for instance the card was pulled) is reported even when fn succeeded:
// the caller must not take the operation as done.
func (p *PIV) tx(fn func() error) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone != nil {
		return p.gone
	}
	if err := p.card.BeginTransaction(); err != nil {
		return p.note(fmt.Errorf("card: begin transaction: %w", err))
	}
	if r, ok := p.card.(interface{ takeReset() bool }); ok && r.takeReset() {
		// The card was reset by someone else between our transactions
		// and reconnected: select PIV again before going on.
		err = p.selectPIV()
	}
	if err == nil {
		err = fn()
	}
	if e := p.card.EndTransaction(); e != nil {
		if err == nil {
			err = fmt.Errorf("card: end transaction: %w", e)
		} else if errors.Is(e, ErrCardRemoved) && !errors.Is(err, ErrCardRemoved) {
			err = errors.Join(err, fmt.Errorf("card: end transaction: %w", e))
		}
	}
	return p.note(err)
}

func (p *PIV) note(err error) error {
	if errors.Is(err, ErrCardRemoved) {
		p.gone = ErrCardRemoved
	}
	return err
}

// do sends a command and turns a status word other than 9000 into an
// error. what names the reference for 63Cx answers ("PIN", "PUK").
func (p *PIV) do(op, what string, c command) ([]byte, error) {
	data, sw, err := p.t.transmit(c)
	if err != nil {
		return nil, fmt.Errorf("card: %s: %w", op, err)
	}
	if sw != 0x9000 {
		return nil, statusError(op, what, sw)
	}
	return data, nil
}

// getData reads a data object (GET DATA, SP 800-73-4 §3.1.2) and returns
// the contents of its 53 template (or of 7E for discovery).
func (p *PIV) getData(tag []byte) ([]byte, error) {
	cmd := command{ins: 0xCB, p1: 0x3F, p2: 0xFF, data: tlvBytes(0x5C, tag), ne: maxExtNe}
	op := fmt.Sprintf("read data object %X", tag)
	r, err := p.do(op, "", cmd)
	if err != nil {
		return nil, err
	}
	want := uint32(0x53)
	if len(tag) == 1 && tag[0] == 0x7E {
		want = 0x7E
	}
	v, err := parseOne(r, want)
	if err != nil {
		return nil, fmt.Errorf("card: %s: %w", op, err)
	}
	return v, nil
}

// putData writes a data object (PUT DATA, SP 800-73-4 §3.2.2).
func (p *PIV) putData(tag, value []byte) error {
	data := appendTLV(make([]byte, 0, len(value)+16), 0x5C, tag)
	data = appendTLV(data, 0x53, value)
	_, err := p.do(fmt.Sprintf("write data object %X", tag), "", command{ins: 0xDB, p1: 0x3F, p2: 0xFF, data: data})
	return err
}

// ReadObject reads any PIV data object by its tag (e.g. 5FC102) and returns
// the contents of its 53 template. Missing objects give ErrNotFound.
func (p *PIV) ReadObject(tag []byte) ([]byte, error) {
	var v []byte
	err := p.tx(func() (err error) {
		v, err = p.getData(tag)
		return err
	})
	return v, err
}

// WriteObject writes any PIV data object (management key authentication
// needed).
func (p *PIV) WriteObject(tag, value []byte) error {
	return p.tx(func() error { return p.putData(tag, value) })
}

// requireYubico guards Yubico extensions.
func (p *PIV) requireYubico(what string) error {
	if !p.yubico {
		return fmt.Errorf("%w: %s is a Yubico extension", ErrNotSupported, what)
	}
	return nil
}

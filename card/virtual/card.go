// Package virtual is a PIV card emulator (NIST SP 800-73-4, plus the Yubico
// extensions that yubico-piv-tool and piv-go expect). A Card answers raw
// command APDUs in-process, or attaches to the real PC/SC stack through the
// vsmartcard virtual reader (vpcd) with ServeVPCD.
//
// Keys are generated inside the emulator and never leave it through the
// APDU interface. The card's State persists in a file, written crash-safely
// before each response that follows a change.
package virtual

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/scstation/scstation/card"
)

// ErrClosed is returned by a Card that has been closed (removed).
var ErrClosed = fmt.Errorf("virtual: card closed: %w", card.ErrCardRemoved)

// maxChain bounds the data a host may send in one command, chained or
// extended: nothing a PIV card stores is larger.
const maxChain = 16 << 10

// defaultATR is the ATR of a YubiKey 4/5 over USB (historical bytes
// "Yubikey4"). OpenSC 0.23 takes it for a PIV card of type "YubiKey 4"
// (it still probes the PIV application) and asks GET VERSION.
var defaultATR = []byte{
	0x3B, 0xF8, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15,
	0x59, 0x75, 0x62, 0x69, 0x6B, 0x65, 0x79, 0x34, 0xD4,
}

// pivAID is the PIV application identifier with its version.
var pivAID = []byte{0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00}

// Card is a PIV card running on a State. It is safe for concurrent use;
// each APDU is processed atomically.
type Card struct {
	mu     sync.Mutex
	st     *State
	path   string
	closed bool
	txn    chan struct{} // holds a token while a transaction is open
	done   chan struct{} // closed by Close

	// Volatile state, cleared by Reset (a power cycle).
	selected    bool
	pinVerified bool
	pinFresh    bool // PIN verified and not yet used by a PIN-always key
	mgmtAuthed  bool
	authKind    byte   // 0x80 witness or 0x81 challenge outstanding
	authNonce   []byte // the witness or the challenge
	chainHdr    [4]byte
	chain       []byte
	chaining    bool
	pending     []byte // response data waiting for GET RESPONSE

	dirty bool  // State changed but not yet saved
	nAPDU int64 // APDUs processed, for tests that count them
	keys  map[Slot]cachedKey

	noQuickAck atomic.Bool // tests measure the delayed-ACK penalty with it
}

type cachedKey struct {
	pkcs8 []byte
	priv  crypto.Signer
}

// New makes a card running on st. With a non-empty path, every change an
// APDU makes to st is saved there before the response goes out. The card
// owns st from now on: do not change it while the card runs.
func New(st *State, path string) *Card {
	return &Card{
		st:   st,
		path: path,
		txn:  make(chan struct{}, 1),
		done: make(chan struct{}),
		keys: map[Slot]cachedKey{},
	}
}

// State returns a deep copy of the card's current state.
func (c *Card) State() *State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Clone()
}

// ATR returns the card's answer to reset.
func (c *Card) ATR() []byte { return bytes.Clone(defaultATR) }

// BeginTransaction waits until no other transaction is open, then opens
// one. It exists so that a Card satisfies the same interface as a card in a
// PC/SC reader.
func (c *Card) BeginTransaction() error {
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	select {
	case c.txn <- struct{}{}:
		return nil
	case <-c.done:
		return ErrClosed
	}
}

// EndTransaction closes the transaction BeginTransaction opened.
func (c *Card) EndTransaction() error {
	select {
	case <-c.txn:
		return nil
	default:
		return errors.New("virtual: no transaction open")
	}
}

// Close removes the card: later calls fail with ErrClosed and ServeVPCD
// disconnects. The state file, if any, is already up to date.
func (c *Card) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.done)
	return nil
}

// Reset is a power cycle: PIN verification, management-key
// authentication, the selected application and any unfinished command or
// response chain are forgotten.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetVolatile()
}

func (c *Card) resetVolatile() {
	c.selected = false
	c.pinVerified, c.pinFresh, c.mgmtAuthed = false, false, false
	c.authKind, c.authNonce = 0, nil
	c.chaining, c.chain = false, nil
	c.pending = nil
}

// Transmit processes one command APDU and returns the response data
// followed by SW1 SW2. It fails only when the card is closed; malformed
// commands get a status word, never a panic.
func (c *Card) Transmit(apdu []byte) (resp []byte, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	defer func() {
		if r := recover(); r != nil {
			if repanic {
				panic(r)
			}
			c.chaining, c.chain, c.pending = false, nil, nil
			c.authKind, c.authNonce = 0, nil
			resp, err = sw(swNoPreciseDiagnosis), nil
		}
	}()
	c.nAPDU++
	resp = c.process(apdu)
	if c.dirty && c.path != "" {
		if err := c.st.Save(c.path); err != nil {
			// The change stays in memory and is saved with the next
			// command; the host learns that this one is not durable.
			return sw(swMemoryFailure), nil
		}
	}
	c.dirty = false
	return resp, nil
}

// process runs one APDU under c.mu.
func (c *Card) process(apdu []byte) []byte {
	cmd, ok := parseAPDU(apdu)
	if !ok {
		c.chaining, c.chain = false, nil
		return sw(swWrongLength)
	}
	if cmd.cla&^0x10 != 0 {
		return sw(swCLANotSupported)
	}
	if cmd.ins == 0xC0 { // GET RESPONSE
		return c.getResponse(cmd)
	}
	c.pending = nil

	// ISO command chaining: collect the pieces, run the whole at the end.
	hdr := [4]byte{cmd.cla &^ 0x10, cmd.ins, cmd.p1, cmd.p2}
	if c.chaining && hdr != c.chainHdr {
		c.chaining, c.chain = false, nil // abandoned chain
	}
	if cmd.cla&0x10 != 0 {
		if len(c.chain)+len(cmd.data) > maxChain {
			c.chaining, c.chain = false, nil
			return sw(swWrongLength)
		}
		c.chaining, c.chainHdr = true, hdr
		c.chain = append(c.chain, cmd.data...)
		return sw(swOK)
	}
	if c.chaining {
		if len(c.chain)+len(cmd.data) > maxChain {
			c.chaining, c.chain = false, nil
			return sw(swWrongLength)
		}
		cmd.data = append(c.chain, cmd.data...)
		c.chaining, c.chain = false, nil
	} else if len(cmd.data) > maxChain {
		return sw(swWrongLength)
	}

	if cmd.ins != 0x87 {
		c.authKind, c.authNonce = 0, nil
	}
	if cmd.ins != 0xA4 && !c.selected {
		return sw(swINSNotSupported)
	}
	data, status := c.dispatch(cmd)
	return c.respond(data, status, cmd.ne)
}

// respond sends at most ne bytes of data and keeps the rest for GET
// RESPONSE, announcing it with 61xx.
func (c *Card) respond(data []byte, status uint16, ne int) []byte {
	if status != swOK || len(data) <= ne {
		return withSW(data, status)
	}
	c.pending = bytes.Clone(data[ne:])
	return withSW(data[:ne], moreData(len(c.pending)))
}

func moreData(n int) uint16 {
	if n >= 256 {
		return 0x6100
	}
	return 0x6100 | uint16(n)
}

func (c *Card) getResponse(cmd command) []byte {
	if cmd.p1 != 0 || cmd.p2 != 0 {
		c.pending = nil
		return sw(swWrongP1P2)
	}
	if c.pending == nil {
		return sw(swConditions)
	}
	n := min(cmd.ne, len(c.pending))
	out := c.pending[:n]
	rest := c.pending[n:]
	if len(rest) == 0 {
		c.pending = nil
		return withSW(out, swOK)
	}
	c.pending = rest
	return withSW(out, moreData(len(rest)))
}

func (c *Card) dispatch(cmd command) ([]byte, uint16) {
	switch cmd.ins {
	case 0xA4:
		return c.cmdSelect(cmd)
	case 0xCB:
		return c.cmdGetData(cmd)
	case 0xDB:
		return c.cmdPutData(cmd)
	case 0x20:
		return c.cmdVerify(cmd)
	case 0x24:
		return c.cmdChangeReference(cmd)
	case 0x2C:
		return c.cmdResetRetryCounter(cmd)
	case 0x47:
		return c.cmdGenerate(cmd)
	case 0x87:
		return c.cmdGeneralAuthenticate(cmd)
	// Yubico extensions.
	case 0xFD:
		return c.st.Version[:], swOK
	case 0xF8:
		s := c.st.Serial
		return []byte{byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}, swOK
	case 0xF7:
		return c.cmdMetadata(cmd)
	case 0xFF:
		return c.cmdSetManagementKey(cmd)
	case 0xFB:
		return c.cmdReset(cmd)
	case 0xF9:
		return c.cmdAttest(cmd)
	case 0xFE:
		return c.cmdImportKey(cmd)
	case 0xFA:
		return c.cmdSetRetries(cmd)
	}
	return nil, swINSNotSupported
}

// privateKey returns the parsed key in slot s, parsing it at most once.
func (c *Card) privateKey(s Slot) (*Key, crypto.Signer, error) {
	k := c.st.Keys[s]
	if k == nil {
		return nil, nil, errNoKey
	}
	if ck, ok := c.keys[s]; ok && bytes.Equal(ck.pkcs8, k.PKCS8) {
		return k, ck.priv, nil
	}
	p, err := x509.ParsePKCS8PrivateKey(k.PKCS8)
	if err != nil {
		return nil, nil, fmt.Errorf("virtual: key in slot %s: %w", s, err)
	}
	signer, ok := p.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("virtual: key in slot %s is not a signer", s)
	}
	c.keys[s] = cachedKey{bytes.Clone(k.PKCS8), signer}
	return k, signer, nil
}

var errNoKey = errors.New("virtual: no key in slot")

// repanic lets the fuzz test see the panics Transmit otherwise turns into
// 6F00.
var repanic bool

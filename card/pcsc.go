package card

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ebfe/scard"
)

// Context is a PC/SC context (SCardEstablishContext). It lists readers and
// connects to cards. Watching readers is the Monitor's job: it has its own
// context.
type Context struct {
	mu  sync.Mutex
	ctx *scard.Context
}

// EstablishContext connects to the PC/SC service. When pcscd is not
// running the error matches ErrNoService.
func EstablishContext() (*Context, error) {
	c, err := scard.EstablishContext()
	if err != nil {
		return nil, pcscError("establish PC/SC context", err, false)
	}
	return &Context{ctx: c}, nil
}

// Release releases the context. Cards connected through it stay usable
// until closed only as far as pcsc-lite allows: close them first.
func (c *Context) Release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		return nil
	}
	err := c.ctx.Release()
	c.ctx = nil
	if err != nil {
		return pcscError("release PC/SC context", err, false)
	}
	return nil
}

func (c *Context) get() (*scard.Context, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		return nil, errors.New("card: PC/SC context released")
	}
	return c.ctx, nil
}

// ListReaders lists the readers; none is an empty list, not an error.
func (c *Context) ListReaders() ([]string, error) {
	ctx, err := c.get()
	if err != nil {
		return nil, err
	}
	rs, err := ctx.ListReaders()
	if errors.Is(err, scard.ErrNoReadersAvailable) {
		return nil, nil
	}
	if err != nil {
		return nil, pcscError("list readers", err, false)
	}
	return rs, nil
}

// Connect connects to the card in reader, in shared mode with T=1 or T=0.
// No card gives ErrNoCard; an unknown reader ErrNoReader. The returned Card
// also has ATR() []byte and Reader() string methods.
func (c *Context) Connect(reader string) (Card, error) {
	ctx, err := c.get()
	if err != nil {
		return nil, err
	}
	h, err := ctx.Connect(reader, scard.ShareShared, scard.ProtocolT1|scard.ProtocolT0)
	if err != nil {
		return nil, pcscError("connect to "+reader, err, false)
	}
	pc := &pcscCard{h: h, reader: reader}
	if st, err := h.Status(); err == nil {
		pc.atr = append([]byte(nil), st.Atr...)
	}
	return pc, nil
}

// pcscCard is a Card on a PC/SC reader.
type pcscCard struct {
	mu     sync.Mutex
	h      *scard.Card
	reader string
	atr    []byte
	closed bool
	gone   bool // a call reported the card removed
	reset  bool // reconnected after another application reset the card
}

func (c *pcscCard) ATR() []byte    { return append([]byte(nil), c.atr...) }
func (c *pcscCard) Reader() string { return c.reader }

func (c *pcscCard) Transmit(apdu []byte) ([]byte, error) {
	if len(apdu) < 4 {
		return nil, errEmptyAPDU // scard panics on an empty command
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("card: connection closed")
	}
	r, err := c.h.Transmit(apdu)
	if err != nil {
		return nil, c.fail(pcscError("transmit", err, true))
	}
	if len(r) < 2 {
		// No status word: the reader lost the card (vpcd answers so when
		// the card goes away in the middle of an APDU).
		c.gone = true
		return nil, fmt.Errorf("%w (transmit: %d-byte answer, no status word)", ErrCardRemoved, len(r))
	}
	return r, nil
}

func (c *pcscCard) BeginTransaction() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("card: connection closed")
	}
	err := c.h.BeginTransaction()
	if errors.Is(err, scard.ErrResetCard) {
		// Another application reset the card (yubico-piv-tool does on
		// disconnect). Nothing of ours was under way: reconnect, and let
		// the PIV layer select its application again. What was verified
		// or authenticated on the card is gone with the reset.
		if rerr := c.h.Reconnect(scard.ShareShared, scard.ProtocolT1|scard.ProtocolT0, scard.LeaveCard); rerr == nil {
			c.reset = true
			err = c.h.BeginTransaction()
		}
	}
	if err != nil {
		return c.fail(pcscError("begin transaction", err, true))
	}
	return nil
}

// takeReset reports (once) that the card was reset and reconnected since
// the last call.
func (c *pcscCard) takeReset() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reset
	c.reset = false
	return r
}

func (c *pcscCard) EndTransaction() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("card: connection closed")
	}
	if err := c.h.EndTransaction(scard.LeaveCard); err != nil {
		return c.fail(pcscError("end transaction", err, true))
	}
	return nil
}

// Close disconnects and resets the card, so that a PIN verified or a
// management key authenticated here does not outlive the connection. A
// card already gone is not reset: asking pcscd to reset an absent vpcd
// card makes it miss the next card in that reader for seconds.
func (c *pcscCard) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	disp := scard.ResetCard
	if c.gone {
		disp = scard.LeaveCard
	} else if st, err := c.h.Status(); err != nil || st.State&scard.Present == 0 {
		disp = scard.LeaveCard
	}
	err := c.h.Disconnect(disp)
	if err != nil && !isGone(err) {
		return pcscError("disconnect", err, true)
	}
	return nil
}

// fail notes a removal; c.mu is held.
func (c *pcscCard) fail(err error) error {
	if errors.Is(err, ErrCardRemoved) {
		c.gone = true
	}
	return err
}

func isGone(err error) bool {
	var e scard.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case scard.ErrRemovedCard, scard.ErrResetCard, scard.ErrNoSmartcard, scard.ErrInvalidHandle,
		scard.ErrReaderUnavailable, scard.ErrUnknownReader:
		return true
	}
	return false
}

// pcscError maps PC/SC errors to the package's sentinels. connected says
// the error came from an open card connection (then a missing card means
// it was removed).
func pcscError(op string, err error, connected bool) error {
	var e scard.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("card: %s: %w", op, err)
	}
	var s error
	switch e {
	case scard.ErrNoService, scard.ErrServiceStopped:
		s = ErrNoService
	case scard.ErrNoReadersAvailable, scard.ErrUnknownReader:
		s = ErrNoReader
	case scard.ErrReaderUnavailable:
		if connected {
			s = ErrCardRemoved
		} else {
			s = ErrNoReader
		}
	case scard.ErrRemovedCard, scard.ErrResetCard:
		s = ErrCardRemoved
	case scard.ErrNotTransacted, scard.ErrCommError:
		// The reader failed to exchange the APDU with the card: pcsc-lite
		// reports a card pulled mid-APDU so before it notices the removal.
		// Whether the command ran is unknown; treat it as a removal.
		if connected {
			s = ErrCardRemoved
		}
	case scard.ErrNoSmartcard:
		if connected {
			s = ErrCardRemoved
		} else {
			s = ErrNoCard
		}
	case scard.ErrUnpoweredCard, scard.ErrUnresponsiveCard:
		s = ErrNoCard
	case scard.ErrSharingViolation:
		s = ErrCardInUse
	}
	if s == nil {
		return fmt.Errorf("card: %s: %w (PC/SC %08X)", op, e, uint32(e))
	}
	if s == ErrNoService {
		return fmt.Errorf("%w (%s: PC/SC %08X); start pcscd", s, op, uint32(e))
	}
	return fmt.Errorf("%w (%s: %w)", s, op, e)
}

package card

import (
	"errors"
	"fmt"
)

const (
	refPIN = 0x80
	refPUK = 0x81
)

// padPIN encodes a PIN or PUK as 8 bytes padded with FF (SP 800-73-4 §2.4.3).
func padPIN(dst []byte, pin string, what string, minLen int) ([]byte, error) {
	if len(pin) < minLen || len(pin) > 8 {
		if minLen <= 1 {
			return nil, fmt.Errorf("card: %s must be 1 to 8 characters", what)
		}
		return nil, fmt.Errorf("card: %s must be %d to 8 characters", what, minLen)
	}
	dst = append(dst, pin...)
	for i := len(pin); i < 8; i++ {
		dst = append(dst, 0xFF)
	}
	return dst, nil
}

// VerifyPIN verifies the PIN. A wrong PIN gives *AuthError with the
// retries left; a blocked PIN gives an error matching ErrBlocked.
func (p *PIV) VerifyPIN(pin string) error {
	return p.tx(func() error { return p.verifyPIN(pin) })
}

func (p *PIV) verifyPIN(pin string) error {
	data, err := padPIN(make([]byte, 0, 8), pin, "PIN", 1)
	if err != nil {
		return err
	}
	defer clear(data)
	_, err = p.do("verify PIN", "PIN", command{ins: 0x20, p2: refPIN, data: data, secret: true})
	return err
}

// PINStatus asks the card, without a PIN, how many PIN tries are left (an
// empty VERIFY). verified is true when the PIN is already verified in this
// card session; then retries is -1 (the card does not say).
func (p *PIV) PINStatus() (retries int, verified bool, err error) {
	err = p.tx(func() error {
		retries, verified, err = p.pinStatus()
		return err
	})
	return retries, verified, err
}

func (p *PIV) pinStatus() (int, bool, error) {
	_, sw, err := p.t.transmit(command{ins: 0x20, p2: refPIN})
	if err != nil {
		return 0, false, fmt.Errorf("card: PIN status: %w", err)
	}
	switch {
	case sw == 0x9000:
		return -1, true, nil
	case sw&0xFFF0 == 0x63C0:
		return int(sw & 0x0F), false, nil
	case sw == 0x6983:
		return 0, false, nil
	}
	return 0, false, statusError("PIN status", "PIN", sw)
}

// PINRetries returns the PIN tries left. When the PIN is verified already,
// the count comes from Yubico metadata if the card has it, else it is -1.
func (p *PIV) PINRetries() (int, error) {
	var n int
	err := p.tx(func() error {
		r, verified, err := p.pinStatus()
		if err != nil {
			return err
		}
		n = r
		if verified && p.yubico {
			if md, err := p.metadata(SlotPIN); err == nil && md.RetriesTotal > 0 {
				n = md.RetriesRemaining
			}
		}
		return nil
	})
	return n, err
}

// PUKRetries returns the PUK tries left. PIV has no status query for the
// PUK: this needs Yubico metadata (firmware 5.3 and later).
func (p *PIV) PUKRetries() (int, error) {
	md, err := p.Metadata(SlotPUK)
	if err != nil {
		return 0, err
	}
	return md.RetriesRemaining, nil
}

// ChangePIN replaces the PIN (CHANGE REFERENCE DATA). A wrong old PIN gives
// *AuthError.
func (p *PIV) ChangePIN(oldPIN, newPIN string) error {
	return p.changeRef(refPIN, "PIN", oldPIN, newPIN)
}

// ChangePUK replaces the PUK. A wrong old PUK gives *AuthError{What: "PUK"}.
func (p *PIV) ChangePUK(oldPUK, newPUK string) error {
	return p.changeRef(refPUK, "PUK", oldPUK, newPUK)
}

func (p *PIV) changeRef(ref byte, what, old, new string) error {
	data, err := padPIN(make([]byte, 0, 16), old, "current "+what, 1)
	if err != nil {
		return err
	}
	defer clear(data)
	if data, err = padPIN(data, new, "new "+what, 6); err != nil {
		return err
	}
	return p.tx(func() error {
		_, err := p.do("change "+what, what, command{ins: 0x24, p2: ref, data: data, secret: true})
		return err
	})
}

// Unblock sets a new PIN with the PUK (RESET RETRY COUNTER), which also
// unblocks the PIN. A wrong PUK gives *AuthError{What: "PUK"}; a blocked PUK
// an error matching ErrBlocked.
func (p *PIV) Unblock(puk, newPIN string) error {
	data, err := padPIN(make([]byte, 0, 16), puk, "PUK", 1)
	if err != nil {
		return err
	}
	defer clear(data)
	if data, err = padPIN(data, newPIN, "new PIN", 6); err != nil {
		return err
	}
	return p.tx(func() error {
		_, err := p.do("unblock PIN", "PUK", command{ins: 0x2C, p2: refPIN, data: data, secret: true})
		return err
	})
}

// KeyAuth says how to satisfy a private key's PIN requirement.
type KeyAuth struct {
	// PIN, when not empty, is verified when the key needs it.
	PIN string
	// PINPrompt is asked for the PIN when PIN is empty and one is needed.
	PINPrompt func() (string, error)
	// PINPolicy of the key, when known. With PINPolicyDefault the PIN is
	// verified before every use of slot 9C (PIV: PIN always) and, for other
	// slots, after the card refuses the operation for lack of it.
	PINPolicy PINPolicy
}

func (a *KeyAuth) hasPIN() bool { return a.PIN != "" || a.PINPrompt != nil }

func (a *KeyAuth) pin() (string, error) {
	if a.PIN != "" {
		return a.PIN, nil
	}
	if a.PINPrompt == nil {
		return "", fmt.Errorf("card: the key needs the PIN and none was given: %w", ErrSecurityStatus)
	}
	pin, err := a.PINPrompt()
	if err != nil {
		return "", fmt.Errorf("card: PIN prompt: %w", err)
	}
	return pin, nil
}

// withKeyAuth runs op in the current transaction with the PIN verified as
// the key needs it.
func (p *PIV) withKeyAuth(slot Slot, auth KeyAuth, op func() ([]byte, error)) ([]byte, error) {
	always := auth.PINPolicy == PINPolicyAlways ||
		(auth.PINPolicy == PINPolicyDefault && slot == SlotSignature)
	if always && auth.hasPIN() {
		pin, err := auth.pin()
		if err != nil {
			return nil, err
		}
		if err := p.verifyPIN(pin); err != nil {
			return nil, err
		}
		return op()
	}
	out, err := op()
	if err == nil || auth.PINPolicy == PINPolicyNever || !auth.hasPIN() || !errors.Is(err, ErrSecurityStatus) {
		return out, err
	}
	pin, perr := auth.pin()
	if perr != nil {
		return nil, perr
	}
	if err := p.verifyPIN(pin); err != nil {
		return nil, err
	}
	return op()
}

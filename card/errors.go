package card

import (
	"errors"
	"fmt"
)

// Sentinel errors. Use errors.Is: the errors the package returns wrap these
// (a *StatusError matches the sentinel its status word stands for).
var (
	// ErrNotFound: the data object or key is not on the card (SW 6A82, 6A88).
	ErrNotFound = errors.New("card: not found on the card")
	// ErrBlocked: the PIN or PUK is blocked (SW 6983, or 63C0).
	ErrBlocked = errors.New("card: PIN or PUK is blocked")
	// ErrSecurityStatus: the command needs a PIN or management key
	// authentication first (SW 6982).
	ErrSecurityStatus = errors.New("card: security status not satisfied")
	// ErrConditions: conditions of use not satisfied (SW 6985), e.g. a Yubico
	// reset while the PIN or PUK is not blocked.
	ErrConditions = errors.New("card: conditions of use not satisfied")
	// ErrCardRemoved: the card was removed or reset while in use. An
	// operation that returns it did not complete (as far as the host knows).
	ErrCardRemoved = errors.New("card: card removed or reset")
	// ErrNoService: the PC/SC service is not running.
	ErrNoService = errors.New("card: PC/SC service (pcscd) is not running")
	// ErrNoReader: no such reader, or no readers at all.
	ErrNoReader = errors.New("card: no such PC/SC reader")
	// ErrNoCard: there is no (responsive) card in the reader.
	ErrNoCard = errors.New("card: no card in the reader")
	// ErrCardInUse: another application holds the card exclusively.
	ErrCardInUse = errors.New("card: card is in use by another application")
	// ErrNotSupported: the card does not support the operation (SW 6D00,
	// 6E00, or a Yubico extension on a card without them).
	ErrNotSupported = errors.New("card: operation not supported by this card")
	// ErrWrongManagementKey: management key mutual authentication failed.
	ErrWrongManagementKey = errors.New("card: management key authentication failed")
	// ErrCardNotAuthentic: the card's response to the host challenge in
	// management key mutual authentication was wrong.
	ErrCardNotAuthentic = errors.New("card: card failed to prove knowledge of the management key")
	// ErrMalformedResponse: the card's answer does not parse.
	ErrMalformedResponse = errors.New("card: malformed response from card")
)

// AuthError is a wrong PIN or PUK (SW 63Cx). Retries is what is left; at 0
// the reference is blocked and errors.Is(err, ErrBlocked) holds.
type AuthError struct {
	Retries int
	// What is "PIN" or "PUK".
	What string
}

func (e *AuthError) Error() string {
	what := e.What
	if what == "" {
		what = "PIN"
	}
	switch e.Retries {
	case 0:
		return fmt.Sprintf("card: wrong %s, now blocked", what)
	case 1:
		return fmt.Sprintf("card: wrong %s, 1 try left", what)
	}
	return fmt.Sprintf("card: wrong %s, %d tries left", what, e.Retries)
}

// Is makes an AuthError with no retries left match ErrBlocked.
func (e *AuthError) Is(target error) bool {
	return target == ErrBlocked && e.Retries == 0
}

// StatusError is a card answer with a status word other than 9000 that has no
// more specific error. errors.Is matches it against the sentinel errors above.
type StatusError struct {
	SW uint16
	Op string
}

func (e *StatusError) Error() string {
	op := e.Op
	if op == "" {
		op = "command"
	}
	if t := swText(e.SW); t != "" {
		return fmt.Sprintf("card: %s: %s (SW %04X)", op, t, e.SW)
	}
	return fmt.Sprintf("card: %s failed (SW %04X)", op, e.SW)
}

// Is maps status words to the sentinel errors.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrSecurityStatus:
		return e.SW == 0x6982
	case ErrBlocked:
		return e.SW == 0x6983
	case ErrConditions:
		return e.SW == 0x6985
	case ErrNotFound:
		return e.SW == 0x6A82 || e.SW == 0x6A88
	case ErrNotSupported:
		return e.SW == 0x6D00 || e.SW == 0x6E00 || e.SW == 0x6A81
	}
	return false
}

func swText(sw uint16) string {
	switch sw {
	case 0x6281:
		return "part of returned data may be corrupted"
	case 0x6581:
		return "memory failure"
	case 0x6700:
		return "wrong length"
	case 0x6882:
		return "secure messaging not supported"
	case 0x6883:
		return "last command of the chain expected"
	case 0x6884:
		return "command chaining not supported"
	case 0x6982:
		return "security status not satisfied"
	case 0x6983:
		return "authentication method blocked"
	case 0x6984:
		return "reference data not usable"
	case 0x6985:
		return "conditions of use not satisfied"
	case 0x6A80:
		return "incorrect parameters in the data field"
	case 0x6A81:
		return "function not supported"
	case 0x6A82:
		return "data object or application not found"
	case 0x6A84:
		return "not enough memory"
	case 0x6A86:
		return "incorrect parameters P1-P2"
	case 0x6A88:
		return "referenced data or key not found"
	case 0x6D00:
		return "instruction not supported"
	case 0x6E00:
		return "class not supported"
	case 0x6F00:
		return "no precise diagnosis"
	}
	return ""
}

// statusError builds the error for a status word: 63Cx → *AuthError,
// otherwise *StatusError.
func statusError(op, what string, sw uint16) error {
	if sw&0xFFF0 == 0x63C0 {
		return &AuthError{Retries: int(sw & 0x0F), What: what}
	}
	return &StatusError{SW: sw, Op: op}
}

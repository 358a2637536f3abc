package card

import (
	"errors"
	"fmt"
)

// ErrWeakPIN is what CheckNewPIN's refusals match.
var ErrWeakPIN = errors.New("card: PIN refused by policy")

// CheckNewPIN applies the station's policy to a new PIN: 6 to 8 characters
// (PIV's limits), printable ASCII, and not trivial: not one character
// repeated (111111), not an ascending or descending run (123456, 876543,
// abcdef). The PIN itself never appears in the error.
func CheckNewPIN(pin string) error {
	if len(pin) < 6 || len(pin) > 8 {
		return fmt.Errorf("%w: a PIN has 6 to 8 characters, this one %d", ErrWeakPIN, len(pin))
	}
	for i := 0; i < len(pin); i++ {
		if pin[i] <= 0x20 || pin[i] > 0x7E {
			return fmt.Errorf("%w: a PIN has printable ASCII characters only (digits are safest: some card readers have a keypad)", ErrWeakPIN)
		}
	}
	same, up, down := true, true, true
	for i := 1; i < len(pin); i++ {
		d := int(pin[i]) - int(pin[i-1])
		same = same && d == 0
		up = up && d == 1
		down = down && d == -1
	}
	switch {
	case same:
		return fmt.Errorf("%w: it repeats one character", ErrWeakPIN)
	case up:
		return fmt.Errorf("%w: it is an ascending sequence", ErrWeakPIN)
	case down:
		return fmt.Errorf("%w: it is a descending sequence", ErrWeakPIN)
	}
	return nil
}

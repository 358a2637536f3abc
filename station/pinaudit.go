package station

import (
	"errors"
	"fmt"

	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/station/audit"
	"github.com/scstation/scstation/station/inventory"
)

// IsPINFailure reports whether err is a card refusing a PIN or PUK: a
// wrong one (*card.AuthError), or one already blocked.
func IsPINFailure(err error) bool {
	var ae *card.AuthError
	return errors.As(err, &ae) || errors.Is(err, card.ErrBlocked)
}

func isAuthError(err error) bool {
	var ae *card.AuthError
	return errors.As(err, &ae)
}

// PINFailed audits a PIN or PUK the card p refused at this station, in
// reader, while doing what during says (pin change, logon as alice): a
// pin.failed record (refused) with the actor, the card's inventory ID and
// owner when it has a CHUID, the reader and the tries left. The PIN itself
// is never recorded, and no card is named by anything secret. An err that
// is not a PIN failure (IsPINFailure) records nothing and returns nil.
func (s *Station) PINFailed(p *card.PIV, reader, during string, err error) error {
	if !IsPINFailure(err) {
		return nil
	}
	id, owner := cardIdentity(p), ""
	if id != "" {
		if inv, ierr := s.Inventory(); ierr == nil {
			if c, gerr := inv.Get(id); gerr == nil {
				owner = c.Owner
			}
		}
	}
	return s.recordPINFailure(s.actor(), owner, id, reader, during, err)
}

// cardIdentity is the inventory ID of the card: from its CHUID GUID, else
// its serial number; "" when it has neither.
func cardIdentity(p *card.PIV) string {
	if p == nil {
		return ""
	}
	serial, _ := p.Serial()
	if chuid, err := p.CHUID(); err == nil {
		return inventory.CardID(chuid.GUID[:], serial)
	}
	if serial != 0 {
		return inventory.CardID(nil, serial)
	}
	return ""
}

// recordPINFailure writes the pin.failed record of err (IsPINFailure).
func (s *Station) recordPINFailure(actor, user, cardID, reader, during string, err error) error {
	return s.Record(audit.Record{Actor: actor, Action: "pin.failed", User: user, Card: cardID, Outcome: audit.Refused,
		Detail: pinFailureDetail(reader, during, err)})
}

// pinFailureDetail says what was refused, where, during what, and how many
// tries are left, in plain words.
func pinFailureDetail(reader, during string, err error) string {
	var ae *card.AuthError
	what, tries := "PIN", "blocked"
	if errors.As(err, &ae) {
		if ae.What != "" {
			what = ae.What
		}
		switch ae.Retries {
		case 0:
			tries = "now blocked"
		case 1:
			tries = "1 try left"
		default:
			tries = fmt.Sprintf("%d tries left", ae.Retries)
		}
	}
	d := "wrong " + what
	if ae == nil {
		// The card refused without trying: the PIN (or PUK) was blocked.
		d, tries = "refused, blocked", ""
	}
	if during != "" {
		d += " (" + during + ")"
	}
	if reader != "" {
		d += " in reader " + reader
	}
	if tries != "" {
		d += ", " + tries
	}
	return d
}

package virtual_test

import (
	"github.com/scstation/scstation/card"
	"github.com/scstation/scstation/card/virtual"
)

// The in-process transport is a card.Card, like a card in a PC/SC reader.
var _ card.Card = (*virtual.Card)(nil)

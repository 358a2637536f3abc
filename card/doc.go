// Package card talks to PIV smart cards (NIST SP 800-73-4) through PC/SC
// readers, and watches readers for cards coming and going. A card key is a
// crypto.Signer. Package card/virtual emulates a PIV card.
package card

// Package card talks to PIV smart cards (NIST SP 800-73-4) through PC/SC
// readers, and watches readers for cards coming and going. A card key is a
// crypto.Signer. Package card/virtual emulates a PIV card.
//
// A Card carries APDUs: EstablishContext and Context.Connect give one on a
// PC/SC reader (github.com/ebfe/scard), and card/virtual.Card is one in
// process. OpenPIV selects the PIV application on a Card; PIV's methods
// each run in one card transaction, doing command chaining, response
// chaining (61xx, 6Cxx) and extended-length APDUs (when the ATR announces
// them) underneath. Yubico extensions (serial, metadata, set management
// key, reset, attestation, PIN and touch policies) are used only when the
// card answers GET VERSION.
//
//	ctx, err := card.EstablishContext()     // ErrNoService: pcscd not running
//	c, err := ctx.Connect(reader)            // ErrNoCard, ErrNoReader
//	p, err := card.OpenPIV(c)
//	err = p.AuthenticateManagementKey(card.MgmtTDES, card.DefaultManagementKey)
//	pub, err := p.GenerateKey(card.SlotAuthentication, card.AlgECCP256, card.KeyPolicy{})
//	key, err := p.PrivateKey(card.SlotAuthentication, pub, card.KeyAuth{PIN: pin})
//	sig, err := key.(crypto.Signer).Sign(rand.Reader, digest, crypto.SHA256)
//
// Errors: *AuthError (wrong PIN or PUK, with the tries left), and errors
// matching ErrBlocked, ErrNotFound, ErrSecurityStatus, ErrCardRemoved,
// ErrNotSupported, ErrWrongManagementKey with errors.Is; other status words
// come as *StatusError. An operation during which the card is pulled
// returns an error matching ErrCardRemoved, never success, and the PIV
// refuses everything after it. PINs, PUKs and keys never appear in errors.
//
// Monitor reports readers and cards coming and going, and pcscd going away
// and coming back; it owns the process's only GetStatusChange loop.
package card

package card

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
)

func mgmtCipher(alg ManagementKeyAlgorithm, key []byte) (cipher.Block, error) {
	if alg.keyLen() == 0 {
		return nil, fmt.Errorf("card: unknown management key algorithm %02X", byte(alg))
	}
	if len(key) != alg.keyLen() {
		return nil, fmt.Errorf("card: a %s management key is %d bytes, not %d", alg, alg.keyLen(), len(key))
	}
	if alg == MgmtTDES {
		return des.NewTripleDESCipher(key)
	}
	return aes.NewCipher(key)
}

// AuthenticateManagementKey authenticates to the card with the card
// management key (reference 9B) by mutual authentication (SP 800-73-4
// §3.2.4 and Appendix A.1): the card sends an encrypted witness, the host
// returns it decrypted along with its own challenge, and the card proves it
// holds the key by encrypting the challenge. A wrong key gives an error
// matching ErrWrongManagementKey; a card that answers the challenge wrongly
// gives ErrCardNotAuthentic.
//
// The authentication lasts for the card session: later operations that
// need it (GenerateKey, SetCertificate, SetCHUID, ...) can follow in their
// own transactions.
func (p *PIV) AuthenticateManagementKey(alg ManagementKeyAlgorithm, key []byte) error {
	block, err := mgmtCipher(alg, key)
	if err != nil {
		return err
	}
	return p.tx(func() error { return p.authMgmt(alg, block) })
}

func (p *PIV) authMgmt(alg ManagementKeyAlgorithm, block cipher.Block) error {
	const op = "management key authentication"
	bs := alg.blockSize()
	// Step 1: ask for a witness.
	r, err := p.do(op, "", command{ins: 0x87, p1: byte(alg), p2: byte(SlotManagementKey),
		data: []byte{0x7C, 0x02, 0x80, 0x00}, ne: maxShortNe})
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && (se.SW == 0x6A80 || se.SW == 0x6A86) {
			return fmt.Errorf("card: the card's management key is not %s: %w", alg, err)
		}
		return err
	}
	witness, err := dynAuthField(r, 0x80, bs)
	if err != nil {
		return fmt.Errorf("card: %s: %w", op, err)
	}
	// Step 2: decrypted witness and our challenge.
	plain := make([]byte, bs)
	block.Decrypt(plain, witness)
	challenge := make([]byte, bs)
	if _, err := rand.Read(challenge); err != nil {
		return err
	}
	inner := appendTLV(nil, 0x80, plain)
	inner = appendTLV(inner, 0x81, challenge)
	data := tlvBytes(0x7C, inner)
	r, sw, err := p.t.transmit(command{ins: 0x87, p1: byte(alg), p2: byte(SlotManagementKey),
		data: data, ne: maxShortNe, secret: true})
	clear(plain)
	clear(inner)
	clear(data)
	if err != nil {
		return fmt.Errorf("card: %s: %w", op, err)
	}
	if sw != 0x9000 {
		se := statusError(op, "", sw)
		if sw == 0x6982 || sw == 0x6A80 || sw&0xFF00 == 0x6300 {
			return fmt.Errorf("%w: %w", ErrWrongManagementKey, se)
		}
		return se
	}
	resp, err := dynAuthField(r, 0x82, bs)
	if err != nil {
		return fmt.Errorf("card: %s: %w", op, err)
	}
	want := make([]byte, bs)
	block.Encrypt(want, challenge)
	if subtle.ConstantTimeCompare(want, resp) != 1 {
		return ErrCardNotAuthentic
	}
	return nil
}

// dynAuthField parses a dynamic authentication template 7C holding one
// field with the tag, of exactly n bytes (n < 0: any length).
func dynAuthField(r []byte, tag uint32, n int) ([]byte, error) {
	inner, err := parseOne(r, 0x7C)
	if err != nil {
		return nil, err
	}
	v, err := parseOne(inner, tag)
	if err != nil {
		return nil, err
	}
	if n >= 0 && len(v) != n {
		return nil, fmt.Errorf("%w: field %X is %d bytes, want %d", ErrMalformedResponse, tag, len(v), n)
	}
	return v, nil
}

// SetManagementKey replaces the card management key (Yubico SET MANAGEMENT
// KEY, INS FF), after AuthenticateManagementKey with the current key in
// this card session. touch requires a touch for each use of the key.
// Cards without Yubico extensions give ErrNotSupported.
func (p *PIV) SetManagementKey(alg ManagementKeyAlgorithm, key []byte, touch bool) error {
	if err := p.requireYubico("setting the management key"); err != nil {
		return err
	}
	if _, err := mgmtCipher(alg, key); err != nil {
		return err
	}
	p2 := byte(0xFF)
	if touch {
		p2 = 0xFE
	}
	data := make([]byte, 0, 3+len(key))
	data = append(data, byte(alg), byte(SlotManagementKey), byte(len(key)))
	data = append(data, key...)
	defer clear(data)
	return p.tx(func() error {
		_, err := p.do("set management key", "", command{ins: 0xFF, p1: 0xFF, p2: p2, data: data, secret: true})
		return err
	})
}

// ManagementKeyAlgorithm reports the algorithm of the card's management key
// from Yubico metadata (firmware 5.3 and later); other cards give
// ErrNotSupported (the PIV default is 3DES).
func (p *PIV) ManagementKeyAlgorithm() (ManagementKeyAlgorithm, error) {
	md, err := p.Metadata(SlotManagementKey)
	if err != nil {
		return 0, err
	}
	return ManagementKeyAlgorithm(md.Algorithm), nil
}

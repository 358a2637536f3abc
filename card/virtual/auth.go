package virtual

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"math/big"
)

// publicKeyTLVs encodes a public key as GENERATE returns it inside 7F49:
// 81 modulus 82 exponent, or 86 uncompressed point.
func publicKeyTLVs(pub crypto.PublicKey) []byte {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		b := appendTLV(nil, 0x81, k.N.Bytes())
		return appendTLV(b, 0x82, big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		e, err := k.ECDH()
		if err != nil {
			return nil
		}
		return appendTLV(nil, 0x86, e.Bytes())
	}
	return nil
}

// mgmtCipher is the block cipher of the management key.
func mgmtCipher(alg byte, key []byte) (cipher.Block, error) {
	switch alg {
	case Alg3DES:
		return des.NewTripleDESCipher(key)
	case AlgAES128, AlgAES192, AlgAES256:
		return aes.NewCipher(key)
	}
	return nil, errors.New("virtual: unknown management key algorithm")
}

// cmdGeneralAuthenticate is GENERAL AUTHENTICATE (87): management-key
// authentication for reference 9B, otherwise a private-key operation.
func (c *Card) cmdGeneralAuthenticate(cmd command) ([]byte, uint16) {
	outer, err := parseTLVs(cmd.data)
	if err != nil || len(outer) != 1 || outer[0].tag != 0x7C {
		c.authKind, c.authNonce = 0, nil
		return nil, swWrongData
	}
	ts, err := parseTLVs(outer[0].value)
	if err != nil {
		c.authKind, c.authNonce = 0, nil
		return nil, swWrongData
	}
	if Slot(cmd.p2) == SlotManagement {
		return c.mgmtAuth(cmd.p1, ts)
	}
	c.authKind, c.authNonce = 0, nil
	return c.keyOperation(cmd.p1, Slot(cmd.p2), ts)
}

// mgmtAuth runs the two management-key protocols of SP 800-73-4 in the
// forms OpenSC, yubico-piv-tool and piv-go send:
//
//	mutual:   7C 02 80 00 → 7C 80 E(W);  7C 80 W 81 C [82 00] → 7C 82 E(C)
//	external: 7C 02 81 00 → 7C 81 C;     7C 82 E(C) → 9000
func (c *Card) mgmtAuth(alg byte, ts []tlv) ([]byte, uint16) {
	kind, nonce := c.authKind, c.authNonce
	c.authKind, c.authNonce = 0, nil
	st := c.st
	if alg != st.ManagementKeyAlg {
		return nil, swWrongP1P2
	}
	block, err := mgmtCipher(st.ManagementKeyAlg, st.ManagementKey)
	if err != nil {
		return nil, swNoPreciseDiagnosis
	}
	bs := block.BlockSize()
	witness, hasWitness := findTLV(ts, 0x80)
	challenge, hasChallenge := findTLV(ts, 0x81)
	response, hasResponse := findTLV(ts, 0x82)

	switch {
	case hasWitness && len(witness) == 0 && !hasChallenge && !hasResponse:
		// Step 1 of mutual authentication: send an encrypted witness.
		w := make([]byte, bs)
		rand.Read(w)
		enc := make([]byte, bs)
		block.Encrypt(enc, w)
		c.authKind, c.authNonce = 0x80, w
		return mkTLV(0x7C, mkTLV(0x80, enc)), swOK

	case hasChallenge && len(challenge) == 0 && !hasWitness && !hasResponse:
		// Step 1 of external authentication: send a plain challenge.
		ch := make([]byte, bs)
		rand.Read(ch)
		c.authKind, c.authNonce = 0x81, ch
		return mkTLV(0x7C, mkTLV(0x81, ch)), swOK

	case hasWitness && len(witness) > 0 && hasChallenge && (!hasResponse || len(response) == 0):
		// Step 2 of mutual authentication.
		c.mgmtAuthed = false
		if kind != 0x80 {
			return nil, swConditions
		}
		if len(witness) != bs || len(challenge) != bs {
			return nil, swWrongData
		}
		if subtle.ConstantTimeCompare(witness, nonce) != 1 {
			return nil, swSecurityStatus
		}
		c.mgmtAuthed = true
		enc := make([]byte, bs)
		block.Encrypt(enc, challenge)
		return mkTLV(0x7C, mkTLV(0x82, enc)), swOK

	case hasResponse && len(response) > 0 && !hasWitness && !hasChallenge:
		// Step 2 of external authentication.
		c.mgmtAuthed = false
		if kind != 0x81 {
			return nil, swConditions
		}
		if len(response) != bs {
			return nil, swWrongData
		}
		want := make([]byte, bs)
		block.Encrypt(want, nonce)
		if subtle.ConstantTimeCompare(response, want) != 1 {
			return nil, swSecurityStatus
		}
		c.mgmtAuthed = true
		return nil, swOK
	}
	return nil, swWrongData
}

// keyOperation signs (81: a hash for EC, a padded block for raw RSA, which
// is also RSA decryption) or agrees a key (85: a peer point, EC only) with
// the key in slot, after checking its PIN policy.
func (c *Card) keyOperation(alg byte, slot Slot, ts []tlv) ([]byte, uint16) {
	if !isKeySlot(slot) || slot == SlotAttestation {
		return nil, swWrongP1P2
	}
	k, priv, err := c.privateKey(slot)
	if err != nil {
		return nil, swNotFound
	}
	if alg != k.Algorithm {
		return nil, swWrongP1P2
	}
	if resp, ok := findTLV(ts, 0x82); !ok || len(resp) != 0 {
		return nil, swWrongData
	}
	msg, isSign := findTLV(ts, 0x81)
	point, isECDH := findTLV(ts, 0x85)
	if isSign == isECDH || (isSign && len(msg) == 0) || (isECDH && len(point) == 0) {
		return nil, swWrongData
	}
	switch k.PINPolicy {
	case PINPolicyOnce:
		if !c.pinVerified {
			return nil, swSecurityStatus
		}
	case PINPolicyAlways:
		if !c.pinVerified || !c.pinFresh {
			return nil, swSecurityStatus
		}
	}
	var out []byte
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		if !isSign {
			return nil, swWrongData
		}
		out, err = rsaRaw(p, msg)
	case *ecdsa.PrivateKey:
		if isSign {
			if len(msg) > 2*((p.Curve.Params().BitSize+7)/8) {
				return nil, swWrongData
			}
			out, err = ecdsa.SignASN1(rand.Reader, p, msg)
			if err != nil {
				return nil, swNoPreciseDiagnosis
			}
		} else {
			out, err = ecdhShared(p, point)
		}
	default:
		return nil, swNoPreciseDiagnosis
	}
	if err != nil {
		return nil, swWrongData
	}
	if k.PINPolicy == PINPolicyAlways {
		c.pinFresh = false
	}
	return mkTLV(0x7C, mkTLV(0x82, out)), swOK
}

// rsaRaw is the RSA private-key operation on a block the host has padded:
// m = c^d mod n, by the CRT, checked with the public exponent.
func rsaRaw(k *rsa.PrivateKey, in []byte) ([]byte, error) {
	size := (k.N.BitLen() + 7) / 8
	if len(in) != size || len(k.Primes) != 2 {
		return nil, errors.New("wrong length")
	}
	x := new(big.Int).SetBytes(in)
	if x.Cmp(k.N) >= 0 {
		return nil, errors.New("input not below the modulus")
	}
	p, q := k.Primes[0], k.Primes[1]
	one := big.NewInt(1)
	dp := new(big.Int).Mod(k.D, new(big.Int).Sub(p, one))
	dq := new(big.Int).Mod(k.D, new(big.Int).Sub(q, one))
	qinv := new(big.Int).ModInverse(q, p)
	if qinv == nil {
		return nil, errors.New("bad key")
	}
	m1 := new(big.Int).Exp(x, dp, p)
	m2 := new(big.Int).Exp(x, dq, q)
	h := m1.Sub(m1, m2)
	h.Mul(h, qinv)
	h.Mod(h, p)
	m := h.Mul(h, q)
	m.Add(m, m2)
	if new(big.Int).Exp(m, big.NewInt(int64(k.E)), k.N).Cmp(x) != 0 {
		return nil, errors.New("RSA computation fault")
	}
	return m.FillBytes(make([]byte, size)), nil
}

// ecdhShared returns the X coordinate of the shared point.
func ecdhShared(k *ecdsa.PrivateKey, point []byte) ([]byte, error) {
	priv, err := k.ECDH()
	if err != nil {
		return nil, err
	}
	pub, err := priv.Curve().NewPublicKey(point)
	if err != nil {
		return nil, err
	}
	return priv.ECDH(pub)
}

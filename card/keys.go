package card

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
)

func curveFor(alg Algorithm) elliptic.Curve {
	switch alg {
	case AlgECCP256:
		return elliptic.P256()
	case AlgECCP384:
		return elliptic.P384()
	}
	return nil
}

// GenerateKey generates a key pair on the card in slot (GENERATE
// ASYMMETRIC KEY PAIR, SP 800-73-4 §3.3.2) and returns the public key. It
// needs management key authentication in this card session. A non-default
// policy is a Yubico extension.
func (p *PIV) GenerateKey(slot Slot, alg Algorithm, policy KeyPolicy) (crypto.PublicKey, error) {
	if !slot.isKey() {
		return nil, fmt.Errorf("card: %s is not a key slot", slot)
	}
	if alg.rsaBits() == 0 && curveFor(alg) == nil {
		return nil, fmt.Errorf("%w: generating %s keys", ErrNotSupported, alg)
	}
	inner := []byte{0x80, 0x01, byte(alg)}
	if policy.PIN != PINPolicyDefault || policy.Touch != TouchPolicyDefault {
		if err := p.requireYubico("a PIN or touch policy"); err != nil {
			return nil, err
		}
		if policy.PIN != PINPolicyDefault {
			inner = append(inner, 0xAA, 0x01, byte(policy.PIN))
		}
		if policy.Touch != TouchPolicyDefault {
			inner = append(inner, 0xAB, 0x01, byte(policy.Touch))
		}
	}
	var pub crypto.PublicKey
	err := p.tx(func() error {
		r, err := p.do("generate key in "+slot.String(), "", command{ins: 0x47, p2: byte(slot), data: tlvBytes(0xAC, inner), ne: maxExtNe})
		if err != nil {
			return err
		}
		pub, err = parseGenerateResponse(alg, r)
		if err != nil {
			return fmt.Errorf("card: generate key in %s: %w", slot, err)
		}
		return nil
	})
	return pub, err
}

// parseGenerateResponse parses the answer to GENERATE: exactly one 7F49
// template holding the public key.
func parseGenerateResponse(alg Algorithm, r []byte) (crypto.PublicKey, error) {
	v, err := parseOne(r, 0x7F49)
	if err != nil {
		return nil, err
	}
	return parsePublicKey(alg, v)
}

// parsePublicKey parses the contents of a 7F49 template (SP 800-73-4
// Table 23): 81 modulus, 82 exponent for RSA; 86 point for EC.
func parsePublicKey(alg Algorithm, b []byte) (crypto.PublicKey, error) {
	tlvs, err := parseTLVs(b)
	if err != nil {
		return nil, err
	}
	if bits := alg.rsaBits(); bits != 0 {
		if len(tlvs) != 2 || tlvs[0].tag != 0x81 || tlvs[1].tag != 0x82 {
			return nil, fmt.Errorf("%w: RSA public key needs tags 81 and 82 only", ErrMalformedResponse)
		}
		n := new(big.Int).SetBytes(tlvs[0].value)
		if n.BitLen() != bits {
			return nil, fmt.Errorf("%w: %d-bit modulus for %s", ErrMalformedResponse, n.BitLen(), alg)
		}
		if n.Bit(0) == 0 {
			return nil, fmt.Errorf("%w: even RSA modulus", ErrMalformedResponse)
		}
		eb := tlvs[1].value
		if len(eb) == 0 || len(eb) > 4 {
			return nil, fmt.Errorf("%w: RSA exponent of %d bytes", ErrMalformedResponse, len(eb))
		}
		e := 0
		for _, c := range eb {
			e = e<<8 | int(c)
		}
		if e < 3 || e&1 == 0 || e > 1<<31-1 {
			return nil, fmt.Errorf("%w: RSA exponent %d", ErrMalformedResponse, e)
		}
		return &rsa.PublicKey{N: n, E: e}, nil
	}
	curve := curveFor(alg)
	if curve == nil {
		return nil, fmt.Errorf("%w: public keys of %s", ErrNotSupported, alg)
	}
	if len(tlvs) != 1 || tlvs[0].tag != 0x86 {
		return nil, fmt.Errorf("%w: EC public key needs tag 86 only", ErrMalformedResponse)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, tlvs[0].value)
	if err != nil {
		return nil, fmt.Errorf("%w: EC point: %v", ErrMalformedResponse, err)
	}
	return pub, nil
}

// PrivateKey returns the card key in slot, with pub its public key (from
// GenerateKey, Metadata or the slot's certificate). An RSA key is an
// *RSAPrivateKey (crypto.Signer, crypto.Decrypter); an EC key an
// *ECDSAPrivateKey (crypto.Signer with an ECDH method). Each use runs in one
// transaction and verifies the PIN from auth there when the key needs it.
func (p *PIV) PrivateKey(slot Slot, pub crypto.PublicKey, auth KeyAuth) (crypto.PrivateKey, error) {
	if !slot.isKey() {
		return nil, fmt.Errorf("card: %s is not a key slot", slot)
	}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		var alg Algorithm
		switch pub.N.BitLen() {
		case 1024:
			alg = AlgRSA1024
		case 2048:
			alg = AlgRSA2048
		case 3072:
			alg = AlgRSA3072
		case 4096:
			alg = AlgRSA4096
		default:
			return nil, fmt.Errorf("%w: %d-bit RSA keys", ErrNotSupported, pub.N.BitLen())
		}
		return &RSAPrivateKey{p: p, slot: slot, alg: alg, pub: pub, auth: auth}, nil
	case *ecdsa.PublicKey:
		var alg Algorithm
		switch pub.Curve {
		case elliptic.P256():
			alg = AlgECCP256
		case elliptic.P384():
			alg = AlgECCP384
		default:
			return nil, fmt.Errorf("%w: EC curve %s", ErrNotSupported, pub.Curve.Params().Name)
		}
		return &ECDSAPrivateKey{p: p, slot: slot, alg: alg, pub: pub, auth: auth}, nil
	}
	return nil, fmt.Errorf("%w: public key type %T", ErrNotSupported, pub)
}

// generalAuth runs GENERAL AUTHENTICATE (SP 800-73-4 §3.2.4) with the
// key: 7C { 82 00, tag input } → 7C { 82 output }.
func (p *PIV) generalAuth(op string, slot Slot, alg Algorithm, auth KeyAuth, tag uint32, input []byte) ([]byte, error) {
	inner := appendTLV(make([]byte, 0, len(input)+8), 0x82, nil)
	inner = appendTLV(inner, tag, input)
	data := tlvBytes(0x7C, inner)
	var out []byte
	err := p.tx(func() error {
		var err error
		out, err = p.withKeyAuth(slot, auth, func() ([]byte, error) {
			r, err := p.do(op, "", command{ins: 0x87, p1: byte(alg), p2: byte(slot), data: data, ne: maxExtNe})
			if err != nil {
				return nil, err
			}
			v, err := dynAuthField(r, 0x82, -1)
			if err != nil {
				return nil, fmt.Errorf("card: %s: %w", op, err)
			}
			return v, nil
		})
		return err
	})
	return out, err
}

// ECDSAPrivateKey is an EC key on the card.
type ECDSAPrivateKey struct {
	p    *PIV
	slot Slot
	alg  Algorithm
	pub  *ecdsa.PublicKey
	auth KeyAuth
}

// Public returns the *ecdsa.PublicKey.
func (k *ECDSAPrivateKey) Public() crypto.PublicKey { return k.pub }

// Slot is where the key lives.
func (k *ECDSAPrivateKey) Slot() Slot { return k.slot }

// Sign signs a digest with ECDSA on the card and returns an ASN.1 DER
// ECDSA-Sig-Value, as crypto/ecdsa does. The digest is truncated or
// zero-extended to the curve size as ECDSA specifies.
func (k *ECDSAPrivateKey) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != 0 && len(digest) != opts.HashFunc().Size() {
		return nil, fmt.Errorf("card: digest is %d bytes, %v wants %d", len(digest), opts.HashFunc(), opts.HashFunc().Size())
	}
	size := (k.pub.Curve.Params().BitSize + 7) / 8
	in := make([]byte, size)
	if len(digest) >= size {
		copy(in, digest[:size])
	} else {
		copy(in[size-len(digest):], digest)
	}
	out, err := k.p.generalAuth("ECDSA sign with "+k.slot.String(), k.slot, k.alg, k.auth, 0x81, in)
	if err != nil {
		return nil, err
	}
	sig, err := ecdsaSignature(out, k.pub.Curve)
	if err != nil {
		return nil, fmt.Errorf("card: ECDSA sign with %s: %w", k.slot, err)
	}
	if !ecdsa.VerifyASN1(k.pub, digest, sig) {
		return nil, fmt.Errorf("card: the signature from %s does not verify with the given public key (wrong key for the slot?)", k.slot)
	}
	return sig, nil
}

// ecdsaSignature checks the card's ECDSA-Sig-Value and re-encodes it
// canonically. A card that returns r‖s instead of DER is accepted too.
func ecdsaSignature(b []byte, curve elliptic.Curve) ([]byte, error) {
	n := curve.Params().N
	size := (curve.Params().BitSize + 7) / 8
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(b, &sig); err == nil && len(rest) == 0 {
		// DER
	} else if len(b) == 2*size {
		sig.R = new(big.Int).SetBytes(b[:size])
		sig.S = new(big.Int).SetBytes(b[size:])
	} else {
		return nil, fmt.Errorf("%w: ECDSA signature", ErrMalformedResponse)
	}
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.Cmp(n) >= 0 || sig.S.Cmp(n) >= 0 {
		return nil, fmt.Errorf("%w: ECDSA signature out of range", ErrMalformedResponse)
	}
	return asn1.Marshal(sig)
}

// ECDH computes the shared secret (the x coordinate, as crypto/ecdh
// returns it) of the card key and peer on the card.
func (k *ECDSAPrivateKey) ECDH(peer *ecdh.PublicKey) ([]byte, error) {
	if peer == nil {
		return nil, errors.New("card: ECDH: nil peer key")
	}
	want := ecdh.P256()
	if k.alg == AlgECCP384 {
		want = ecdh.P384()
	}
	if peer.Curve() != want {
		return nil, fmt.Errorf("card: ECDH: peer key is on %v, the card key on %s", peer.Curve(), k.pub.Curve.Params().Name)
	}
	out, err := k.p.generalAuth("ECDH with "+k.slot.String(), k.slot, k.alg, k.auth, 0x85, peer.Bytes())
	if err != nil {
		return nil, err
	}
	if len(out) != (k.pub.Curve.Params().BitSize+7)/8 {
		return nil, fmt.Errorf("card: ECDH with %s: %w: %d-byte secret", k.slot, ErrMalformedResponse, len(out))
	}
	return out, nil
}

// RSAPrivateKey is an RSA key on the card. The card does raw RSA; padding
// and unpadding happen on the host.
type RSAPrivateKey struct {
	p    *PIV
	slot Slot
	alg  Algorithm
	pub  *rsa.PublicKey
	auth KeyAuth
}

// Public returns the *rsa.PublicKey.
func (k *RSAPrivateKey) Public() crypto.PublicKey { return k.pub }

// Slot is where the key lives.
func (k *RSAPrivateKey) Slot() Slot { return k.slot }

// rawRSA runs m^d mod n on the card; in is exactly the modulus size.
func (k *RSAPrivateKey) rawRSA(op string, in []byte) ([]byte, error) {
	size := k.pub.Size()
	out, err := k.p.generalAuth(op+" with "+k.slot.String(), k.slot, k.alg, k.auth, 0x81, in)
	if err != nil {
		return nil, err
	}
	if len(out) > size || len(out) == 0 {
		return nil, fmt.Errorf("card: %s with %s: %w: %d-byte RSA result", op, k.slot, ErrMalformedResponse, len(out))
	}
	if len(out) < size {
		out = append(make([]byte, size-len(out), size), out...)
	}
	return out, nil
}

// Sign signs with PKCS #1 v1.5 padding, or with PSS when opts is an
// *rsa.PSSOptions, as rsa.PrivateKey.Sign does.
func (k *RSAPrivateKey) Sign(random io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		return nil, errors.New("card: RSA sign needs SignerOpts")
	}
	hash := opts.HashFunc()
	if hash != 0 && len(digest) != hash.Size() {
		return nil, fmt.Errorf("card: digest is %d bytes, %v wants %d", len(digest), hash, hash.Size())
	}
	size := k.pub.Size()
	var em []byte
	var err error
	pss, isPSS := opts.(*rsa.PSSOptions)
	if isPSS {
		em, err = emsaPSSEncode(random, digest, k.pub.N.BitLen()-1, hash, pss.SaltLength)
		if err == nil && len(em) < size {
			em = append(make([]byte, size-len(em), size), em...)
		}
	} else {
		em, err = pkcs1v15SignPad(hash, digest, size)
	}
	if err != nil {
		return nil, err
	}
	sig, err := k.rawRSA("RSA sign", em)
	if err != nil {
		return nil, err
	}
	if isPSS {
		vo := *pss
		vo.SaltLength = rsa.PSSSaltLengthAuto
		err = rsa.VerifyPSS(k.pub, hash, digest, sig, &vo)
	} else {
		err = rsa.VerifyPKCS1v15(k.pub, hash, digest, sig)
	}
	if err != nil {
		return nil, fmt.Errorf("card: the signature from %s does not verify with the given public key (wrong key for the slot?)", k.slot)
	}
	return sig, nil
}

// Decrypt decrypts with the card key: PKCS #1 v1.5 (opts nil or
// *rsa.PKCS1v15DecryptOptions, SessionKeyLen honoured as rsa does) or OAEP
// (*rsa.OAEPOptions). Unpadding runs on the host in constant time and a
// bad padding gives rsa.ErrDecryption and nothing more.
func (k *RSAPrivateKey) Decrypt(random io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	size := k.pub.Size()
	if len(msg) > size {
		return nil, rsa.ErrDecryption
	}
	c := make([]byte, size)
	copy(c[size-len(msg):], msg)
	if new(big.Int).SetBytes(c).Cmp(k.pub.N) >= 0 {
		return nil, rsa.ErrDecryption
	}
	switch o := opts.(type) {
	case nil:
		return k.decryptPKCS1v15(c, 0, random)
	case *rsa.PKCS1v15DecryptOptions:
		return k.decryptPKCS1v15(c, o.SessionKeyLen, random)
	case *rsa.OAEPOptions:
		em, err := k.rawRSA("RSA decrypt", c)
		if err != nil {
			return nil, err
		}
		defer clear(em)
		mgf := o.MGFHash
		if mgf == 0 {
			mgf = o.Hash
		}
		return oaepUnpad(em, o.Hash, mgf, o.Label)
	}
	return nil, fmt.Errorf("card: unsupported decrypter options %T", opts)
}

func (k *RSAPrivateKey) decryptPKCS1v15(c []byte, sessionKeyLen int, random io.Reader) ([]byte, error) {
	var key []byte
	if sessionKeyLen > 0 {
		if sessionKeyLen > len(c)-11 {
			return nil, rsa.ErrDecryption
		}
		key = make([]byte, sessionKeyLen)
		if random == nil {
			random = randReader
		}
		if _, err := io.ReadFull(random, key); err != nil {
			return nil, err
		}
	}
	em, err := k.rawRSA("RSA decrypt", c)
	if err != nil {
		return nil, err
	}
	defer clear(em)
	valid, index := pkcs1v15Unpad(em)
	if sessionKeyLen > 0 {
		// As rsa.DecryptPKCS1v15SessionKey: a bad padding or length leaves
		// the random key in place, without telling.
		msg := em[len(em)-sessionKeyLen:]
		valid &= eqInt(len(em)-index, sessionKeyLen)
		subtleCopy(valid, key, msg)
		return key, nil
	}
	if valid == 0 {
		return nil, rsa.ErrDecryption
	}
	return bytes.Clone(em[index:]), nil
}

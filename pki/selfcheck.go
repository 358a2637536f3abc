package pki

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"math/big"

	"filippo.io/bigmod"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ecdsaSelfCheck checks signatures made by an ECDSA private key that it
// holds a copy of, with one fixed-base scalar multiplication where
// verification does two, one of them by the public point without a
// precomputed table (for P-256 in Go, verification costs twice the
// signing; it was 41 % of a durable issuance's CPU).
//
// For a signature (r, s) over the digest e by the key d, the nonce is
// k = s⁻¹·(e + r·d) mod n, and the signature verifies exactly when
// (k·G).x mod n = r: that is the verification equation u₁·G + u₂·Q with
// u₁ = e·s⁻¹, u₂ = r·s⁻¹ and Q = d·G. The copy of d is checked against the
// public key when the check is made; the signer signs with its own copy,
// so a fault in the signature, in the signer's key or in this copy makes
// the check fail, as verification would (or refuse a good signature, on
// the safe side). k and d are handled only in constant time (bigmod,
// crypto/ecdh), since k gives d away.
type ecdsaSelfCheck struct {
	curve ecdh.Curve
	n     *bigmod.Modulus
	d     *bigmod.Nat
	// coord is the byte length of a point coordinate.
	coord int
}

// newECDSASelfCheck makes the check for priv, after checking that its
// scalar gives its public point.
func newECDSASelfCheck(priv *ecdsa.PrivateKey) (*ecdsaSelfCheck, error) {
	var curve ecdh.Curve
	switch priv.Curve {
	case elliptic.P256():
		curve = ecdh.P256()
	case elliptic.P384():
		curve = ecdh.P384()
	case elliptic.P521():
		curve = ecdh.P521()
	default:
		return nil, errors.New("pki: the CA key's curve is not supported")
	}
	dBytes, err := priv.Bytes()
	if err != nil {
		return nil, err
	}
	defer clear(dBytes)
	k, err := curve.NewPrivateKey(dBytes)
	if err != nil {
		return nil, err
	}
	pub, err := priv.PublicKey.Bytes()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(k.PublicKey().Bytes(), pub) {
		return nil, errors.New("pki: the CA's private key does not match its public key")
	}
	n, err := bigmod.NewModulus(priv.Curve.Params().N.Bytes())
	if err != nil {
		return nil, err
	}
	d, err := bigmod.NewNat().SetBytes(dBytes, n)
	if err != nil {
		return nil, err
	}
	return &ecdsaSelfCheck{curve: curve, n: n, d: d, coord: (len(pub) - 1) / 2}, nil
}

// check reports whether sig (ASN.1, as ecdsa.SignASN1 makes it) is a
// signature of digest by the key.
func (c *ecdsaSelfCheck) check(digest, sig []byte) bool {
	rBytes, sBytes, ok := parseECDSASignature(sig)
	if !ok {
		return false
	}
	// 0 < r, s < n; s is public, so its inverse may take variable time.
	r, err := bigmod.NewNat().SetBytes(rBytes, c.n)
	if err != nil || r.IsZero() == 1 {
		return false
	}
	s, err := bigmod.NewNat().SetBytes(sBytes, c.n)
	if err != nil || s.IsZero() == 1 {
		return false
	}
	sInv, ok := bigmod.NewNat().InverseVarTime(s, c.n)
	if !ok {
		return false
	}
	e, err := bigmod.NewNat().SetOverflowingBytes(hashToBytes(digest, c.n), c.n)
	if err != nil {
		return false
	}
	// k = s⁻¹·(e + r·d) mod n, in constant time.
	k := bigmod.NewNat().Mod(c.d, c.n)
	k.Mul(r, c.n).Add(e, c.n).Mul(sInv, c.n)
	defer clear(k.Bits())
	kBytes := k.Bytes(c.n)
	defer clear(kBytes)
	kp, err := c.curve.NewPrivateKey(kBytes) // refuses k = 0
	if err != nil {
		return false
	}
	// (k·G).x mod n = r; x is public (r is it, reduced).
	x, err := bigmod.NewNat().SetOverflowingBytes(kp.PublicKey().Bytes()[1:1+c.coord], c.n)
	if err != nil {
		return false
	}
	return x.Equal(r) == 1
}

// hashToBytes truncates digest to the bit length of n, as ECDSA does.
func hashToBytes(digest []byte, n *bigmod.Modulus) []byte {
	if size := n.Size(); len(digest) > size {
		digest = digest[:size]
	}
	if excess := len(digest)*8 - n.BitLen(); excess > 0 {
		v := new(big.Int).SetBytes(digest)
		v.Rsh(v, uint(excess))
		return v.FillBytes(make([]byte, n.Size()))
	}
	return digest
}

// parseECDSASignature reads the SEQUENCE { r INTEGER, s INTEGER } of an
// ECDSA signature, with nothing after it; r and s come back big-endian
// without sign bytes. Negative values are refused.
func parseECDSASignature(sig []byte) (r, s []byte, ok bool) {
	var inner cryptobyte.String
	input := cryptobyte.String(sig)
	if !input.ReadASN1(&inner, cbasn1.SEQUENCE) || !input.Empty() ||
		!inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) || !inner.Empty() {
		return nil, nil, false
	}
	return r, s, true
}

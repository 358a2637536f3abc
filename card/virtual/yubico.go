package virtual

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
)

// Yubico attestation certificate extensions (as piv-go reads them).
var (
	oidFirmware   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3}
	oidSerial     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7}
	oidPolicy     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}
	oidFormFactor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 9}
)

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// cmdMetadata is Yubico GET METADATA (F7): 01 algorithm, 02 policy, 03
// origin, 04 public key, 05 default value, 06 retries (total, remaining).
func (c *Card) cmdMetadata(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0x00 {
		return nil, swWrongP1P2
	}
	st := c.st
	var b []byte
	switch slot := Slot(cmd.p2); {
	case slot == 0x80:
		b = appendTLV(b, 0x01, []byte{0xFF})
		b = appendTLV(b, 0x05, []byte{boolByte(bytes.Equal(st.PIN, DefaultPIN))})
		b = appendTLV(b, 0x06, []byte{byte(st.PINMaxRetries), byte(st.PINRetries)})
	case slot == 0x81:
		b = appendTLV(b, 0x01, []byte{0xFF})
		b = appendTLV(b, 0x05, []byte{boolByte(bytes.Equal(st.PUK, DefaultPUK))})
		b = appendTLV(b, 0x06, []byte{byte(st.PUKMaxRetries), byte(st.PUKRetries)})
	case slot == SlotManagement:
		def := st.ManagementKeyAlg == Alg3DES && bytes.Equal(st.ManagementKey, DefaultManagementKey)
		b = appendTLV(b, 0x01, []byte{st.ManagementKeyAlg})
		b = appendTLV(b, 0x02, []byte{PINPolicyDefault, st.ManagementKeyTouch})
		b = appendTLV(b, 0x05, []byte{boolByte(def)})
	case isKeySlot(slot):
		k, priv, err := c.privateKey(slot)
		if err != nil {
			return nil, swNotFound
		}
		b = appendTLV(b, 0x01, []byte{k.Algorithm})
		b = appendTLV(b, 0x02, []byte{k.PINPolicy, k.TouchPolicy})
		b = appendTLV(b, 0x03, []byte{k.Origin})
		b = appendTLV(b, 0x04, publicKeyTLVs(priv.Public()))
	default:
		return nil, swWrongP1P2
	}
	return b, swOK
}

// cmdSetManagementKey is Yubico SET MANAGEMENT KEY (FF): data alg 9B len
// key; P2 FF asks for touch, FE not.
func (c *Card) cmdSetManagementKey(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0xFF || (cmd.p2 != 0xFF && cmd.p2 != 0xFE) {
		return nil, swWrongP1P2
	}
	if !c.mgmtAuthed {
		return nil, swSecurityStatus
	}
	d := cmd.data
	if len(d) < 3 || d[1] != byte(SlotManagement) || int(d[2]) != len(d)-3 {
		return nil, swWrongData
	}
	alg, key := d[0], d[3:]
	if n := mgmtKeyLen(alg); n == 0 || len(key) != n {
		return nil, swWrongData
	}
	if _, err := mgmtCipher(alg, key); err != nil {
		return nil, swWrongData
	}
	c.st.ManagementKeyAlg = alg
	c.st.ManagementKey = bytes.Clone(key)
	c.st.ManagementKeyTouch = TouchPolicyNever
	if cmd.p2 == 0xFF {
		c.st.ManagementKeyTouch = TouchPolicyAlways
	}
	c.dirty = true
	return nil, swOK
}

// cmdReset is Yubico RESET (FB): allowed only when both the PIN and the
// PUK are blocked.
func (c *Card) cmdReset(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0 || cmd.p2 != 0 {
		return nil, swWrongP1P2
	}
	if c.st.PINRetries != 0 || c.st.PUKRetries != 0 {
		return nil, swConditions
	}
	if err := c.st.factoryReset(); err != nil {
		return nil, swNoPreciseDiagnosis
	}
	c.dirty = true
	c.pinVerified, c.pinFresh, c.mgmtAuthed = false, false, false
	clear(c.keys)
	return nil, swOK
}

// cmdSetRetries is Yubico SET PIN RETRIES (FA): P1 PIN tries, P2 PUK
// tries; PIN and PUK go back to their defaults. Needs the management key
// and the PIN.
func (c *Card) cmdSetRetries(cmd command) ([]byte, uint16) {
	if cmd.p1 < 1 || cmd.p1 > 15 || cmd.p2 < 1 || cmd.p2 > 15 {
		return nil, swWrongP1P2
	}
	if !c.mgmtAuthed || !c.pinVerified {
		return nil, swSecurityStatus
	}
	st := c.st
	st.PIN, st.PUK = bytes.Clone(DefaultPIN), bytes.Clone(DefaultPUK)
	st.PINMaxRetries, st.PINRetries = int(cmd.p1), int(cmd.p1)
	st.PUKMaxRetries, st.PUKRetries = int(cmd.p2), int(cmd.p2)
	c.dirty = true
	return nil, swOK
}

// cmdImportKey is Yubico IMPORT KEY (FE): P1 algorithm, P2 slot; data 01
// p, 02 q, 03 dp, 04 dq, 05 qinv (RSA, e = 65537) or 06 d (EC), then the
// optional AA/AB policies.
func (c *Card) cmdImportKey(cmd command) ([]byte, uint16) {
	slot := Slot(cmd.p2)
	if !isKeySlot(slot) {
		return nil, swWrongP1P2
	}
	if !c.mgmtAuthed {
		return nil, swSecurityStatus
	}
	ts, err := parseTLVs(cmd.data)
	if err != nil {
		return nil, swWrongData
	}
	pin, touch, ok := policies(ts, slot)
	if !ok {
		return nil, swWrongData
	}
	var priv crypto.Signer
	switch cmd.p1 {
	case AlgRSA1024, AlgRSA2048, AlgRSA3072, AlgRSA4096:
		priv, err = importRSA(ts)
	case AlgECCP256:
		priv, err = importEC(ts, elliptic.P256())
	case AlgECCP384:
		priv, err = importEC(ts, elliptic.P384())
	default:
		return nil, swWrongP1P2
	}
	if err != nil || algOf(priv) != cmd.p1 {
		return nil, swWrongData
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, swWrongData
	}
	c.st.Keys[slot] = &Key{Algorithm: cmd.p1, PKCS8: p8, PINPolicy: pin, TouchPolicy: touch, Origin: OriginImported}
	c.keys[slot] = cachedKey{bytes.Clone(p8), priv}
	c.dirty = true
	return nil, swOK
}

func importRSA(ts []tlv) (crypto.Signer, error) {
	var v [5]*big.Int
	for i := range v {
		b, ok := findTLV(ts, uint32(i+1))
		if !ok || len(b) == 0 || len(b) > 256 {
			return nil, fmt.Errorf("missing RSA component")
		}
		v[i] = new(big.Int).SetBytes(b)
	}
	p, q := v[0], v[1]
	if p.Sign() <= 0 || q.Sign() <= 0 || !p.ProbablyPrime(20) || !q.ProbablyPrime(20) {
		return nil, fmt.Errorf("bad RSA primes")
	}
	one := big.NewInt(1)
	e := big.NewInt(65537)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	d := new(big.Int).ModInverse(e, phi)
	if d == nil {
		return nil, fmt.Errorf("bad RSA key")
	}
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537},
		D:         d,
		Primes:    []*big.Int{p, q},
	}
	if err := k.Validate(); err != nil {
		return nil, err
	}
	k.Precompute()
	if k.Precomputed.Dp.Cmp(v[2]) != 0 || k.Precomputed.Dq.Cmp(v[3]) != 0 || k.Precomputed.Qinv.Cmp(v[4]) != 0 {
		return nil, fmt.Errorf("inconsistent RSA key")
	}
	return k, nil
}

func importEC(ts []tlv, curve elliptic.Curve) (crypto.Signer, error) {
	d, ok := findTLV(ts, 0x06)
	if !ok || len(d) != (curve.Params().BitSize+7)/8 {
		return nil, fmt.Errorf("bad EC key")
	}
	return ecdsa.ParseRawPrivateKey(curve, d)
}

// cmdAttest is Yubico ATTEST (F9): a certificate for the key generated in
// slot P1, issued by the attestation key in slot F9.
func (c *Card) cmdAttest(cmd command) ([]byte, uint16) {
	slot := Slot(cmd.p1)
	if cmd.p2 != 0 || !isKeySlot(slot) || slot == SlotAttestation {
		return nil, swWrongP1P2
	}
	k, priv, err := c.privateKey(slot)
	if err != nil {
		return nil, swNotFound
	}
	if k.Origin != OriginGenerated {
		return nil, swWrongData
	}
	_, attKey, err := c.privateKey(SlotAttestation)
	if err != nil {
		return nil, swNotFound
	}
	issuer, err := c.attestationCert()
	if err != nil {
		return nil, swNotFound
	}
	v := c.st.Version
	serial, _ := asn1.Marshal(int64(c.st.Serial))
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "YubiKey PIV Attestation " + slot.String()},
		NotBefore:    issuer.NotBefore,
		NotAfter:     issuer.NotAfter,
		ExtraExtensions: []pkix.Extension{
			{Id: oidFirmware, Value: []byte{v[0], v[1], v[2]}},
			{Id: oidSerial, Value: serial},
			{Id: oidPolicy, Value: []byte{k.PINPolicy, k.TouchPolicy}},
			{Id: oidFormFactor, Value: []byte{0x01}}, // USB-A keychain
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, priv.Public(), attKey)
	if err != nil {
		return nil, swNoPreciseDiagnosis
	}
	return der, swOK
}

// attestationCert parses the certificate of the F9 key (object 5FFF01).
func (c *Card) attestationCert() (*x509.Certificate, error) {
	ts, err := parseTLVs(c.st.Objects[TagAttestation])
	if err != nil {
		return nil, err
	}
	der, ok := findTLV(ts, 0x70)
	if !ok {
		return nil, fmt.Errorf("no attestation certificate")
	}
	return x509.ParseCertificate(der)
}

package card

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// Data object tags (SP 800-73-4 Table 3).
var (
	objCHUID     = []byte{0x5F, 0xC1, 0x02}
	objCCC       = []byte{0x5F, 0xC1, 0x07}
	objDiscovery = []byte{0x7E}
)

// maxCertificate bounds a decompressed certificate.
const maxCertificate = 64 << 10

// Certificate reads the certificate of a key slot (9A 5FC105, 9C 5FC10A,
// 9D 5FC10B, 9E 5FC101, retired 5FC10D–5FC120, F9 5FFF01). A slot without
// one gives ErrNotFound. Certificates compressed with gzip (CertInfo 01, as
// yubico-piv-tool writes large ones) are accepted.
func (p *PIV) Certificate(slot Slot) (*x509.Certificate, error) {
	obj, ok := slot.object()
	if !ok {
		return nil, fmt.Errorf("card: slot %s has no certificate object", slot)
	}
	var v []byte
	err := p.tx(func() (err error) {
		v, err = p.getData(obj)
		return err
	})
	if err != nil {
		return nil, err
	}
	der, err := parseCertObject(v)
	if err != nil {
		return nil, fmt.Errorf("card: certificate in %s: %w", slot, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("card: certificate in %s: %w", slot, err)
	}
	return cert, nil
}

// parseCertObject takes the contents of a certificate object: 70 cert, 71
// CertInfo, FE error detection code (SP 800-73-4 Table 10).
func parseCertObject(v []byte) ([]byte, error) {
	if len(v) == 0 {
		return nil, ErrNotFound
	}
	tlvs, err := parseTLVs(v)
	if err != nil {
		return nil, err
	}
	der, ok := find(tlvs, 0x70)
	if !ok {
		return nil, fmt.Errorf("%w: no tag 70", ErrMalformedResponse)
	}
	if len(der) == 0 {
		return nil, ErrNotFound
	}
	if info, ok := find(tlvs, 0x71); ok && len(info) == 1 && info[0]&0x01 != 0 {
		zr, err := gzip.NewReader(bytes.NewReader(der))
		if err != nil {
			return nil, fmt.Errorf("%w: compressed certificate: %v", ErrMalformedResponse, err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, maxCertificate+1))
		if err != nil || len(out) > maxCertificate {
			return nil, fmt.Errorf("%w: compressed certificate", ErrMalformedResponse)
		}
		return out, nil
	}
	return der, nil
}

// certObject builds 70 DER 71 00 FE 00.
func certObject(der []byte) []byte {
	v := appendTLV(make([]byte, 0, len(der)+12), 0x70, der)
	v = append(v, 0x71, 0x01, 0x00, 0xFE, 0x00)
	return v
}

// SetCertificate writes the certificate of a key slot (management key
// authentication needed).
func (p *PIV) SetCertificate(slot Slot, cert *x509.Certificate) error {
	obj, ok := slot.object()
	if !ok {
		return fmt.Errorf("card: slot %s has no certificate object", slot)
	}
	if cert == nil || len(cert.Raw) == 0 {
		return fmt.Errorf("card: no certificate to write to %s", slot)
	}
	return p.tx(func() error { return p.putData(obj, certObject(cert.Raw)) })
}

// DeleteCertificate empties the certificate object of a slot.
func (p *PIV) DeleteCertificate(slot Slot) error {
	obj, ok := slot.object()
	if !ok {
		return fmt.Errorf("card: slot %s has no certificate object", slot)
	}
	return p.tx(func() error { return p.putData(obj, nil) })
}

// CHUID is the Card Holder Unique Identifier (SP 800-73-4 Table 9).
type CHUID struct {
	FASCN          []byte   // 30: 25 bytes
	OrgID          []byte   // 32, optional
	DUNS           []byte   // 33, optional
	GUID           [16]byte // 34
	Expiration     string   // 35: YYYYMMDD
	CardholderUUID []byte   // 36, optional
	Signature      []byte   // 3E: issuer asymmetric signature (CMS), empty if unsigned
	// Raw is the object as read.
	Raw []byte
}

// nonFederalFASCN is the FASC-N of non-federal issuers (agency 9999,
// system 9999, credential 999999), as YubiKeys carry it.
var nonFederalFASCN = []byte{
	0xd4, 0xe7, 0x39, 0xda, 0x73, 0x9c, 0xed, 0x39, 0xce, 0x73, 0x9d, 0x83, 0x68,
	0x58, 0x21, 0x08, 0x42, 0x10, 0x84, 0x21, 0xc8, 0x42, 0x10, 0xc3, 0xeb,
}

// NewCHUID returns a CHUID with a random GUID, the non-federal FASC-N and an
// expiration date ten years from now.
func NewCHUID() (*CHUID, error) {
	c := &CHUID{FASCN: bytes.Clone(nonFederalFASCN)}
	if _, err := rand.Read(c.GUID[:]); err != nil {
		return nil, err
	}
	c.GUID[6] = c.GUID[6]&0x0F | 0x40 // RFC 9562 version 4
	c.GUID[8] = c.GUID[8]&0x3F | 0x80
	c.Expiration = time.Now().AddDate(10, 0, 0).UTC().Format("20060102")
	return c, nil
}

// GUIDString formats the GUID as 8-4-4-4-12 hexadecimal digits.
func (c *CHUID) GUIDString() string {
	h := hex.EncodeToString(c.GUID[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func parseCHUID(v []byte) (*CHUID, error) {
	tlvs, err := parseTLVs(v)
	if err != nil {
		return nil, err
	}
	c := &CHUID{Raw: bytes.Clone(v)}
	for _, t := range tlvs {
		switch t.tag {
		case 0x30:
			c.FASCN = bytes.Clone(t.value)
		case 0x32:
			c.OrgID = bytes.Clone(t.value)
		case 0x33:
			c.DUNS = bytes.Clone(t.value)
		case 0x34:
			if len(t.value) != 16 {
				return nil, fmt.Errorf("%w: CHUID GUID of %d bytes", ErrMalformedResponse, len(t.value))
			}
			copy(c.GUID[:], t.value)
		case 0x35:
			c.Expiration = string(t.value)
		case 0x36:
			c.CardholderUUID = bytes.Clone(t.value)
		case 0x3E:
			c.Signature = bytes.Clone(t.value)
		}
	}
	return c, nil
}

// Marshal encodes the CHUID object contents.
func (c *CHUID) Marshal() []byte {
	var b []byte
	fascn := c.FASCN
	if fascn == nil {
		fascn = nonFederalFASCN
	}
	b = appendTLV(b, 0x30, fascn)
	if c.OrgID != nil {
		b = appendTLV(b, 0x32, c.OrgID)
	}
	if c.DUNS != nil {
		b = appendTLV(b, 0x33, c.DUNS)
	}
	b = appendTLV(b, 0x34, c.GUID[:])
	b = appendTLV(b, 0x35, []byte(c.Expiration))
	if c.CardholderUUID != nil {
		b = appendTLV(b, 0x36, c.CardholderUUID)
	}
	b = appendTLV(b, 0x3E, c.Signature)
	b = append(b, 0xFE, 0x00)
	return b
}

// CHUID reads the Card Holder Unique Identifier (ErrNotFound when absent).
func (p *PIV) CHUID() (*CHUID, error) {
	v, err := p.ReadObject(objCHUID)
	if err != nil {
		return nil, err
	}
	if len(v) == 0 {
		return nil, ErrNotFound
	}
	c, err := parseCHUID(v)
	if err != nil {
		return nil, fmt.Errorf("card: CHUID: %w", err)
	}
	return c, nil
}

// SetCHUID writes the CHUID (management key authentication needed).
func (p *PIV) SetCHUID(c *CHUID) error {
	if len(c.Expiration) != 8 {
		return fmt.Errorf("card: CHUID expiration must be YYYYMMDD")
	}
	return p.WriteObject(objCHUID, c.Marshal())
}

// CCC is the Card Capability Container (SP 800-73-4 Table 8).
type CCC struct {
	CardIdentifier   []byte // F0: 21 bytes, GSC-RID ‖ manufacturer ‖ card type ‖ card ID
	ContainerVersion byte   // F1
	GrammarVersion   byte   // F2
	Raw              []byte
}

// NewCCC returns a CCC as yubico-piv-tool writes it, with a random card ID.
func NewCCC() (*CCC, error) {
	id := []byte{0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02}
	id = append(id, make([]byte, 14)...)
	if _, err := rand.Read(id[7:]); err != nil {
		return nil, err
	}
	return &CCC{CardIdentifier: id, ContainerVersion: 0x21, GrammarVersion: 0x21}, nil
}

// Marshal encodes the CCC object contents.
func (c *CCC) Marshal() []byte {
	var b []byte
	b = appendTLV(b, 0xF0, c.CardIdentifier)
	b = appendTLV(b, 0xF1, []byte{c.ContainerVersion})
	b = appendTLV(b, 0xF2, []byte{c.GrammarVersion})
	b = append(b, 0xF3, 0x00, 0xF4, 0x01, 0x00, 0xF5, 0x01, 0x10, 0xF6, 0x00, 0xF7, 0x00,
		0xFA, 0x00, 0xFB, 0x00, 0xFC, 0x00, 0xFD, 0x00, 0xFE, 0x00)
	return b
}

func parseCCC(v []byte) (*CCC, error) {
	tlvs, err := parseTLVs(v)
	if err != nil {
		return nil, err
	}
	c := &CCC{Raw: bytes.Clone(v)}
	if id, ok := find(tlvs, 0xF0); ok {
		c.CardIdentifier = bytes.Clone(id)
	}
	if x, ok := find(tlvs, 0xF1); ok && len(x) == 1 {
		c.ContainerVersion = x[0]
	}
	if x, ok := find(tlvs, 0xF2); ok && len(x) == 1 {
		c.GrammarVersion = x[0]
	}
	return c, nil
}

// CCC reads the Card Capability Container (ErrNotFound when absent).
func (p *PIV) CCC() (*CCC, error) {
	v, err := p.ReadObject(objCCC)
	if err != nil {
		return nil, err
	}
	if len(v) == 0 {
		return nil, ErrNotFound
	}
	c, err := parseCCC(v)
	if err != nil {
		return nil, fmt.Errorf("card: CCC: %w", err)
	}
	return c, nil
}

// SetCCC writes the CCC (management key authentication needed).
func (p *PIV) SetCCC(c *CCC) error {
	return p.WriteObject(objCCC, c.Marshal())
}

// Discovery is the PIV discovery object (SP 800-73-4 §3.3.2, Table 18).
type Discovery struct {
	AID            []byte  // 4F
	PINUsagePolicy [2]byte // 5F2F
}

// PIVPIN: the PIV application PIN satisfies access control rules.
func (d *Discovery) PIVPIN() bool { return d.PINUsagePolicy[0]&0x40 != 0 }

// GlobalPIN: the global PIN satisfies access control rules.
func (d *Discovery) GlobalPIN() bool { return d.PINUsagePolicy[0]&0x20 != 0 }

// OCC: on-card biometric comparison is implemented.
func (d *Discovery) OCC() bool { return d.PINUsagePolicy[0]&0x10 != 0 }

// VCI: the virtual contact interface is implemented.
func (d *Discovery) VCI() bool { return d.PINUsagePolicy[0]&0x08 != 0 }

// GlobalPINPrimary: the global PIN is the primary PIN.
func (d *Discovery) GlobalPINPrimary() bool { return d.PINUsagePolicy[1] == 0x20 }

func parseDiscovery(v []byte) (*Discovery, error) {
	tlvs, err := parseTLVs(v)
	if err != nil {
		return nil, err
	}
	d := &Discovery{}
	aid, ok := find(tlvs, 0x4F)
	if !ok {
		return nil, fmt.Errorf("%w: discovery object without AID", ErrMalformedResponse)
	}
	d.AID = bytes.Clone(aid)
	if pol, ok := find(tlvs, 0x5F2F); ok {
		if len(pol) != 2 {
			return nil, fmt.Errorf("%w: PIN usage policy of %d bytes", ErrMalformedResponse, len(pol))
		}
		copy(d.PINUsagePolicy[:], pol)
	}
	return d, nil
}

// Discovery reads the discovery object (ErrNotFound on cards without one).
func (p *PIV) Discovery() (*Discovery, error) {
	v, err := p.ReadObject(objDiscovery)
	if err != nil {
		return nil, err
	}
	d, err := parseDiscovery(v)
	if err != nil {
		return nil, fmt.Errorf("card: discovery object: %w", err)
	}
	return d, nil
}

package pki

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
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// This file writes the certificates Issue makes without
// x509.CreateCertificate and x509.ParseCertificate. For a P-256 CA,
// CreateCertificate spends about a quarter of its time marshalling the
// template by reflection and half re-verifying the signature it just made,
// and parsing the result back costs a sixth of an issuance; with all three,
// durable issuance could not reach 80 % of the raw signing rate. certWriter
// encodes the TBSCertificate directly, with the parts that never change
// for a CA (issuer, algorithm identifier, authority key identifier, AIA,
// CRL distribution point) encoded once; its caller decides when the
// signature is checked (see signAndRecord); certificateOf builds the
// *x509.Certificate from what Issue already knows. It handles only the
// template fields Issue sets and refuses any other.
// TestCertWriterMatchesCreateCertificate, TestCertWriterRandom and
// FuzzCertWriter check that the TBSCertificate is byte for byte the one
// CreateCertificate writes and that certificateOf returns what
// ParseCertificate does, field for field.

// certWriter holds what every certificate of one CA has in common.
type certWriter struct {
	signer crypto.Signer
	sigAlg x509.SignatureAlgorithm
	hash   crypto.Hash
	// algID is the DER AlgorithmIdentifier of the signature.
	algID  []byte
	issuer []byte // the CA's RawSubject
	// aki is the DER of the authority key identifier extension, nil when
	// the CA certificate has no subject key identifier.
	aki []byte
	// aia and crlDP are the DER of those extensions, nil when not configured.
	aia, crlDP []byte
	// crlURLs and issuerURLs are what Issue puts in the template for them.
	crlURLs, issuerURLs []string
	// issuerName is the issuer as crypto/x509 parses it; nil when
	// parseSimpleName cannot read it.
	issuerName *pkix.Name
	// ecCheck checks the signatures of a software ECDSA key faster than
	// verification; nil for other signers.
	ecCheck *ecdsaSelfCheck
}

// Signature algorithm identifiers as crypto/x509 writes them: NULL
// parameters for RSA, none for ECDSA (RFC 5758).
var (
	algIDSHA256WithRSA   = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00}
	algIDECDSAWithSHA256 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	algIDECDSAWithSHA384 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}
	algIDECDSAWithSHA512 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}
)

var (
	oidExtKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidExtBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidExtSubjectKeyID     = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidExtAuthorityKeyID   = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidExtAIA              = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidExtCRLDP            = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidAIACAIssuers        = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 2}

	// The extended key usages x509.ExtKeyUsage names that templates use.
	oidEKU = map[x509.ExtKeyUsage]asn1.ObjectIdentifier{
		x509.ExtKeyUsageServerAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 1},
		x509.ExtKeyUsageClientAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 2},
		x509.ExtKeyUsageCodeSigning:     {1, 3, 6, 1, 5, 5, 7, 3, 3},
		x509.ExtKeyUsageEmailProtection: {1, 3, 6, 1, 5, 5, 7, 3, 4},
		x509.ExtKeyUsageTimeStamping:    {1, 3, 6, 1, 5, 5, 7, 3, 8},
		x509.ExtKeyUsageOCSPSigning:     {1, 3, 6, 1, 5, 5, 7, 3, 9},
	}
)

// newCertWriter prepares the CA's constant parts. crlURL and issuerURL may
// be empty.
func newCertWriter(signer crypto.Signer, caCert *x509.Certificate, crlURL, issuerURL string) (*certWriter, error) {
	w := &certWriter{signer: signer, issuer: caCert.RawSubject}
	switch pub := signer.Public().(type) {
	case *rsa.PublicKey:
		w.sigAlg, w.hash, w.algID = x509.SHA256WithRSA, crypto.SHA256, algIDSHA256WithRSA
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			w.sigAlg, w.hash, w.algID = x509.ECDSAWithSHA256, crypto.SHA256, algIDECDSAWithSHA256
		case elliptic.P384():
			w.sigAlg, w.hash, w.algID = x509.ECDSAWithSHA384, crypto.SHA384, algIDECDSAWithSHA384
		case elliptic.P521():
			w.sigAlg, w.hash, w.algID = x509.ECDSAWithSHA512, crypto.SHA512, algIDECDSAWithSHA512
		default:
			return nil, errors.New("pki: the CA key's curve is not supported")
		}
		if priv, ok := signer.(*ecdsa.PrivateKey); ok {
			c, err := newECDSASelfCheck(priv)
			if err != nil {
				return nil, err
			}
			w.ecCheck = c
		}
	default:
		return nil, fmt.Errorf("pki: CA keys of type %T are not supported", pub)
	}
	if rdns, ok := parseSimpleName(w.issuer); ok {
		w.issuerName = new(pkix.Name)
		w.issuerName.FillFromRDNSequence(rdns)
	}
	if len(caCert.SubjectKeyId) > 0 {
		w.aki = extensionDER(oidExtAuthorityKeyID, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(caCert.SubjectKeyId) })
			})
		})
	}
	if issuerURL != "" {
		w.issuerURLs = []string{issuerURL}
		w.aia = extensionDER(oidExtAIA, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidAIACAIssuers)
					b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(issuerURL)) })
				})
			})
		})
	}
	if crlURL != "" {
		w.crlURLs = []string{crlURL}
		w.crlDP = extensionDER(oidExtCRLDP, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(crlURL)) })
						})
					})
				})
			})
		})
	}
	for _, ext := range [][]byte{w.aki, w.aia, w.crlDP} {
		if ext != nil && len(ext) == 0 {
			return nil, errors.New("pki: encoding the CA's certificate extensions failed")
		}
	}
	return w, nil
}

// extensionDER encodes one Extension whose extnValue value writes.
// It returns an empty, non-nil slice if the encoding fails.
func extensionDER(id asn1.ObjectIdentifier, critical bool, value func(*cryptobyte.Builder)) []byte {
	var b cryptobyte.Builder
	addExtension(&b, id, critical, value)
	der, err := b.Bytes()
	if err != nil {
		return []byte{}
	}
	return der
}

func addExtension(b *cryptobyte.Builder, id asn1.ObjectIdentifier, critical bool, value func(*cryptobyte.Builder)) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(id)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1(cbasn1.OCTET_STRING, value)
	})
}

// errUnsupportedTemplate means a template uses a field certWriter does not
// write; it is a bug in the caller, never the requester's fault.
var errUnsupportedTemplate = errors.New("pki: internal error: the certificate template uses a field the CA does not write")

// tbsCertificate encodes the TBSCertificate for tmpl and the subject key
// spki (its DER SubjectPublicKeyInfo), as x509.CreateCertificate(rand,
// tmpl, caCert, pub, signer) would. It uses SerialNumber, RawSubject (or a
// Subject of only a CommonName), NotBefore, NotAfter, KeyUsage,
// ExtKeyUsage, UnknownExtKeyUsage, BasicConstraintsValid (not a CA),
// SubjectKeyId and ExtraExtensions; the CA's CRL distribution point, AIA
// and authority key identifier come from the writer.
func (w *certWriter) tbsCertificate(tmpl *x509.Certificate, spki []byte) ([]byte, error) {
	if tmpl.SerialNumber == nil || tmpl.SerialNumber.Sign() <= 0 {
		return nil, errors.New("pki: internal error: certificate serial number must be positive")
	}
	if tmpl.IsCA || tmpl.MaxPathLen != 0 || tmpl.MaxPathLenZero || tmpl.SignatureAlgorithm != 0 ||
		len(tmpl.AuthorityKeyId) > 0 || len(tmpl.OCSPServer) > 0 ||
		len(tmpl.DNSNames) > 0 || len(tmpl.EmailAddresses) > 0 || len(tmpl.IPAddresses) > 0 || len(tmpl.URIs) > 0 ||
		len(tmpl.Policies) > 0 || len(tmpl.PolicyIdentifiers) > 0 ||
		len(tmpl.PermittedDNSDomains) > 0 || len(tmpl.ExcludedDNSDomains) > 0 ||
		len(tmpl.PermittedIPRanges) > 0 || len(tmpl.ExcludedIPRanges) > 0 ||
		len(tmpl.PermittedEmailAddresses) > 0 || len(tmpl.ExcludedEmailAddresses) > 0 ||
		len(tmpl.PermittedURIDomains) > 0 || len(tmpl.ExcludedURIDomains) > 0 ||
		!slices.Equal(tmpl.CRLDistributionPoints, w.crlURLs) || !slices.Equal(tmpl.IssuingCertificateURL, w.issuerURLs) {
		return nil, errUnsupportedTemplate
	}
	// As in crypto/x509, an extension in ExtraExtensions replaces the one
	// the template's fields would make.
	extra := func(id asn1.ObjectIdentifier) bool {
		return slices.ContainsFunc(tmpl.ExtraExtensions, func(e pkix.Extension) bool { return e.Id.Equal(id) })
	}
	subject := tmpl.RawSubject
	if len(subject) == 0 {
		// Host certificates: CN=host, as crypto/x509 marshals a pkix.Name.
		if len(tmpl.Subject.Names) > 0 || len(tmpl.Subject.ExtraNames) > 0 || tmpl.Subject.SerialNumber != "" ||
			len(tmpl.Subject.Country)+len(tmpl.Subject.Organization)+len(tmpl.Subject.OrganizationalUnit)+
				len(tmpl.Subject.Locality)+len(tmpl.Subject.Province)+len(tmpl.Subject.StreetAddress)+len(tmpl.Subject.PostalCode) > 0 {
			return nil, errUnsupportedTemplate
		}
		var err error
		if subject, err = asn1.Marshal(tmpl.Subject.ToRDNSequence()); err != nil {
			return nil, fmt.Errorf("pki: subject: %w", err)
		}
	}
	for _, t := range []time.Time{tmpl.NotBefore, tmpl.NotAfter} {
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			return nil, fmt.Errorf("pki: time %v cannot be written in a certificate", t)
		}
	}
	ekus := make([]asn1.ObjectIdentifier, 0, len(tmpl.ExtKeyUsage)+len(tmpl.UnknownExtKeyUsage))
	for _, u := range tmpl.ExtKeyUsage {
		oid, ok := oidEKU[u]
		if !ok {
			return nil, errUnsupportedTemplate
		}
		ekus = append(ekus, oid)
	}
	ekus = append(ekus, tmpl.UnknownExtKeyUsage...)
	size := len(subject) + len(spki) + len(tmpl.SubjectKeyId)
	for _, e := range tmpl.ExtraExtensions {
		size += len(e.Value)
	}
	if size > 1<<20 { // derBuf writes lengths of up to three octets
		return nil, errors.New("pki: the certificate would be larger than 1 MiB")
	}

	var oidErr error
	oid := func(id asn1.ObjectIdentifier) []byte {
		der, err := derOID(id)
		if err != nil && oidErr == nil {
			oidErr = err
		}
		return der
	}
	b := derBuf(make([]byte, 0, 1024))
	tbs := b.open(0x30)
	b = append(b, 0xa0, 0x03, 0x02, 0x01, 0x02) // [0] version v3
	b = appendTLV(b, 0x02, serialBytes(tmpl.SerialNumber))
	b = append(b, w.algID...)
	b = append(b, w.issuer...)
	validity := b.open(0x30)
	b = appendASN1Time(b, tmpl.NotBefore)
	b = appendASN1Time(b, tmpl.NotAfter)
	b.close(validity)
	b = append(b, subject...)
	b = append(b, spki...)
	// The extensions in crypto/x509's order (buildCertExtensions).
	extsTag := b.open(0xa3)
	exts := b.open(0x30)
	if tmpl.KeyUsage != 0 && !extra(oidExtKeyUsage) {
		e := b.openExtension(derOIDKeyUsage, true)
		b = appendKeyUsage(b, tmpl.KeyUsage)
		b.closeExtension(e)
	}
	if len(ekus) > 0 && !extra(oidExtExtKeyUsage) {
		e := b.openExtension(derOIDExtKeyUsage, false)
		seq := b.open(0x30)
		for _, id := range ekus {
			b = append(b, oid(id)...)
		}
		b.close(seq)
		b.closeExtension(e)
	}
	if tmpl.BasicConstraintsValid && !extra(oidExtBasicConstraints) {
		e := b.openExtension(derOIDBasicConstraints, true)
		b = append(b, 0x30, 0x00)
		b.closeExtension(e)
	}
	if len(tmpl.SubjectKeyId) > 0 && !extra(oidExtSubjectKeyID) {
		e := b.openExtension(derOIDSubjectKeyID, false)
		b = appendTLV(b, 0x04, tmpl.SubjectKeyId)
		b.closeExtension(e)
	}
	// crypto/x509 leaves the authority key identifier out of a
	// certificate whose subject is the issuer's.
	if w.aki != nil && !bytes.Equal(subject, w.issuer) && !extra(oidExtAuthorityKeyID) {
		b = append(b, w.aki...)
	}
	if !extra(oidExtAIA) {
		b = append(b, w.aia...)
	}
	if !extra(oidExtCRLDP) {
		b = append(b, w.crlDP...)
	}
	for _, x := range tmpl.ExtraExtensions {
		e := b.openExtension(oid(x.Id), x.Critical)
		b = append(b, x.Value...)
		b.closeExtension(e)
	}
	b.close(exts)
	b.close(extsTag)
	b.close(tbs)
	if oidErr != nil {
		return nil, fmt.Errorf("pki: encoding the certificate: %w", oidErr)
	}
	return b, nil
}

// derBuf builds DER in one buffer: open appends an identifier octet and
// room for the longest length this package writes, close writes the
// minimal length and moves the contents up. Unlike cryptobyte.Builder it
// allocates nothing per element, which matters at thousands of
// certificates a second.
type derBuf []byte

// open starts an element with identifier octet id and returns where its
// contents begin.
func (b *derBuf) open(id byte) int {
	*b = append(*b, id, 0, 0, 0, 0)
	return len(*b)
}

// close ends the element whose contents began at start.
func (b *derBuf) close(start int) {
	n := len(*b) - start
	var hdr [5]byte
	l := appendLength(hdr[:0], n)
	at := start - 4 // where the length octets go
	copy((*b)[at:], l)
	if len(l) < 4 {
		copy((*b)[at+len(l):], (*b)[start:])
		*b = (*b)[:len(*b)-(4-len(l))]
	}
}

// openExtension starts an Extension with the DER OID id; its extnValue
// contents follow.
func (b *derBuf) openExtension(id []byte, critical bool) [2]int {
	seq := b.open(0x30)
	*b = append(*b, id...)
	if critical {
		*b = append(*b, 0x01, 0x01, 0xff)
	}
	return [2]int{seq, b.open(0x04)}
}

func (b *derBuf) closeExtension(e [2]int) {
	b.close(e[1])
	b.close(e[0])
}

// appendLength appends a DER length (at most four octets follow 0x84,
// which no certificate reaches).
func appendLength(dst []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n <= 0xff:
		return append(dst, 0x81, byte(n))
	case n <= 0xffff:
		return append(dst, 0x82, byte(n>>8), byte(n))
	default:
		return append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
}

// serialBytes is the contents of a positive INTEGER.
func serialBytes(n *big.Int) []byte {
	b := make([]byte, 1+(n.BitLen()+7)/8)
	n.FillBytes(b[1:])
	if b[1]&0x80 == 0 {
		b = b[1:]
	}
	return b
}

// DER of the extension OIDs the writer makes.
var (
	derOIDKeyUsage         = mustOID(oidExtKeyUsage)
	derOIDExtKeyUsage      = mustOID(oidExtExtKeyUsage)
	derOIDBasicConstraints = mustOID(oidExtBasicConstraints)
	derOIDSubjectKeyID     = mustOID(oidExtSubjectKeyID)
)

func mustOID(oid asn1.ObjectIdentifier) []byte {
	der, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	return slices.Clip(der)
}

// knownOIDs are the OIDs of the extensions and EKUs in the built-in
// templates, encoded once.
var knownOIDs = func() (m []struct {
	oid asn1.ObjectIdentifier
	der []byte
}) {
	add := func(oid asn1.ObjectIdentifier) {
		m = append(m, struct {
			oid asn1.ObjectIdentifier
			der []byte
		}{cloneOID(oid), mustOID(oid)})
	}
	add(OIDExtensionSubjectAltName)
	add(OIDSIDExtension)
	for _, name := range slices.Sorted(maps.Keys(ekuNames)) {
		if e := ekuNames[name]; e.unknown != nil {
			add(e.unknown)
		} else {
			add(oidEKU[e.known])
		}
	}
	return m
}()

// derOID returns the DER of oid.
func derOID(oid asn1.ObjectIdentifier) ([]byte, error) {
	for _, k := range knownOIDs {
		if k.oid.Equal(oid) {
			return k.der, nil
		}
	}
	return marshalOID(oid)
}

// appendKeyUsage appends a KeyUsage BIT STRING as encoding/asn1 writes it
// for crypto/x509: bit 0 first, trailing zero bits dropped.
func appendKeyUsage(b []byte, ku x509.KeyUsage) []byte {
	bits := []byte{reverseBits(byte(ku)), reverseBits(byte(ku >> 8))}
	if bits[1] == 0 {
		bits = bits[:1]
	}
	unused := 0
	last := bits[len(bits)-1]
	for unused < 8 && last&(1<<unused) == 0 {
		unused++
	}
	if unused == 8 { // only when ku has no bits set in its last byte
		unused = 0
	}
	return append(append(b, 0x03, byte(1+len(bits)), byte(unused)), bits...)
}

func reverseBits(b byte) byte {
	var r byte
	for i := 0; i < 8; i++ {
		r = r<<1 | b&1
		b >>= 1
	}
	return r
}

// appendASN1Time appends t as encoding/asn1 writes it: UTCTime for 1950
// to 2049, GeneralizedTime otherwise, in UTC, to the second.
func appendASN1Time(b []byte, t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y >= 1950 && y < 2050 {
		b = append(b, 0x17, 13)
		return t.AppendFormat(b, "060102150405Z0700")
	}
	b = append(b, 0x18, 15)
	return t.AppendFormat(b, "20060102150405Z0700")
}

// sign signs tbs with the CA key and returns the Certificate and the
// signature. It does not check the signature.
func (w *certWriter) sign(tbs []byte) (der, sig []byte, err error) {
	sig, err = crypto.SignMessage(w.signer, rand.Reader, tbs, w.hash)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: signing: %w", err)
	}
	d := derBuf(make([]byte, 0, len(tbs)+len(w.algID)+len(sig)+16))
	seq := d.open(0x30)
	d = append(d, tbs...)
	d = append(d, w.algID...)
	bits := d.open(0x03)
	d = append(append(d, 0), sig...)
	d.close(bits)
	d.close(seq)
	der = d
	return der, sig, nil
}

// verify checks a signature the CA key made over tbs, as
// x509.CreateCertificate does to catch a faulty signer. A software ECDSA
// key is checked by ecdsaSelfCheck, which gives the same answer for
// about 40 % of the cost (P-256: 38 µs against 92 µs here).
func (w *certWriter) verify(tbs, sig []byte) error {
	h := w.hash.New()
	h.Write(tbs)
	digest := h.Sum(nil)
	var err error
	switch pub := w.signer.Public().(type) {
	case *rsa.PublicKey:
		err = rsa.VerifyPKCS1v15(pub, w.hash, digest, sig)
	case *ecdsa.PublicKey:
		var ok bool
		if w.ecCheck != nil {
			ok = w.ecCheck.check(digest, sig)
		} else {
			ok = ecdsa.VerifyASN1(pub, digest, sig)
		}
		if !ok {
			err = errors.New("ECDSA verification failure")
		}
	default:
		err = errors.New("unsupported CA key")
	}
	if err != nil {
		return fmt.Errorf("pki: the CA key made an invalid signature: %w", err)
	}
	return nil
}

// certificateOf returns the *x509.Certificate that x509.ParseCertificate
// returns for der, a certificate the writer just made from tmpl for pub.
// Parsing costs a P-256 CA about a sixth of an issuance, mostly to decode
// again what Issue has just encoded (the subject key above all), so the
// fields come from the inputs and only the DER's framing, the names and the
// extensions' positions are read. Whatever it was not written for (an extra
// extension that crypto/x509 interprets, a name string type other than
// PrintableString, UTF8String or IA5String, URIs in the SAN) goes to
// x509.ParseCertificate. The tests of this file check that the two agree
// field for field.
func (w *certWriter) certificateOf(der []byte, tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	if c, ok := w.fastCertificate(der, tmpl, pub); ok {
		return c, nil
	}
	return x509.ParseCertificate(der)
}

func (w *certWriter) fastCertificate(der []byte, tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, bool) {
	c := &x509.Certificate{Version: 3, SignatureAlgorithm: w.sigAlg, PublicKey: pub}
	switch pub.(type) {
	case *rsa.PublicKey:
		c.PublicKeyAlgorithm = x509.RSA
	case *ecdsa.PublicKey:
		c.PublicKeyAlgorithm = x509.ECDSA
	default:
		return nil, false
	}
	for _, e := range tmpl.ExtraExtensions {
		// Extensions crypto/x509 interprets, but for a SAN of the kind
		// fastSAN reads.
		if (len(e.Id) == 4 && e.Id[0] == 2 && e.Id[1] == 5 && e.Id[2] == 29 || e.Id.Equal(oidExtAIA)) && !e.Id.Equal(OIDExtensionSubjectAltName) {
			return nil, false
		}
	}
	for _, oid := range tmpl.UnknownExtKeyUsage {
		if x509KnowsEKU(oid) {
			return nil, false
		}
	}

	in := cryptobyte.String(der)
	var raw, cert, tbsRaw, tbs, issuer, subject, spki, exts, outerAlg cryptobyte.String
	var sig asn1.BitString
	if !in.ReadASN1Element(&raw, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, false
	}
	cert = raw
	if !cert.ReadASN1(&cert, cbasn1.SEQUENCE) ||
		!cert.ReadASN1Element(&tbsRaw, cbasn1.SEQUENCE) ||
		!cert.ReadASN1Element(&outerAlg, cbasn1.SEQUENCE) || !bytes.Equal(outerAlg, w.algID) ||
		!cert.ReadASN1BitString(&sig) || !cert.Empty() || sig.BitLength%8 != 0 {
		return nil, false
	}
	tbs = tbsRaw
	if !tbs.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || // version
		!tbs.SkipASN1(cbasn1.INTEGER) || // serial
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature algorithm
		!tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // validity
		!tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&spki, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1(&exts, cbasn1.Tag(3).Constructed().ContextSpecific()) ||
		!exts.ReadASN1(&exts, cbasn1.SEQUENCE) || !tbs.Empty() {
		return nil, false
	}
	c.Raw, c.RawTBSCertificate, c.RawIssuer, c.RawSubject, c.RawSubjectPublicKeyInfo = raw, tbsRaw, issuer, subject, spki
	c.Signature = sig.Bytes
	if w.issuerName == nil || !bytes.Equal(issuer, w.issuer) {
		return nil, false
	}
	c.Issuer = cloneName(w.issuerName)
	subjectRDNs, ok := parseSimpleName(subject)
	if !ok {
		return nil, false
	}
	c.Subject.FillFromRDNSequence(subjectRDNs)
	c.SerialNumber = new(big.Int).Set(tmpl.SerialNumber)
	c.NotBefore, c.NotAfter = tmpl.NotBefore.UTC().Truncate(time.Second), tmpl.NotAfter.UTC().Truncate(time.Second)

	for !exts.Empty() {
		var ext, value cryptobyte.String
		var e pkix.Extension
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&e.Id) {
			return nil, false
		}
		if ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&e.Critical) {
			return nil, false
		}
		if !ext.ReadASN1(&value, cbasn1.OCTET_STRING) || !ext.Empty() {
			return nil, false
		}
		e.Value = value
		if slices.ContainsFunc(c.Extensions, func(x pkix.Extension) bool { return x.Id.Equal(e.Id) }) {
			return nil, false // crypto/x509 refuses duplicates
		}
		if c.Extensions == nil {
			c.Extensions = make([]pkix.Extension, 0, 10)
		}
		c.Extensions = append(c.Extensions, e)
		switch {
		case e.Id.Equal(oidExtKeyUsage):
			c.KeyUsage = tmpl.KeyUsage & (1<<9 - 1) // the nine bits RFC 5280 names
		case e.Id.Equal(oidExtExtKeyUsage):
			c.ExtKeyUsage = slices.Clone(tmpl.ExtKeyUsage)
			for _, oid := range tmpl.UnknownExtKeyUsage {
				c.UnknownExtKeyUsage = append(c.UnknownExtKeyUsage, slices.Clone(oid))
			}
		case e.Id.Equal(oidExtBasicConstraints):
			c.BasicConstraintsValid, c.MaxPathLen = true, -1
		case e.Id.Equal(oidExtSubjectKeyID):
			if !value.ReadASN1((*cryptobyte.String)(&c.SubjectKeyId), cbasn1.OCTET_STRING) {
				return nil, false
			}
		case e.Id.Equal(oidExtAuthorityKeyID):
			var aki cryptobyte.String
			if !value.ReadASN1(&aki, cbasn1.SEQUENCE) || !aki.ReadASN1((*cryptobyte.String)(&c.AuthorityKeyId), cbasn1.Tag(0).ContextSpecific()) {
				return nil, false
			}
		case e.Id.Equal(oidExtAIA):
			c.IssuingCertificateURL = slices.Clone(w.issuerURLs)
		case e.Id.Equal(oidExtCRLDP):
			c.CRLDistributionPoints = slices.Clone(w.crlURLs)
		case e.Id.Equal(OIDExtensionSubjectAltName):
			if !fastSAN(value, c) {
				return nil, false
			}
			if e.Critical && len(c.DNSNames) == 0 && len(c.EmailAddresses) == 0 {
				c.UnhandledCriticalExtensions = append(c.UnhandledCriticalExtensions, e.Id)
			}
		default:
			if e.Critical {
				c.UnhandledCriticalExtensions = append(c.UnhandledCriticalExtensions, e.Id)
			}
		}
	}
	return c, true
}

// cloneName copies a parsed name, so that certificates do not share one.
// The attribute values are strings and the types OIDs nobody modifies.
func cloneName(n *pkix.Name) pkix.Name {
	c := *n
	for _, f := range []*[]string{&c.Country, &c.Organization, &c.OrganizationalUnit, &c.Locality, &c.Province, &c.StreetAddress, &c.PostalCode} {
		*f = slices.Clone(*f)
	}
	c.Names, c.ExtraNames = slices.Clone(c.Names), slices.Clone(c.ExtraNames)
	return c
}

// fastSAN reads the DNS names and email addresses of a SAN extension as
// crypto/x509 does, and fails on any URI or IP address.
func fastSAN(value cryptobyte.String, c *x509.Certificate) bool {
	var names cryptobyte.String
	if !value.ReadASN1(&names, cbasn1.SEQUENCE) || !value.Empty() {
		return false
	}
	for !names.Empty() {
		var name cryptobyte.String
		var tag cbasn1.Tag
		if !names.ReadAnyASN1(&name, &tag) {
			return false
		}
		switch tag ^ 0x80 {
		case 1, 2: // rfc822Name, dNSName
			if !isASCII(name) {
				return false
			}
			if tag == 0x81 {
				c.EmailAddresses = append(c.EmailAddresses, string(name))
			} else {
				c.DNSNames = append(c.DNSNames, string(name))
			}
		case 6, 7: // URI, IP address
			return false
		}
	}
	return true
}

// parseSimpleName reads a Name whose values are PrintableString,
// UTF8String or IA5String, with the checks crypto/x509 makes of them.
func parseSimpleName(raw cryptobyte.String) (*pkix.RDNSequence, bool) {
	if !raw.ReadASN1(&raw, cbasn1.SEQUENCE) {
		return nil, false
	}
	var seq pkix.RDNSequence
	for !raw.Empty() {
		var set cryptobyte.String
		if !raw.ReadASN1(&set, cbasn1.SET) {
			return nil, false
		}
		var rdn pkix.RelativeDistinguishedNameSET
		for !set.Empty() {
			var atv, value cryptobyte.String
			var attr pkix.AttributeTypeAndValue
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&attr.Type) || !atv.ReadAnyASN1(&value, &tag) || !atv.Empty() {
				return nil, false
			}
			switch tag {
			case cbasn1.PrintableString:
				for _, c := range value {
					if !isPrintableStringChar(c) && c != '*' && c != '&' {
						return nil, false
					}
				}
			case cbasn1.UTF8String:
				if !utf8.Valid(value) {
					return nil, false
				}
			case cbasn1.IA5String:
				if !isASCII(value) {
					return nil, false
				}
			default:
				return nil, false
			}
			attr.Value = string(value)
			rdn = append(rdn, attr)
		}
		seq = append(seq, rdn)
	}
	return &seq, true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// x509KnowsEKU reports whether crypto/x509 parses oid into an
// x509.ExtKeyUsage rather than UnknownExtKeyUsage.
func x509KnowsEKU(oid asn1.ObjectIdentifier) bool {
	for _, known := range oidEKU {
		if oid.Equal(known) {
			return true
		}
	}
	return slices.ContainsFunc(x509OtherEKUs, oid.Equal)
}

// x509OtherEKUs are the extended key usages crypto/x509 knows by name
// besides those in oidEKU.
var x509OtherEKUs = []asn1.ObjectIdentifier{
	{2, 5, 29, 37, 0},
	{1, 3, 6, 1, 5, 5, 7, 3, 5},
	{1, 3, 6, 1, 5, 5, 7, 3, 6},
	{1, 3, 6, 1, 5, 5, 7, 3, 7},
	{1, 3, 6, 1, 4, 1, 311, 10, 3, 3},
	{2, 16, 840, 1, 113730, 4, 1},
	{1, 3, 6, 1, 4, 1, 311, 2, 1, 22},
	{1, 3, 6, 1, 4, 1, 311, 61, 1, 1},
}

package kdc

// A minimal CMS SignedData (RFC 5652) reader and writer for PKINIT: one
// signer, signed attributes, certificates carried in the message.
//
// Verification is deliberately lenient about one thing MIT Kerberos gets
// wrong: MIT 1.20 labels ECDSA signatures sha256WithRSAEncryption. The
// signature is checked under the signer certificate's actual key type with
// the digest the SignerInfo names; the signatureAlgorithm label is only
// logged when it disagrees.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// maxCMSCertificates bounds the certificates one SignedData may carry.
const maxCMSCertificates = 16

type signedData struct {
	ContentType  asn1.ObjectIdentifier
	Content      []byte
	Certificates []*x509.Certificate
	signer       signerInfo
}

type signerInfo struct {
	issuer      []byte // raw issuer Name, with issuerAndSerialNumber
	serial      *big.Int
	ski         []byte // with subjectKeyIdentifier
	digestAlg   asn1.ObjectIdentifier
	signedAttrs []byte // the [0] IMPLICIT SET's contents; nil when absent
	sigAlg      asn1.ObjectIdentifier
	signature   []byte
}

// cmsError says what kind of failure a SignedData had, so the KDC can pick
// the RFC 4556 error code.
type cmsError struct {
	code   int32
	reason string
}

func (e *cmsError) Error() string { return e.reason }

func cmsFail(code int32, format string, args ...any) error {
	return &cmsError{code: code, reason: fmt.Sprintf(format, args...)}
}

// parseSignedData reads a ContentInfo holding SignedData with exactly one
// signer and an encapsulated content.
func parseSignedData(der []byte) (*signedData, error) {
	in := cryptobyte.String(der)
	var ci, w, sd cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() || !ci.ReadASN1ObjectIdentifier(&oid) {
		return nil, cmsFail(ErrGeneric, "malformed CMS ContentInfo")
	}
	if !oid.Equal(oidSignedData) {
		return nil, cmsFail(ErrGeneric, "CMS content type %v is not SignedData", oid)
	}
	if !ci.ReadASN1(&w, ctx(0)) || !ci.Empty() || !w.ReadASN1(&sd, cbasn1.SEQUENCE) || !w.Empty() {
		return nil, cmsFail(ErrGeneric, "malformed CMS SignedData")
	}
	var version int64
	var digestAlgs, encap cryptobyte.String
	if !sd.ReadASN1Integer(&version) || !sd.ReadASN1(&digestAlgs, cbasn1.SET) || !sd.ReadASN1(&encap, cbasn1.SEQUENCE) {
		return nil, cmsFail(ErrGeneric, "malformed CMS SignedData")
	}
	out := &signedData{}
	if !encap.ReadASN1ObjectIdentifier(&out.ContentType) || !encap.ReadASN1(&w, ctx(0)) ||
		!w.ReadASN1Bytes(&out.Content, cbasn1.OCTET_STRING) || !w.Empty() || !encap.Empty() {
		return nil, cmsFail(ErrGeneric, "malformed or detached CMS content")
	}
	var present bool
	var certs cryptobyte.String
	if !sd.ReadOptionalASN1(&certs, &present, ctx(0)) {
		return nil, cmsFail(ErrGeneric, "malformed CMS certificates")
	}
	for !certs.Empty() {
		var c cryptobyte.String
		var tag cbasn1.Tag
		if !certs.ReadAnyASN1Element(&c, &tag) {
			return nil, cmsFail(ErrGeneric, "malformed CMS certificates")
		}
		if tag != cbasn1.SEQUENCE {
			continue // other certificate formats are ignored
		}
		if len(out.Certificates) >= maxCMSCertificates {
			return nil, cmsFail(ErrGeneric, "too many certificates in CMS SignedData")
		}
		cert, err := x509.ParseCertificate(c)
		if err != nil {
			return nil, cmsFail(ErrInvalidCertificate, "unparseable certificate in SignedData: %v", err)
		}
		out.Certificates = append(out.Certificates, cert)
	}
	var crls cryptobyte.String
	if !sd.ReadOptionalASN1(&crls, &present, ctx(1)) {
		return nil, cmsFail(ErrGeneric, "malformed CMS crls")
	}
	var signers cryptobyte.String
	if !sd.ReadASN1(&signers, cbasn1.SET) || !sd.Empty() {
		return nil, cmsFail(ErrGeneric, "malformed CMS signerInfos")
	}
	var si cryptobyte.String
	if !signers.ReadASN1(&si, cbasn1.SEQUENCE) {
		return nil, cmsFail(ErrInvalidSig, "CMS SignedData has no signer")
	}
	if !signers.Empty() {
		return nil, cmsFail(ErrInvalidSig, "CMS SignedData has more than one signer")
	}
	if err := parseSignerInfo(si, &out.signer); err != nil {
		return nil, err
	}
	return out, nil
}

func parseSignerInfo(si cryptobyte.String, s *signerInfo) error {
	bad := cmsFail(ErrGeneric, "malformed CMS SignerInfo")
	var version int64
	if !si.ReadASN1Integer(&version) {
		return bad
	}
	if si.PeekASN1Tag(cbasn1.SEQUENCE) {
		var ias, name cryptobyte.String
		s.serial = new(big.Int)
		if !si.ReadASN1(&ias, cbasn1.SEQUENCE) || !ias.ReadASN1Element(&name, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Integer(s.serial) || !ias.Empty() {
			return bad
		}
		s.issuer = name
	} else if !si.ReadASN1Bytes(&s.ski, ctxPrimitive(0)) {
		return bad
	}
	var alg cryptobyte.String
	if !si.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&s.digestAlg) {
		return bad
	}
	var attrs cryptobyte.String
	var present bool
	if !si.ReadOptionalASN1(&attrs, &present, ctx(0)) {
		return bad
	}
	if present {
		s.signedAttrs = attrs
		if s.signedAttrs == nil {
			s.signedAttrs = []byte{}
		}
	}
	if !si.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&s.sigAlg) ||
		!si.ReadASN1Bytes(&s.signature, cbasn1.OCTET_STRING) {
		return bad
	}
	return nil // unsigned attributes, if any, are ignored
}

// digestFor maps a digest OID to its hash. SHA-1 is refused.
func digestFor(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	switch {
	case oid.Equal(oidSHA256):
		return crypto.SHA256, true
	case oid.Equal(oidSHA384):
		return crypto.SHA384, true
	case oid.Equal(oidSHA512):
		return crypto.SHA512, true
	}
	return 0, false
}

// signerCertificate finds the signer's certificate among those carried.
func (sd *signedData) signerCertificate() (*x509.Certificate, error) {
	for _, c := range sd.Certificates {
		if sd.signer.serial != nil {
			if c.SerialNumber.Cmp(sd.signer.serial) == 0 && bytes.Equal(c.RawIssuer, sd.signer.issuer) {
				return c, nil
			}
		} else if len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, sd.signer.ski) {
			return c, nil
		}
	}
	return nil, cmsFail(ErrCantVerifyCertificate, "the signer's certificate is not in the SignedData")
}

// verify checks the signature, with the signed attributes when present, and
// returns the signer's certificate. It checks no chain. mislabelled
// reports a signatureAlgorithm that does not name the key's algorithm.
func (sd *signedData) verify() (signer *x509.Certificate, mislabelled bool, err error) {
	signer, err = sd.signerCertificate()
	if err != nil {
		return nil, false, err
	}
	h, ok := digestFor(sd.signer.digestAlg)
	if !ok {
		return nil, false, cmsFail(ErrDigestInSignedDataRefused, "digest algorithm %v is not accepted", sd.signer.digestAlg)
	}
	signed := sd.Content
	if sd.signer.signedAttrs != nil {
		ct, md, err := parseSignedAttrs(sd.signer.signedAttrs)
		if err != nil {
			return nil, false, err
		}
		if !ct.Equal(sd.ContentType) {
			return nil, false, cmsFail(ErrInvalidSig, "content-type attribute %v does not match content %v", ct, sd.ContentType)
		}
		d := h.New()
		d.Write(sd.Content)
		if subtle.ConstantTimeCompare(d.Sum(nil), md) != 1 {
			return nil, false, cmsFail(ErrInvalidSig, "message-digest attribute does not match the content")
		}
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(sd.signer.signedAttrs) })
		signed, err = b.Bytes()
		if err != nil {
			return nil, false, err
		}
	}
	d := h.New()
	d.Write(signed)
	digest := d.Sum(nil)
	switch pub := signer.PublicKey.(type) {
	case *rsa.PublicKey:
		mislabelled = !isRSASigAlg(sd.signer.sigAlg)
		if err := rsa.VerifyPKCS1v15(pub, h, digest, sd.signer.signature); err != nil {
			return nil, false, cmsFail(ErrInvalidSig, "the RSA signature does not verify")
		}
	case *ecdsa.PublicKey:
		mislabelled = !isECDSASigAlg(sd.signer.sigAlg)
		if !ecdsa.VerifyASN1(pub, digest, sd.signer.signature) {
			return nil, false, cmsFail(ErrInvalidSig, "the ECDSA signature does not verify")
		}
	default:
		return nil, false, cmsFail(ErrInvalidCertificate, "signer key type %T is not supported", signer.PublicKey)
	}
	return signer, mislabelled, nil
}

func isRSASigAlg(oid asn1.ObjectIdentifier) bool {
	for _, o := range []asn1.ObjectIdentifier{oidRSAEncryption, oidSHA1WithRSA, oidSHA256WithRSA, oidSHA384WithRSA, oidSHA512WithRSA} {
		if oid.Equal(o) {
			return true
		}
	}
	return false
}

func isECDSASigAlg(oid asn1.ObjectIdentifier) bool {
	for _, o := range []asn1.ObjectIdentifier{oidECPublicKey, oidECDSAWithSHA1, oidECDSASHA256, oidECDSASHA384, oidECDSASHA512} {
		if oid.Equal(o) {
			return true
		}
	}
	return false
}

// parseSignedAttrs returns the content-type and message-digest attributes,
// both required (RFC 5652 §5.3).
func parseSignedAttrs(b []byte) (asn1.ObjectIdentifier, []byte, error) {
	attrs := cryptobyte.String(b)
	var ct asn1.ObjectIdentifier
	var md []byte
	for n := 0; !attrs.Empty(); n++ {
		var attr, values cryptobyte.String
		var typ asn1.ObjectIdentifier
		if n > 32 || !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&typ) ||
			!attr.ReadASN1(&values, cbasn1.SET) || !attr.Empty() {
			return nil, nil, cmsFail(ErrGeneric, "malformed CMS signed attributes")
		}
		switch {
		case typ.Equal(oidAttrContentType):
			if ct != nil || !values.ReadASN1ObjectIdentifier(&ct) || !values.Empty() {
				return nil, nil, cmsFail(ErrInvalidSig, "bad content-type attribute")
			}
		case typ.Equal(oidAttrDigest):
			if md != nil || !values.ReadASN1Bytes(&md, cbasn1.OCTET_STRING) || !values.Empty() {
				return nil, nil, cmsFail(ErrInvalidSig, "bad message-digest attribute")
			}
		}
	}
	if ct == nil || md == nil {
		return nil, nil, cmsFail(ErrInvalidSig, "signed attributes lack content-type or message-digest")
	}
	return ct, md, nil
}

// signCMS makes a ContentInfo holding SignedData of content, signed by key
// (RSA PKCS#1 v1.5 or ECDSA, SHA-256) with signed attributes, carrying
// certs (the signer's certificate first).
func signCMS(contentType asn1.ObjectIdentifier, content []byte, key crypto.Signer, certs []*x509.Certificate) ([]byte, error) {
	return signCMSLabelled(contentType, content, key, certs, nil)
}

// signCMSLabelled is signCMS with the signatureAlgorithm written as label
// (when not nil), as MIT 1.20 mislabels ECDSA: for tests.
func signCMSLabelled(contentType asn1.ObjectIdentifier, content []byte, key crypto.Signer, certs []*x509.Certificate, label asn1.ObjectIdentifier) ([]byte, error) {
	if len(certs) == 0 {
		return nil, errors.New("kdc: no signer certificate")
	}
	cert := certs[0]
	md := sha256.Sum256(content)
	var attrList [][]byte
	for _, a := range []struct {
		oid asn1.ObjectIdentifier
		val func(*cryptobyte.Builder)
	}{
		{oidAttrContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(contentType) }},
		{oidAttrDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(md[:]) }},
	} {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(a.oid)
			b.AddASN1(cbasn1.SET, a.val)
		})
		der, err := b.Bytes()
		if err != nil {
			return nil, err
		}
		attrList = append(attrList, der)
	}
	slices.SortFunc(attrList, bytes.Compare) // DER SET OF order
	attrs := bytes.Join(attrList, nil)
	var sb cryptobyte.Builder
	sb.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(attrs) })
	toSign, err := sb.Bytes()
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(toSign)
	var sigAlg asn1.ObjectIdentifier
	nullParams := false
	switch key.Public().(type) {
	case *rsa.PublicKey:
		sigAlg, nullParams = oidSHA256WithRSA, true
	case *ecdsa.PublicKey:
		sigAlg = oidECDSASHA256
	default:
		return nil, fmt.Errorf("kdc: cannot sign CMS with a %T key", key.Public())
	}
	if label != nil {
		sigAlg, nullParams = label, label.Equal(oidSHA256WithRSA)
	}
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("kdc: signing: %w", err)
	}
	version := int64(3) // RFC 5652 §5.1: eContentType is not id-data
	if contentType.Equal(oidData) {
		version = 1
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(ctx(0), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(version)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidSHA256) })
				})
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(contentType)
					b.AddASN1(ctx(0), func(b *cryptobyte.Builder) { b.AddASN1OctetString(content) })
				})
				b.AddASN1(ctx(0), func(b *cryptobyte.Builder) {
					for _, c := range certs {
						b.AddBytes(c.Raw)
					}
				})
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1Int64(1)
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddBytes(cert.RawIssuer)
							b.AddASN1BigInt(cert.SerialNumber)
						})
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidSHA256) })
						b.AddASN1(ctx(0), func(b *cryptobyte.Builder) { b.AddBytes(attrs) })
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(sigAlg)
							if nullParams {
								b.AddASN1NULL()
							}
						})
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	return b.Bytes()
}

// signedDataOf strips the ContentInfo from a SignedData: what an
// EnvelopedData of type id-signedData encrypts (as MIT writes it).
func signedDataOf(contentInfo []byte) ([]byte, error) {
	in := cryptobyte.String(contentInfo)
	var ci, w, sd cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidSignedData) ||
		!ci.ReadASN1(&w, ctx(0)) || !w.ReadASN1Element(&sd, cbasn1.SEQUENCE) {
		return nil, errors.New("kdc: not a SignedData ContentInfo")
	}
	return sd, nil
}

// wrapSignedData puts a SignedData back in its ContentInfo.
func wrapSignedData(sd []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(ctx(0), func(b *cryptobyte.Builder) { b.AddBytes(sd) })
	})
	return b.Bytes()
}

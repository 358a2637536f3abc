package smime

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"
)

// SignOptions vary Sign.
type SignOptions struct {
	// Opaque makes application/pkcs7-mime signed-data (the content inside
	// the CMS) instead of multipart/signed with a detached signature.
	Opaque bool
	// Time is the signing time attribute; zero means now.
	Time time.Time
}

// Sign signs a mail message (RFC 5322 header fields, then the body) with
// signer, whose certificate is cert; chain (intermediates) is attached
// after it. The Content-* fields and the body become the signed MIME
// entity, in canonical CRLF form; the other header fields (From, To,
// Subject, ...) stay outside. The digest is SHA-256.
func Sign(msg []byte, signer crypto.Signer, cert *x509.Certificate, chain []*x509.Certificate, opts *SignOptions) ([]byte, error) {
	if opts == nil {
		opts = &SignOptions{}
	}
	outer, ent, err := entity(msg)
	if err != nil {
		return nil, err
	}
	der, err := signContent(ent, signer, cert, chain, !opts.Opaque, opts.Time)
	if err != nil {
		return nil, err
	}
	// One allocation, never cleared or grown: see appendBase64.
	b := make([]byte, 0, len(outer)+ent.len()+base64Len(len(der))+1024)
	b = append(b, outer...)
	b = append(b, "MIME-Version: 1.0\r\n"...)
	if opts.Opaque {
		return appendPKCS7Mime(b, "signed-data", "smime.p7m", der), nil
	}
	bnd := boundary()
	b = fmt.Appendf(b, "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;\r\n boundary=\"%s\"\r\n\r\n", bnd)
	b = append(b, "This is an S/MIME signed message\r\n\r\n"...)
	b = fmt.Appendf(b, "--%s\r\n", bnd)
	b = append(b, ent.head...)
	b = append(b, ent.body...)
	b = fmt.Appendf(b, "\r\n--%s\r\n", bnd)
	b = append(b, "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"+
		"Content-Transfer-Encoding: base64\r\n"+
		"Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n"...)
	b = appendBase64(b, der)
	b = fmt.Appendf(b, "\r\n--%s--\r\n", bnd)
	return b, nil
}

func appendPKCS7Mime(b []byte, smimeType, name string, der []byte) []byte {
	b = fmt.Appendf(b, "Content-Type: application/pkcs7-mime; smime-type=%s; name=\"%s\"\r\n", smimeType, name)
	b = append(b, "Content-Transfer-Encoding: base64\r\n"...)
	b = fmt.Appendf(b, "Content-Disposition: attachment; filename=\"%s\"\r\n\r\n", name)
	return appendBase64(b, der)
}

// CertsOnly makes a certs-only message (application/pkcs7-mime;
// smime-type=certs-only): a SignedData with the certificates and no
// signers, to hand certificates to someone.
func CertsOnly(certs ...*x509.Certificate) ([]byte, error) {
	if len(certs) == 0 {
		return nil, errors.New("smime: certs-only needs at least one certificate")
	}
	sd := signedData{
		Version:          1,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{},
		EncapContentInfo: encapContentInfo{EContentType: oidData},
		Certificates:     certSet(certs),
		SignerInfos:      []asn1.RawValue{},
	}
	der, err := wrapContentInfo(oidSignedData, sd)
	if err != nil {
		return nil, err
	}
	return appendPKCS7Mime([]byte("MIME-Version: 1.0\r\n"), "certs-only", "smime.p7c", der), nil
}

func certSet(certs []*x509.Certificate) asn1.RawValue {
	var raw []byte
	for _, c := range certs {
		raw = append(raw, c.Raw...)
	}
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: raw}
}

func wrapContentInfo(oid asn1.ObjectIdentifier, content any) ([]byte, error) {
	inner, err := asn1.Marshal(content)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfo{ContentType: oid, Content: asn1.RawValue{FullBytes: explicit0(inner)}})
}

// explicit0 wraps DER in a [0] EXPLICIT tag.
func explicit0(der []byte) []byte {
	return appendTLV(nil, []byte{0xa0}, der)
}

// signContent makes a ContentInfo with a SignedData over content, signed
// with SHA-256 and the attributes content-type, signing-time and
// message-digest.
func signContent(content mimeEntity, signer crypto.Signer, cert *x509.Certificate, chain []*x509.Certificate, detached bool, when time.Time) ([]byte, error) {
	if signer == nil || cert == nil {
		return nil, errors.New("smime: signing needs a key and its certificate")
	}
	if !publicKeysEqual(signer.Public(), cert.PublicKey) {
		return nil, errors.New("smime: the signing key does not belong to the certificate")
	}
	var sigAlg pkix.AlgorithmIdentifier
	switch signer.Public().(type) {
	case *rsa.PublicKey:
		sigAlg = pkix.AlgorithmIdentifier{Algorithm: oidRSAEncryption, Parameters: asn1.NullRawValue}
	case *ecdsa.PublicKey:
		sigAlg = pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}
	default:
		return nil, fmt.Errorf("smime: cannot sign with a %T key (RSA or ECDSA only)", signer.Public())
	}
	if when.IsZero() {
		when = time.Now()
	}
	h := sha256.New()
	h.Write(content.head)
	h.Write(content.body)
	attrs, err := signedAttributes(oidData, h.Sum(nil), when)
	if err != nil {
		return nil, err
	}
	// The signature covers the attributes DER-encoded as a SET OF.
	attrDigest := sha256.Sum256(attrs)
	sig, err := signer.Sign(rand.Reader, attrDigest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("smime: signing: %w", err)
	}
	rid, err := ridFor(cert)
	if err != nil {
		return nil, err
	}
	implicitAttrs := append([]byte{0xa0}, attrs[1:]...)
	si, err := asn1.Marshal(signerInfo{
		Version:            1,
		SID:                rid,
		DigestAlgorithm:    pkix.AlgorithmIdentifier{Algorithm: oidSHA256},
		SignedAttrs:        asn1.RawValue{FullBytes: implicitAttrs},
		SignatureAlgorithm: sigAlg,
		Signature:          sig,
	})
	if err != nil {
		return nil, err
	}
	eci := encapContentInfo{EContentType: oidData}
	if !detached {
		oct, err := asn1.Marshal(content.bytes())
		if err != nil {
			return nil, err
		}
		eci.EContent = asn1.RawValue{FullBytes: explicit0(oct)}
	}
	sd := signedData{
		Version:          1,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{{Algorithm: oidSHA256}},
		EncapContentInfo: eci,
		Certificates:     certSet(append([]*x509.Certificate{cert}, chain...)),
		SignerInfos:      []asn1.RawValue{{FullBytes: si}},
	}
	return wrapContentInfo(oidSignedData, sd)
}

// signedAttributes encodes the signed attributes as a DER SET OF.
func signedAttributes(contentType asn1.ObjectIdentifier, digest []byte, when time.Time) ([]byte, error) {
	ct, err := asn1.Marshal(contentType)
	if err != nil {
		return nil, err
	}
	md, err := asn1.Marshal(digest)
	if err != nil {
		return nil, err
	}
	st, err := asn1.Marshal(when.UTC())
	if err != nil {
		return nil, err
	}
	attrs := []attribute{
		{Type: oidAttrContentType, Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: ct}},
		{Type: oidAttrSigningTime, Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: st}},
		{Type: oidAttrMessageDigest, Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: md}},
	}
	var encoded [][]byte
	for _, a := range attrs {
		e, err := asn1.Marshal(a)
		if err != nil {
			return nil, err
		}
		encoded = append(encoded, e)
	}
	// DER orders the elements of a SET OF by their encodings.
	sortBytes(encoded)
	return appendTLV(nil, []byte{0x31}, bytes.Join(encoded, nil)), nil
}

func sortBytes(s [][]byte) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && bytes.Compare(s[j], s[j-1]) < 0; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

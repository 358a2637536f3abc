package smime

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"
)

// VerifyOptions say whom to trust when verifying.
type VerifyOptions struct {
	// Roots are the trust anchors; nil means the system roots.
	Roots *x509.CertPool
	// Intermediates are extra intermediate certificates (the ones in the
	// message are used too).
	Intermediates *x509.CertPool
	// CurrentTime is the time to check validity at; zero means now.
	CurrentTime time.Time
	// Revocation, when set, says whether the signer's certificate is
	// revoked; when nil revocation is not checked (and not reported as
	// checked).
	Revocation func(*x509.Certificate) (revoked bool, when time.Time, err error)
	// LookupSigner, when set, finds candidate signer certificates for the
	// From address when the message does not carry the signer's
	// certificate (for example in the directory).
	LookupSigner func(address string) ([]*x509.Certificate, error)
}

// Verification is the outcome of Verify, check by check.
type Verification struct {
	Signer      *x509.Certificate     // the signer's certificate, when found
	Chains      [][]*x509.Certificate // the chains to a root, when valid
	SigningTime time.Time             // the signing-time attribute, when present
	Detached    bool                  // multipart/signed (else opaque signed-data)

	SignatureValid bool // the signature and message digest check out
	SignatureError error
	ChainValid     bool // the signer's certificate chains to a root, is valid now, for email protection
	ChainError     error
	AddressMatches bool   // the From address is one of the certificate's addresses
	From           string // the From address
	AddressError   error
	// RevocationChecked says a Revocation function was given; NotRevoked
	// that it said the certificate is not revoked.
	RevocationChecked bool
	NotRevoked        bool
	RevokedAt         time.Time
	RevocationError   error

	// Content is the signed MIME entity; Message is the mail's own header
	// fields followed by that entity: the message as the sender wrote it.
	Content []byte
	Message []byte
}

// Valid reports whether every check passed (revocation only when checked).
func (v *Verification) Valid() bool {
	return v.SignatureValid && v.ChainValid && v.AddressMatches && (!v.RevocationChecked || v.NotRevoked)
}

// IsSigned reports whether msg is an S/MIME signed message (multipart/signed
// or signed-data), so a caller knows to verify it.
func IsSigned(msg []byte) bool {
	m, err := parseMessage(canonicalCRLF(msg))
	if err != nil {
		return false
	}
	t, params, err := m.mediaType()
	if err != nil {
		return false
	}
	switch t {
	case "multipart/signed":
		return true
	case "application/pkcs7-mime", "application/x-pkcs7-mime":
		return strings.EqualFold(params["smime-type"], "signed-data")
	}
	return false
}

// Verify checks a signed message (multipart/signed or opaque signed-data).
// It returns an error for a malformed message (*FormatError) and a
// *VerifyError, together with the Verification, when a check fails.
func Verify(msg []byte, opts VerifyOptions) (*Verification, error) {
	m, err := parseMessage(canonicalCRLF(msg))
	if err != nil {
		return nil, err
	}
	t, params, err := m.mediaType()
	if err != nil {
		return nil, err
	}
	v := &Verification{}
	var der, content []byte
	switch t {
	case "multipart/signed":
		proto := strings.ToLower(params["protocol"])
		if proto != "application/pkcs7-signature" && proto != "application/x-pkcs7-signature" {
			return nil, malformed("multipart/signed", "protocol %q is not S/MIME", params["protocol"])
		}
		signed, sigPart, err := splitSigned(m.body, params["boundary"])
		if err != nil {
			return nil, err
		}
		pm, err := parseMessage(sigPart)
		if err != nil {
			return nil, err
		}
		if pt, _, err := pm.mediaType(); err != nil || (pt != "application/pkcs7-signature" && pt != "application/x-pkcs7-signature") {
			return nil, malformed("multipart/signed", "the second part is not application/pkcs7-signature")
		}
		if der, err = pkcs7Part("signature part", pm); err != nil {
			return nil, err
		}
		content = signed
		v.Detached = true
	case "application/pkcs7-mime", "application/x-pkcs7-mime":
		if st := strings.ToLower(params["smime-type"]); st != "signed-data" && st != "" {
			return nil, malformed("S/MIME message", "smime-type %q is not signed-data", params["smime-type"])
		}
		if der, err = pkcs7Part("signed-data", m); err != nil {
			return nil, err
		}
	default:
		return nil, malformed("S/MIME message", "%s is not a signed message", t)
	}
	sd, err := parseSignedData(der)
	if err != nil {
		return nil, err
	}
	if !v.Detached {
		if sd.EncapContentInfo.EContent.FullBytes == nil {
			return nil, malformed("signed-data", "no content inside")
		}
		var oct asn1.RawValue
		if err := unmarshal("signed-data content", sd.EncapContentInfo.EContent.Bytes, &oct); err != nil {
			return nil, err
		}
		if content, err = octets(oct); err != nil {
			return nil, &FormatError{What: "signed-data content", Err: err}
		}
	}
	// The signature covers the content as it is; what we hand on is in
	// canonical form (opaque content signed in binary mode may use LF).
	v.Content = canonicalCRLF(content)
	v.Message = append(m.outer(), v.Content...)
	if len(sd.SignerInfos) == 0 {
		return nil, malformed("signed-data", "no signer")
	}
	if len(sd.SignerInfos) > 16 {
		return nil, malformed("signed-data", "%d signers", len(sd.SignerInfos))
	}
	certs, err := parseCertSet(sd.Certificates)
	if err != nil {
		return nil, err
	}
	// One signer is what mail clients write; with several, all must check.
	for i, raw := range sd.SignerInfos {
		var si signerInfo
		if err := unmarshal("SignerInfo", raw.FullBytes, &si); err != nil {
			return nil, err
		}
		if i == 0 {
			verifySigner(v, m, &si, sd.EncapContentInfo.EContentType, content, certs, opts)
			continue
		}
		w := &Verification{}
		verifySigner(w, m, &si, sd.EncapContentInfo.EContentType, content, certs, opts)
		if !w.Valid() {
			return v, &VerifyError{Verification: w}
		}
	}
	if !v.Valid() {
		return v, &VerifyError{Verification: v}
	}
	return v, nil
}

func parseSignedData(der []byte) (*signedData, error) {
	norm, err := normalizeBER(der)
	if err != nil {
		return nil, &FormatError{What: "CMS", Err: err}
	}
	var ci contentInfo
	if err := unmarshal("CMS ContentInfo", norm, &ci); err != nil {
		return nil, err
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, malformed("CMS", "content type %v is not signed-data", ci.ContentType)
	}
	var sd signedData
	if err := unmarshal("CMS SignedData", ci.Content.Bytes, &sd); err != nil {
		return nil, err
	}
	return &sd, nil
}

func parseCertSet(raw asn1.RawValue) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := raw.Bytes
	for len(rest) > 0 {
		var c asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &c); err != nil {
			return nil, &FormatError{What: "certificate set", Err: err}
		}
		if c.Class != asn1.ClassUniversal || c.Tag != asn1.TagSequence {
			continue // other certificate formats (attribute certificates) are skipped
		}
		cert, err := x509.ParseCertificate(c.FullBytes)
		if err != nil {
			return nil, &FormatError{What: "certificate in the message", Err: err}
		}
		certs = append(certs, cert)
	}
	return certs, nil
}

// verifySigner runs every check for one SignerInfo and records it in v.
func verifySigner(v *Verification, m *message, si *signerInfo, eContentType asn1.ObjectIdentifier, content []byte, certs []*x509.Certificate, opts VerifyOptions) {
	from, ferr := fromAddress(m)
	v.From = from

	// Find the signer's certificate: in the message, else by address.
	for _, c := range certs {
		if ridMatches(si.SID, c) {
			v.Signer = c
			break
		}
	}
	if v.Signer == nil && opts.LookupSigner != nil && ferr == nil {
		found, err := opts.LookupSigner(from)
		if err == nil {
			for _, c := range found {
				if ridMatches(si.SID, c) {
					v.Signer = c
					break
				}
			}
		}
	}
	if v.Signer == nil {
		err := errors.New("the signer's certificate is neither in the message nor found for the sender's address")
		v.SignatureError, v.ChainError, v.AddressError, v.RevocationError = err, err, err, err
		v.RevocationChecked = opts.Revocation != nil
		return
	}
	v.SignatureError = checkSignature(v, si, eContentType, content)
	v.SignatureValid = v.SignatureError == nil

	now := opts.CurrentTime
	if now.IsZero() {
		now = time.Now()
	}
	inter := x509.NewCertPool()
	if opts.Intermediates != nil {
		inter = opts.Intermediates.Clone()
	}
	for _, c := range certs {
		if c != v.Signer {
			inter.AddCert(c)
		}
	}
	v.Chains, v.ChainError = v.Signer.Verify(x509.VerifyOptions{
		Roots: opts.Roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	})
	if v.ChainError == nil && v.Signer.KeyUsage != 0 && v.Signer.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		v.ChainError = errors.New("the certificate's key usage does not allow signatures")
	}
	v.ChainValid = v.ChainError == nil

	switch {
	case ferr != nil:
		v.AddressError = ferr
	case !certHasAddress(v.Signer, from):
		v.AddressError = fmt.Errorf("the From address %s is not in the signer's certificate (%s)", from, strings.Join(certAddresses(v.Signer), ", "))
	default:
		v.AddressMatches = true
	}

	if opts.Revocation != nil {
		v.RevocationChecked = true
		revoked, when, err := opts.Revocation(v.Signer)
		switch {
		case err != nil:
			v.RevocationError = fmt.Errorf("revocation status unknown: %w", err)
		case revoked:
			v.RevokedAt = when
			v.RevocationError = fmt.Errorf("the signer's certificate was revoked at %s", when.UTC().Format(time.RFC3339))
		default:
			v.NotRevoked = true
		}
	}
}

// certAddresses lists a certificate's mail addresses: rfc822Name SANs and
// the subject's emailAddress.
func certAddresses(c *x509.Certificate) []string {
	addrs := append([]string(nil), c.EmailAddresses...)
	for _, atv := range c.Subject.Names {
		if atv.Type.Equal(oidEmailAddress) {
			if s, ok := atv.Value.(string); ok {
				addrs = append(addrs, s)
			}
		}
	}
	return addrs
}

var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

func certHasAddress(c *x509.Certificate, addr string) bool {
	for _, a := range certAddresses(c) {
		if strings.EqualFold(a, addr) {
			return true
		}
	}
	return false
}

// checkSignature checks the message digest and the signature of one
// signer.
func checkSignature(v *Verification, si *signerInfo, eContentType asn1.ObjectIdentifier, content []byte) error {
	h, err := hashFor(si.DigestAlgorithm.Algorithm)
	if err != nil {
		return err
	}
	signedBytes := content
	if si.SignedAttrs.FullBytes != nil {
		attrs, err := parseAttributes(si.SignedAttrs.Bytes)
		if err != nil {
			return err
		}
		var md []byte
		var ct asn1.ObjectIdentifier
		for _, a := range attrs {
			switch {
			case a.Type.Equal(oidAttrMessageDigest):
				if md != nil {
					return errors.New("two message-digest attributes")
				}
				if _, err := asn1.Unmarshal(a.Values.Bytes, &md); err != nil {
					return errors.New("bad message-digest attribute")
				}
			case a.Type.Equal(oidAttrContentType):
				if _, err := asn1.Unmarshal(a.Values.Bytes, &ct); err != nil {
					return errors.New("bad content-type attribute")
				}
			case a.Type.Equal(oidAttrSigningTime):
				var t time.Time
				if _, err := asn1.Unmarshal(a.Values.Bytes, &t); err == nil {
					v.SigningTime = t
				}
			}
		}
		if md == nil || ct == nil {
			return errors.New("the signed attributes lack message-digest or content-type")
		}
		if !ct.Equal(eContentType) {
			return errors.New("the content-type attribute does not match the content")
		}
		d := h.New()
		d.Write(content)
		if !bytes.Equal(d.Sum(nil), md) {
			return errors.New("the content does not match the signature (message digest differs): the message was changed")
		}
		// The signature covers the attributes as a DER SET OF.
		signedBytes = append([]byte{0x31}, si.SignedAttrs.FullBytes[1:]...)
	}
	d := h.New()
	d.Write(signedBytes)
	digest := d.Sum(nil)
	alg := si.SignatureAlgorithm.Algorithm
	switch pub := v.Signer.PublicKey.(type) {
	case *rsa.PublicKey:
		if !alg.Equal(oidRSAEncryption) && !alg.Equal(oidSHA256WithRSA) && !alg.Equal(oidSHA384WithRSA) && !alg.Equal(oidSHA512WithRSA) {
			return fmt.Errorf("unsupported signature algorithm %v for an RSA key", alg)
		}
		if err := rsa.VerifyPKCS1v15(pub, h, digest, si.Signature); err != nil {
			return errors.New("the signature does not verify with the signer's key")
		}
	case *ecdsa.PublicKey:
		if !alg.Equal(oidECDSAWithSHA256) && !alg.Equal(oidECDSAWithSHA384) && !alg.Equal(oidECDSAWithSHA512) && !alg.Equal(oidECPublicKey) {
			return fmt.Errorf("unsupported signature algorithm %v for an EC key", alg)
		}
		if !ecdsa.VerifyASN1(pub, digest, si.Signature) {
			return errors.New("the signature does not verify with the signer's key")
		}
	default:
		return fmt.Errorf("unsupported signer key %T", pub)
	}
	return nil
}

func parseAttributes(b []byte) ([]attribute, error) {
	var attrs []attribute
	for len(b) > 0 {
		var a attribute
		var err error
		if b, err = asn1.Unmarshal(b, &a); err != nil {
			return nil, errors.New("bad signed attributes")
		}
		attrs = append(attrs, a)
	}
	return attrs, nil
}

// hashFor maps a digest algorithm to a hash. SHA-1 is refused: RFC 8551
// says receivers should not trust it.
func hashFor(oid asn1.ObjectIdentifier) (crypto.Hash, error) {
	switch {
	case oid.Equal(oidSHA256):
		return crypto.SHA256, nil
	case oid.Equal(oidSHA384):
		return crypto.SHA384, nil
	case oid.Equal(oidSHA512):
		return crypto.SHA512, nil
	case oid.Equal(oidSHA1):
		return 0, errors.New("SHA-1 signatures are not accepted")
	}
	return 0, fmt.Errorf("unknown digest algorithm %v", oid)
}

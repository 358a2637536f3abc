package smime

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
)

var (
	oidData              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidEnvelopedData     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidAuthEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 23}

	oidAttrContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidAttrSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	oidRSAEncryption   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidRSAOAEP         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 7}
	oidMGF1            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidECPublicKey     = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}

	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidAES128GCM  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 6}
	oidAES192GCM  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 26}
	oidAES256GCM  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 46}
	oidAES128Wrap = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 5}
	oidAES192Wrap = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 25}
	oidAES256Wrap = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 45}

	// RFC 5753 / SEC 1 key agreement schemes: the KDF hash differs.
	oidDHSinglePassSHA1KDF   = asn1.ObjectIdentifier{1, 3, 133, 16, 840, 63, 0, 2}
	oidDHSinglePassSHA224KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 11, 0}
	oidDHSinglePassSHA256KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 11, 1}
	oidDHSinglePassSHA384KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 11, 2}
	oidDHSinglePassSHA512KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 11, 3}
)

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue   `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue   `asn1:"optional,tag:1"`
	SignerInfos      []asn1.RawValue `asn1:"set"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type envelopedData struct {
	Version              int
	OriginatorInfo       asn1.RawValue   `asn1:"optional,tag:0"`
	RecipientInfos       []asn1.RawValue `asn1:"set"`
	EncryptedContentInfo encryptedContentInfo
	UnprotectedAttrs     asn1.RawValue `asn1:"optional,tag:1"`
}

type authEnvelopedData struct {
	Version                  int
	OriginatorInfo           asn1.RawValue   `asn1:"optional,tag:0"`
	RecipientInfos           []asn1.RawValue `asn1:"set"`
	AuthEncryptedContentInfo encryptedContentInfo
	AuthAttrs                asn1.RawValue `asn1:"optional,tag:1"`
	MAC                      []byte
	UnauthAttrs              asn1.RawValue `asn1:"optional,tag:2"`
}

type encryptedContentInfo struct {
	ContentType                asn1.ObjectIdentifier
	ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedContent           asn1.RawValue `asn1:"optional,tag:0"`
}

type keyTransRecipientInfo struct {
	Version                int
	RID                    asn1.RawValue
	KeyEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedKey           []byte
}

type keyAgreeRecipientInfo struct {
	Version                int
	Originator             asn1.RawValue `asn1:"tag:0"` // [0] EXPLICIT, kept whole
	UKM                    []byte        `asn1:"explicit,optional,tag:1"`
	KeyEncryptionAlgorithm pkix.AlgorithmIdentifier
	RecipientEncryptedKeys []recipientEncryptedKey
}

type recipientEncryptedKey struct {
	RID          asn1.RawValue
	EncryptedKey []byte
}

type originatorPublicKey struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

type eccCMSSharedInfo struct {
	KeyInfo     asn1.RawValue
	EntityUInfo []byte `asn1:"explicit,optional,tag:0"`
	SuppPubInfo []byte `asn1:"explicit,tag:2"`
}

type oaepParams struct {
	Hash    pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:0"`
	MGF     pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:1"`
	PSource pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:2"`
}

type gcmParams struct {
	Nonce  []byte
	ICVLen int `asn1:"optional,default:12"`
}

// unmarshal parses exactly one DER value into v: trailing bytes are an error.
func unmarshal(what string, der []byte, v any, params ...string) error {
	var rest []byte
	var err error
	if len(params) > 0 {
		rest, err = asn1.UnmarshalWithParams(der, v, params[0])
	} else {
		rest, err = asn1.Unmarshal(der, v)
	}
	if err != nil {
		return &FormatError{What: what, Err: err}
	}
	if len(rest) != 0 {
		return malformed(what, "%d trailing bytes", len(rest))
	}
	return nil
}

// ridFor is the issuerAndSerialNumber that names cert.
func ridFor(cert *x509.Certificate) (asn1.RawValue, error) {
	der, err := asn1.Marshal(issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber})
	if err != nil {
		return asn1.RawValue{}, err
	}
	return asn1.RawValue{FullBytes: der}, nil
}

// ridMatches reports whether a recipient or signer identifier (an
// issuerAndSerialNumber, or a [0] subjectKeyIdentifier) names cert.
func ridMatches(rid asn1.RawValue, cert *x509.Certificate) bool {
	if rid.Class == asn1.ClassContextSpecific && rid.Tag == 0 {
		// subjectKeyIdentifier [0] IMPLICIT OCTET STRING.
		return len(cert.SubjectKeyId) > 0 && string(rid.Bytes) == string(cert.SubjectKeyId)
	}
	var ias issuerAndSerial
	if _, err := asn1.Unmarshal(rid.FullBytes, &ias); err != nil || ias.Serial == nil {
		return false
	}
	return string(ias.Issuer.FullBytes) == string(cert.RawIssuer) && ias.Serial.Cmp(cert.SerialNumber) == 0
}

// octets returns the content of an OCTET STRING that a BER encoder may
// have split into a constructed string of segments ([0] IMPLICIT
// encryptedContent in streamed output).
func octets(v asn1.RawValue) ([]byte, error) {
	if !v.IsCompound {
		return v.Bytes, nil
	}
	var out []byte
	rest := v.Bytes
	for len(rest) > 0 {
		var seg asn1.RawValue
		var err error
		rest, err = asn1.Unmarshal(rest, &seg)
		if err != nil {
			return nil, err
		}
		if seg.Class != asn1.ClassUniversal || seg.Tag != asn1.TagOctetString || seg.IsCompound {
			return nil, errors.New("constructed OCTET STRING with a segment that is not an OCTET STRING")
		}
		out = append(out, seg.Bytes...)
	}
	return out, nil
}

package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/smallstep/pkcs7"
)

// OIDEnrollmentNameValuePair is Microsoft's signed attribute naming the
// user an enroll-on-behalf-of request is for (szOID_ENROLLMENT_NAME_VALUE_PAIR).
var OIDEnrollmentNameValuePair = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 13, 2, 1}

// requesterNameAttribute is the name in the name/value pair that carries the
// target user ("DOMAIN\user").
const requesterNameAttribute = "requestername"

// maxRequestSize bounds what ParseRequest will look at: a PKCS#10 with an
// RSA-4096 key and a CMS wrapper with an agent chain fit easily.
const maxRequestSize = 64 << 10

// Request is a parsed certificate request: a PKCS#10, alone or wrapped in an
// enroll-on-behalf-of CMS SignedData.
type Request struct {
	// CSR is the PKCS#10 request; its signature (proof of possession of the
	// private key) has been checked.
	CSR *x509.CertificateRequest
	// Agent is the certificate that signed the enroll-on-behalf-of wrapper;
	// nil for a bare PKCS#10. Its signature has been checked; its chain, EKU,
	// revocation and rights are checked by the CA at issuance.
	Agent *x509.Certificate
	// AgentChain holds the other certificates the wrapper carried.
	AgentChain []*x509.Certificate
	// OnBehalfOf is the target user the agent named ("DOMAIN\user" or a
	// plain name), empty for a bare PKCS#10.
	OnBehalfOf string
}

// RequestError is returned for a request that cannot be accepted as given.
type RequestError struct {
	Reason string
	Err    error
}

func (e *RequestError) Error() string {
	if e.Err != nil {
		return "pki: bad request: " + e.Reason + ": " + e.Err.Error()
	}
	return "pki: bad request: " + e.Reason
}

func (e *RequestError) Unwrap() error { return e.Err }

func badRequest(reason string, err error) error { return &RequestError{Reason: reason, Err: err} }

// ParseRequest reads a certificate request in DER or PEM: a PKCS#10
// ("CERTIFICATE REQUEST") or an enroll-on-behalf-of CMS SignedData ("CMS",
// "PKCS7") whose content is a PKCS#10. It checks the PKCS#10 signature and,
// for CMS, the agent's signature over the content; it never panics on
// malformed input.
func ParseRequest(data []byte) (req *Request, err error) {
	if len(data) > maxRequestSize {
		return nil, badRequest(fmt.Sprintf("request is %d bytes, more than the %d allowed", len(data), maxRequestSize), nil)
	}
	der := data
	wantCMS := false
	if block, _ := pem.Decode(data); block != nil {
		switch block.Type {
		case "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST":
		case "CMS", "PKCS7":
			wantCMS = true
		default:
			return nil, badRequest(fmt.Sprintf("unexpected PEM block %q", block.Type), nil)
		}
		der = block.Bytes
	} else if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		return nil, badRequest("malformed PEM", nil)
	}
	if !wantCMS {
		csr, csrErr := parseCSR(der)
		if csrErr == nil {
			return &Request{CSR: csr}, nil
		}
		if !looksLikeCMS(der) {
			return nil, csrErr
		}
	}
	return parseEnrollOnBehalfOf(der)
}

func parseCSR(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, badRequest("not a PKCS#10 request", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, badRequest("PKCS#10 signature does not verify (no proof of possession)", err)
	}
	return csr, nil
}

var oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}

// looksLikeCMS reports whether der is a ContentInfo naming signedData.
func looksLikeCMS(der []byte) bool {
	var ci struct {
		ContentType asn1.ObjectIdentifier
		Rest        asn1.RawValue `asn1:"optional,explicit,tag:0"`
	}
	_, err := asn1.Unmarshal(der, &ci)
	return err == nil && ci.ContentType.Equal(oidSignedData)
}

func parseEnrollOnBehalfOf(der []byte) (req *Request, err error) {
	// pkcs7 has panicked on crafted input before; a request must never take
	// the CA down.
	defer func() {
		if r := recover(); r != nil {
			req, err = nil, badRequest("malformed CMS", fmt.Errorf("%v", r))
		}
	}()
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, badRequest("not a PKCS#10 request nor a CMS SignedData", err)
	}
	if len(p7.Signers) != 1 {
		return nil, badRequest(fmt.Sprintf("enroll-on-behalf-of request must have exactly one signer, has %d", len(p7.Signers)), nil)
	}
	si := p7.Signers[0]
	switch h, _ := hashForDigestOID(si.DigestAlgorithm.Algorithm); h {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
	default:
		return nil, badRequest(fmt.Sprintf("digest algorithm %v is not allowed (want SHA-256 or stronger)", si.DigestAlgorithm.Algorithm), nil)
	}
	if len(si.AuthenticatedAttributes) == 0 {
		return nil, badRequest("enroll-on-behalf-of request has no signed attributes", nil)
	}
	agent := p7.GetOnlySigner()
	if agent == nil {
		return nil, badRequest("the signer's certificate is not in the request", nil)
	}
	// The library does not compare the signed content-type attribute with
	// the content type; a mismatch would let a signature over something
	// else pass as a request.
	var ct asn1.ObjectIdentifier
	if err := p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeContentType, &ct); err != nil {
		return nil, badRequest("no content-type attribute", err)
	}
	if !ct.Equal(pkcs7.OIDData) {
		return nil, badRequest(fmt.Sprintf("content type %v, want id-data", ct), nil)
	}
	if err := p7.Verify(); err != nil {
		return nil, badRequest("agent signature does not verify", err)
	}
	var pair enrollmentNameValuePair
	if err := p7.UnmarshalSignedAttribute(OIDEnrollmentNameValuePair, &pair); err != nil {
		return nil, badRequest("no requester name attribute (1.3.6.1.4.1.311.13.2.1)", err)
	}
	name, err := decodeBMPString(pair.Name)
	if err != nil {
		return nil, badRequest("requester name attribute", err)
	}
	value, err := decodeBMPString(pair.Value)
	if err != nil {
		return nil, badRequest("requester name attribute", err)
	}
	if !strings.EqualFold(name, requesterNameAttribute) || value == "" {
		return nil, badRequest(fmt.Sprintf("name/value attribute %q does not name a requester", name), nil)
	}
	csr, err := parseCSR(p7.Content)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	for _, c := range p7.Certificates {
		if c != agent {
			chain = append(chain, c)
		}
	}
	return &Request{CSR: csr, Agent: agent, AgentChain: chain, OnBehalfOf: value}, nil
}

type enrollmentNameValuePair struct {
	Name  asn1.RawValue
	Value asn1.RawValue
}

func decodeBMPString(v asn1.RawValue) (string, error) {
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagBMPString {
		return "", errors.New("not a BMPString")
	}
	b := v.Bytes
	if len(b)%2 != 0 || len(b) > 1024 {
		return "", errors.New("malformed BMPString")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return string(utf16.Decode(u)), nil
}

func encodeBMPString(s string) asn1.RawValue {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c>>8), byte(c)
	}
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagBMPString, Bytes: b}
}

func hashForDigestOID(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	switch {
	case oid.Equal(pkcs7.OIDDigestAlgorithmSHA256):
		return crypto.SHA256, true
	case oid.Equal(pkcs7.OIDDigestAlgorithmSHA384):
		return crypto.SHA384, true
	case oid.Equal(pkcs7.OIDDigestAlgorithmSHA512):
		return crypto.SHA512, true
	}
	return 0, false
}

// EnrollOnBehalfOf wraps a PKCS#10 request (DER) in a CMS SignedData signed by
// an enrollment agent, naming the target user as "DOMAIN\user" (or a plain
// name) in the requester-name attribute, the way Windows CAs take it. The
// agent key may live on a card: any crypto.Signer works. chain holds the
// agent's intermediate CAs, if any, to include.
func EnrollOnBehalfOf(csrDER []byte, agent *x509.Certificate, agentKey crypto.Signer, onBehalfOf string, chain ...*x509.Certificate) ([]byte, error) {
	if onBehalfOf == "" {
		return nil, errors.New("pki: enroll on behalf of whom?")
	}
	sd, err := pkcs7.NewSignedData(csrDER)
	if err != nil {
		return nil, err
	}
	// The library's default digest is SHA-1.
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	pair := enrollmentNameValuePair{Name: encodeBMPString(requesterNameAttribute), Value: encodeBMPString(onBehalfOf)}
	cfg := pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{{Type: OIDEnrollmentNameValuePair, Value: pair}}}
	if err := sd.AddSignerChain(agent, agentKey, chain, cfg); err != nil {
		return nil, fmt.Errorf("pki: signing enroll-on-behalf-of request: %w", err)
	}
	return sd.Finish()
}

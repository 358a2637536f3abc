package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"time"
)

// CAName is the subject of a new CA, e.g. "EXAMPLE.TEST Root CA".
type CAName struct {
	CommonName   string
	Organization string
}

func (n CAName) pkix() pkix.Name {
	name := pkix.Name{CommonName: n.CommonName}
	if n.Organization != "" {
		name.Organization = []string{n.Organization}
	}
	return name
}

// CreateRoot makes a self-signed root CA certificate for key.
func CreateRoot(key crypto.Signer, name CAName, validity time.Duration, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               name.pkix(),
		NotBefore:             now.Add(-5 * time.Minute).UTC().Truncate(time.Second),
		NotAfter:              now.Add(validity).UTC().Truncate(time.Second),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: creating root certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// CreateCARequest makes the PKCS#10 request an issuing CA sends to its parent.
func CreateCARequest(key crypto.Signer, name CAName) ([]byte, error) {
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: name.pkix()}, key)
}

// CheckCACertificate checks a certificate a parent CA issued for our
// request: it is for key, it is a CA that may sign certificates and CRLs,
// and chain (its issuers, root last) verifies it at time now. It returns the
// full chain, the certificate first.
func CheckCACertificate(cert *x509.Certificate, key crypto.PublicKey, chain []*x509.Certificate, now time.Time) ([]*x509.Certificate, error) {
	if !publicKeysEqual(key, cert.PublicKey) {
		return nil, errors.New("pki: the certificate is not for this CA's key")
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("pki: the certificate is not a CA certificate (basicConstraints CA and keyCertSign needed)")
	}
	if cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, errors.New("pki: the certificate may not sign CRLs (cRLSign key usage needed)")
	}
	// Keep only the chain from cert's issuer up; drop cert itself if the
	// parent's bundle repeats it.
	var parents []*x509.Certificate
	for _, c := range chain {
		if !bytes.Equal(c.Raw, cert.Raw) {
			parents = append(parents, c)
		}
	}
	if len(parents) == 0 {
		return nil, errors.New("pki: the chain up to the root is missing")
	}
	full := append([]*x509.Certificate{cert}, orderChain(cert, parents)...)
	if _, err := VerifyChain(full, now); err != nil {
		return nil, err
	}
	return full, nil
}

// orderChain sorts parents from cert's issuer up to the root, whatever order
// the parent CA's bundle had.
func orderChain(cert *x509.Certificate, parents []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	used := make([]bool, len(parents))
	cur := cert
	for range parents {
		found := false
		for i, p := range parents {
			if !used[i] && bytes.Equal(cur.RawIssuer, p.RawSubject) && cur.CheckSignatureFrom(p) == nil {
				out, used[i], cur, found = append(out, p), true, p, true
				break
			}
		}
		if !found || bytes.Equal(cur.RawIssuer, cur.RawSubject) {
			break
		}
	}
	return out
}

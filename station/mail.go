package station

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/pki"
	"github.com/scstation/scstation/pki/smime"
)

// MailPurpose is what a mail certificate is checked for.
type MailPurpose int

const (
	MailSigning    MailPurpose = iota // digitalSignature or nonRepudiation
	MailEncryption                    // keyEncipherment (RSA) or keyAgreement (EC)
)

// MailTrust is the station's policy for S/MIME certificates: they chain to
// the station CA, are valid now, carry the emailProtection EKU and the key
// usage for their purpose, and the CA database does not list them as
// revoked. Recipients and signers are found by mail address in the
// directory.
type MailTrust struct {
	Roots     *x509.CertPool
	Issuer    *x509.Certificate // the station CA, which issues mail certificates
	DB        *pki.DB
	Directory directory.Directory
	Now       func() time.Time
}

// MailTrust returns the station's mail certificate policy over its CA and
// directory.
func (s *Station) MailTrust() (*MailTrust, error) {
	chain, err := s.CAChain()
	if err != nil {
		return nil, err
	}
	db, err := s.CADB()
	if err != nil {
		return nil, err
	}
	d, err := s.UserDirectory() // embedded, or the external one configured
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(chain[len(chain)-1])
	now := s.Now
	if now == nil {
		now = time.Now
	}
	return &MailTrust{Roots: roots, Issuer: chain[0], DB: db, Directory: d, Now: now}, nil
}

// A MailCertError says why no certificate for an address can be used.
type MailCertError struct {
	Address string
	Reasons []string // one per certificate found, or why none was found
}

func (e *MailCertError) Error() string {
	return fmt.Sprintf("no usable mail certificate for %s: %s", e.Address, strings.Join(e.Reasons, "; "))
}

// Check checks cert for purpose.
func (t *MailTrust) Check(cert *x509.Certificate, purpose MailPurpose) error {
	inter := x509.NewCertPool()
	inter.AddCert(t.Issuer)
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots: t.Roots, Intermediates: inter, CurrentTime: t.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}); err != nil {
		return err
	}
	var need x509.KeyUsage
	switch purpose {
	case MailSigning:
		need = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
	case MailEncryption:
		switch cert.PublicKey.(type) {
		case *rsa.PublicKey:
			need = x509.KeyUsageKeyEncipherment
		case *ecdsa.PublicKey:
			need = x509.KeyUsageKeyAgreement
		default:
			return fmt.Errorf("a %T key cannot receive mail", cert.PublicKey)
		}
	}
	if cert.KeyUsage&need == 0 {
		what := map[MailPurpose]string{MailSigning: "signing", MailEncryption: "encryption"}[purpose]
		return fmt.Errorf("key usage does not allow mail %s", what)
	}
	revoked, when, err := t.Revocation(cert)
	if err != nil {
		return err
	}
	if revoked {
		return fmt.Errorf("revoked at %s", when.UTC().Format(time.RFC3339))
	}
	return nil
}

// Revocation looks cert up in the CA database: certificates the station
// CA did not issue, or that the database does not hold, have an unknown
// status (an error).
func (t *MailTrust) Revocation(cert *x509.Certificate) (bool, time.Time, error) {
	if !bytes.Equal(cert.RawIssuer, t.Issuer.RawSubject) || cert.CheckSignatureFrom(t.Issuer) != nil {
		return false, time.Time{}, errors.New("not issued by the station CA: revocation status unknown")
	}
	rec, err := t.DB.Get(cert.SerialNumber)
	if errors.Is(err, pki.ErrNotFound) {
		return false, time.Time{}, fmt.Errorf("serial %x is not in the CA database", cert.SerialNumber)
	}
	if err != nil {
		return false, time.Time{}, err
	}
	if !bytes.Equal(rec.DER, cert.Raw) {
		return false, time.Time{}, fmt.Errorf("the CA database holds another certificate with serial %x", cert.SerialNumber)
	}
	if rec.Status != pki.StatusValid {
		return true, rec.RevokedAt, nil
	}
	return false, time.Time{}, nil
}

// Certificates returns the certificates published to the user whose mail
// is addr.
func (t *MailTrust) Certificates(ctx context.Context, addr string) ([]*x509.Certificate, error) {
	u, err := t.Directory.UserByMail(ctx, addr)
	if err != nil {
		return nil, err
	}
	ders, err := t.Directory.UserCertificates(ctx, u.Name)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, der := range ders {
		if c, err := x509.ParseCertificate(der); err == nil {
			certs = append(certs, c)
		}
	}
	return certs, nil
}

// Recipient returns the newest certificate of addr that passes Check for
// encryption, or a *MailCertError saying why there is none.
func (t *MailTrust) Recipient(ctx context.Context, addr string) (*x509.Certificate, error) {
	certs, err := t.Certificates(ctx, addr)
	if errors.Is(err, directory.ErrNoSuchUser) {
		return nil, &MailCertError{Address: addr, Reasons: []string{"no user with this mail address in the directory"}}
	}
	if err != nil {
		return nil, err
	}
	e := &MailCertError{Address: addr}
	var best *x509.Certificate
	for _, c := range certs {
		if !slices.ContainsFunc(c.EmailAddresses, func(a string) bool { return strings.EqualFold(a, addr) }) {
			e.Reasons = append(e.Reasons, fmt.Sprintf("serial %x: not for this address", c.SerialNumber))
			continue
		}
		if err := t.Check(c, MailEncryption); err != nil {
			e.Reasons = append(e.Reasons, fmt.Sprintf("serial %x: %v", c.SerialNumber, err))
			continue
		}
		// The newest; on a tie the one published last.
		if best == nil || !c.NotBefore.Before(best.NotBefore) {
			best = c
		}
	}
	if best != nil {
		return best, nil
	}
	if len(certs) == 0 {
		e.Reasons = append(e.Reasons, "the directory holds no certificate for this user")
	}
	return nil, e
}

// Recipients returns one checked encryption certificate per address.
func (t *MailTrust) Recipients(ctx context.Context, addrs []string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	var errs []error
	for _, a := range addrs {
		c, err := t.Recipient(ctx, a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// VerifyOptions checks signed mail the station's way: the signer chains to
// the station CA, is not revoked, and when the message does not carry its
// certificate it is looked up by the From address in the directory.
func (t *MailTrust) VerifyOptions(ctx context.Context) smime.VerifyOptions {
	inter := x509.NewCertPool()
	inter.AddCert(t.Issuer)
	return smime.VerifyOptions{
		Roots: t.Roots, Intermediates: inter, CurrentTime: t.Now(),
		Revocation: t.Revocation,
		LookupSigner: func(addr string) ([]*x509.Certificate, error) {
			return t.Certificates(ctx, addr)
		},
	}
}

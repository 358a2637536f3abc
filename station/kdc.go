package station

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/scstation/scstation/directory"
	"github.com/scstation/scstation/internal/atomicfile"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/pki"
)

// The KDC's files: its key store (krbtgt, services, administrators) and
// its PKINIT identity from the CA's "kdc" template.
const (
	kdcDir      = "kdc"
	kdcKeyFile  = "kdc/pkinit.key"
	kdcCertFile = "kdc/pkinit.crt"
)

// DirectoryPrincipals adapts the directory (embedded or over LDAP) to the
// KDC's PrincipalStore: users by login name or UPN, with their objectSid,
// altSecurityIdentities and ACCOUNTDISABLE; and services by
// servicePrincipalName (as AD finds them; case-insensitive), with the
// keys sealed on their account, which Keys opens. Users have no Kerberos
// keys here (they log on with smart cards); administrators' password keys
// live in the KDC's own store (kdc.Store).
type DirectoryPrincipals struct {
	Dir directory.Directory
	// Keys opens the sealed service keys; nil looks up no services.
	Keys *kdc.Store
}

// ServiceDirectory is a directory that keeps service accounts with sealed
// keys: the embedded one. Over LDAP the keys are never readable, so an
// external directory serves no services to the KDC.
type ServiceDirectory interface {
	ServiceBySPN(ctx context.Context, spn string) (*directory.ServiceAccount, error)
}

// LookupUser implements kdc.PrincipalStore.
func (d DirectoryPrincipals) LookupUser(ctx context.Context, name string) (*kdc.Principal, error) {
	// A Kerberos name is never a DN, and a name with '/' is not a user.
	if name == "" || strings.ContainsAny(name, "=/,\x00") {
		return nil, kdc.ErrUnknownPrincipal
	}
	u, err := d.Dir.LookupUser(ctx, name)
	if errors.Is(err, directory.ErrNoSuchUser) {
		return nil, kdc.ErrUnknownPrincipal
	}
	if err != nil {
		return nil, err
	}
	return &kdc.Principal{Name: u.Name, UPN: u.UPN, SID: u.SID, AltSecurityIdentities: u.AltSecurityIdentities, Disabled: u.Disabled}, nil
}

// LookupService implements kdc.PrincipalStore: the account with the
// servicePrincipalName, its sealed keys opened. A disabled account, or
// one with an SPN but no keys from scstation kdc service add, is unknown
// to the KDC (KDC_ERR_S_PRINCIPAL_UNKNOWN).
func (d DirectoryPrincipals) LookupService(ctx context.Context, name string) (*kdc.Principal, error) {
	sd, ok := d.Dir.(ServiceDirectory)
	if !ok || d.Keys == nil {
		return nil, kdc.ErrUnknownPrincipal
	}
	a, err := sd.ServiceBySPN(ctx, name)
	if errors.Is(err, directory.ErrNoSuchService) {
		return nil, kdc.ErrUnknownPrincipal
	}
	if err != nil {
		return nil, err
	}
	if a.Disabled || len(a.Keys) == 0 {
		return nil, kdc.ErrUnknownPrincipal
	}
	keys, err := d.Keys.OpenKeys(a.Name, a.Keys)
	if err != nil {
		return nil, fmt.Errorf("station: the keys of %s on %s: %w", name, a.DN, err)
	}
	return &kdc.Principal{Name: name, Keys: keys}, nil
}

// CARevocation checks client certificates against the CA database:
// certificates issued by ca that the database marks revoked or on hold are
// refused, and ones it does not know (or knows with other contents) have
// an unknown status. Certificates of other trust anchors are not checked
// here (no CRL fetching yet).
func CARevocation(db *pki.DB, ca *x509.Certificate) kdc.RevocationChecker {
	return func(cert *x509.Certificate) (bool, string, error) {
		if !bytes.Equal(cert.RawIssuer, ca.RawSubject) || cert.CheckSignatureFrom(ca) != nil {
			return false, "", nil
		}
		rec, err := db.Get(cert.SerialNumber)
		if errors.Is(err, pki.ErrNotFound) {
			return false, "", fmt.Errorf("serial %x is not in the CA database", cert.SerialNumber)
		}
		if err != nil {
			return false, "", err
		}
		if !bytes.Equal(rec.DER, cert.Raw) {
			return false, "", fmt.Errorf("the CA database holds another certificate with serial %x", cert.SerialNumber)
		}
		if rec.Status != pki.StatusValid {
			return true, rec.Reason.String(), nil
		}
		return false, "", nil
	}
}

// KDCStore opens the KDC's key store, creating it (with new krbtgt keys)
// on first use. It is opened once and shared, so that changes made by
// forwarded commands reach the running KDC.
func (s *Station) KDCStore() (*kdc.Store, error) {
	sh := s.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.kdc == nil {
		st, err := kdc.OpenStore(s.path(kdcDir), s.Config.Realm)
		if err != nil {
			return nil, err
		}
		sh.kdc = st
	}
	return sh.kdc, nil
}

// kdcRenewBefore is how long before expiry the KDC certificate is replaced.
const kdcRenewBefore = 30 * 24 * time.Hour

// KDCIdentity returns the KDC's PKINIT certificate chain (the KDC's first)
// and key. When there is none, or it expires within 30 days, a new key is
// made and the station CA issues a certificate from the "kdc" template
// (id-pkinit-san krbtgt/REALM@REALM, the station's host name), which may
// need the CA passphrase. The key is stored unencrypted, mode 0600: the
// KDC starts unattended.
func (s *Station) KDCIdentity(pass PassphraseFunc) ([]*x509.Certificate, crypto.Signer, error) {
	keyPath, certPath := s.path(kdcKeyFile), s.path(kdcCertFile)
	if chain, key, err := s.loadKDCIdentity(keyPath, certPath); err == nil {
		if s.Now().Add(kdcRenewBefore).Before(chain[0].NotAfter) {
			return chain, key, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		s.Log.Warn("KDC certificate unreadable; issuing a new one", "err", err)
	}
	alg := s.Config.CA.KeyAlgorithm
	if alg == "" {
		alg = pki.P256
	}
	issued, key, err := s.issueKDC(context.Background(), alg, s.ServiceHosts()[0], "station", "KDC", pass)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := pki.MarshalPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(s.path(kdcDir), 0o700); err != nil {
		return nil, nil, err
	}
	if err := atomicfile.Write(keyPath, keyPEM, 0o600); err != nil {
		return nil, nil, err
	}
	if err := atomicfile.Write(certPath, encodeCerts(issued.Chain...), 0o644); err != nil {
		return nil, nil, err
	}
	return issued.Chain, key, nil
}

// issueKDC makes a key of alg and has the CA issue a KDC certificate for
// host from the "kdc" template, recorded as issued by actor; which names
// the KDC ("KDC", "external KDC") in the error and the log line.
func (s *Station) issueKDC(ctx context.Context, alg pki.KeyAlgorithm, host, actor, which string, pass PassphraseFunc) (*pki.Issued, crypto.Signer, error) {
	key, err := pki.GenerateKey(alg)
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, err
	}
	req, err := pki.ParseRequest(csr)
	if err != nil {
		return nil, nil, err
	}
	ca, err := s.CA(pass)
	if err != nil {
		return nil, nil, err
	}
	issued, err := ca.Issue(ctx, pki.IssueRequest{Template: "kdc", Request: req, Requester: pki.RequesterOperator, Host: host})
	if err != nil {
		return nil, nil, fmt.Errorf("station: issuing the %s certificate: %w", which, err)
	}
	if err := s.recordIssued(issueRecordBy(actor, "kdc", host), issued); err != nil {
		return nil, nil, err
	}
	s.Log.Info(which+" certificate issued", "host", host, "serial", fmt.Sprintf("%x", issued.Record.Serial))
	return issued, key, nil
}

func (s *Station) loadKDCIdentity(keyPath, certPath string) ([]*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	chain, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, nil, err
	}
	if len(chain) == 0 {
		return nil, nil, errors.New("station: the KDC certificate file is empty")
	}
	key, err := pki.ParsePrivateKeyPEM(keyPEM, nil)
	if err != nil {
		return nil, nil, err
	}
	return chain, key, nil
}

// KDCOptions say how to run the embedded KDC.
type KDCOptions struct {
	// UDP and TCP are the listen addresses ("" turns one off).
	UDP, TCP string
	// StrongMapping is the certificate mapping enforcement mode.
	StrongMapping kdc.MappingMode
	// Passphrase unlocks the CA key if the KDC certificate must be issued.
	Passphrase PassphraseFunc
	Log        *slog.Logger
}

// NewKDC builds the embedded KDC on the station's data: its key store,
// the directory's users, the CA root as trust anchor, revocation from
// the CA database, and its PKINIT identity.
func (s *Station) NewKDC(opts KDCOptions) (*kdc.KDC, error) {
	store, err := s.KDCStore()
	if err != nil {
		return nil, err
	}
	chain, err := s.CAChain()
	if err != nil {
		return nil, err
	}
	db, err := s.CADB()
	if err != nil {
		return nil, err
	}
	users, err := s.UserDirectory()
	if err != nil {
		return nil, err
	}
	ident, key, err := s.KDCIdentity(opts.Passphrase)
	if err != nil {
		return nil, err
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(chain[len(chain)-1])
	for _, c := range chain[:len(chain)-1] {
		inters.AddCert(c)
	}
	log := opts.Log
	if log == nil {
		log = s.Log
	}
	return kdc.New(kdc.Config{
		Realm: s.Config.Realm, Store: store,
		Principals:  kdc.Stores{store, DirectoryPrincipals{Dir: users, Keys: store}},
		Certificate: ident[0], Key: key, Chain: ident[1:],
		Roots: roots, Intermediates: inters,
		Revocation:    CARevocation(db, chain[0]),
		StrongMapping: opts.StrongMapping,
		UDP:           opts.UDP, TCP: opts.TCP,
		Now: s.Now, Log: log,
	})
}

package station

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/scstation/scstation/internal/atomicfile"
	"github.com/scstation/scstation/pki"
)

// The embedded services' TLS key and certificate (LDAPS, StartTLS).
const (
	servicesDir     = "services"
	serviceKeyFile  = "services/tls.key"
	serviceCertFile = "services/tls.crt"
	// serviceRenewBefore is how long before expiry the certificate is
	// replaced.
	serviceRenewBefore = 30 * 24 * time.Hour
)

// ServiceHosts are the DNS names the services' certificate carries: the
// configured host name, and localhost for clients on the same machine.
func (s *Station) ServiceHosts() []string {
	hosts := []string{}
	if h := s.Config.Services.Hostname; h != "" {
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 || hosts[0] != "localhost" {
		hosts = append(hosts, "localhost")
	}
	return hosts
}

// ServiceTLS returns the certificate the embedded services present. When
// there is none, or it expires within 30 days, or it is for other host
// names, a new key is made and the station CA issues a certificate from the
// "server" template (which may need the CA passphrase). The key is stored
// unencrypted (mode 0600): services start unattended.
func (s *Station) ServiceTLS(pass PassphraseFunc) (*tls.Certificate, error) {
	keyPath, certPath := s.path(serviceKeyFile), s.path(serviceCertFile)
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && s.serviceCertCurrent(&cert) {
		return &cert, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.Log.Warn("service certificate unreadable; issuing a new one", "err", err)
	}
	key, err := pki.GenerateKey(pki.P256)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, err
	}
	ca, err := s.CA(pass)
	if err != nil {
		return nil, err
	}
	req, err := pki.ParseRequest(csr)
	if err != nil {
		return nil, err
	}
	hosts := s.ServiceHosts()
	issued, err := ca.Issue(context.Background(), pki.IssueRequest{Template: "server", Request: req, Requester: pki.RequesterOperator, Host: hosts[0], AltHosts: hosts[1:]})
	if err != nil {
		return nil, fmt.Errorf("station: issuing the services' certificate: %w", err)
	}
	if err := s.recordIssued(issueRecordBy("station", "server", hosts[0]), issued); err != nil {
		return nil, err
	}
	keyPEM, err := pki.MarshalPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.path(servicesDir), 0o700); err != nil {
		return nil, err
	}
	// Key first: a certificate without its key would be useless, a key
	// without a certificate is replaced next time.
	if err := atomicfile.Write(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(certPath, encodeCerts(issued.Chain...), 0o644); err != nil {
		return nil, err
	}
	s.Log.Info("service certificate issued", "hosts", hosts, "serial", fmt.Sprintf("%x", issued.Record.Serial))
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

// serviceCertCurrent reports whether a loaded certificate can be used on.
func (s *Station) serviceCertCurrent(c *tls.Certificate) bool {
	leaf := c.Leaf
	if leaf == nil {
		return false
	}
	if s.Now().Add(serviceRenewBefore).After(leaf.NotAfter) {
		return false
	}
	for _, h := range s.ServiceHosts() {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// ServiceCertPath is the services' certificate chain (PEM), for clients
// that want to see it.
func (s *Station) ServiceCertPath() string { return filepath.Join(s.Dir, serviceCertFile) }

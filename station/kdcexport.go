package station

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/scstation/scstation/internal/atomicfile"
	"github.com/scstation/scstation/kdc"
	"github.com/scstation/scstation/pki"
)

// The files ExportKDC writes in its output directory.
const (
	ExportKDCCert  = "kdc.pem"   // the KDC certificate (and intermediates)
	ExportKDCKey   = "kdc.key"   // its key, mode 0600
	ExportAnchors  = "ca.pem"    // the station CA chain: pkinit_anchors
	ExportCRL      = "crl.pem"   // the current CRL: pkinit_revoke
	ExportKDCConf  = "kdc.conf"  // the [realms] entry for MIT krb5kdc
	ExportKrb5Conf = "krb5.conf" // the clients' side
)

// ExportedEnctypes are the enctypes the exported kdc.conf lets the
// external KDC use: those of the embedded KDC, so that exported keytabs
// match.
const ExportedEnctypes = "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal aes256-cts-hmac-sha384-192:normal"

// ErrBadExport is wrapped by the errors for an unusable export request
// (host name, principal, output directory).
var ErrBadExport = errors.New("station: kdc export")

// KDCExportOptions say what ExportKDC writes.
type KDCExportOptions struct {
	// Dir is the output directory, made (mode 0700) when missing. Its
	// files are named in kdc.conf by their absolute paths, so export to
	// where the KDC will read them, or edit the paths.
	Dir string
	// Hostname is the external KDC's DNS name, put in its certificate
	// (default: [services] hostname).
	Hostname string
	// Principals are service principals (host/www.example.test, with or
	// without @REALM) whose keytabs are written as SERVICE_HOST.keytab.
	Principals []string
	// Passphrase unlocks the CA key: to issue the KDC certificate and to
	// sign the CRL.
	Passphrase PassphraseFunc
}

// KDCExport is what ExportKDC wrote.
type KDCExport struct {
	Dir string
	// Files are the files written, relative to Dir.
	Files []string
	// Certificate is the external KDC's certificate; Issued says it was
	// issued now (else the valid one already in Dir was kept).
	Certificate *x509.Certificate
	Issued      bool
	// Superseded is the previously exported KDC certificate, revoked as
	// superseded when a new one replaced it; nil when none was.
	Superseded *x509.Certificate
	// CRL is the CRL just published and exported.
	CRL *x509.RevocationList
}

// hostnameRE is a DNS name (letters, digits, hyphens; dot-separated).
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// principalRE is a service name safe to use in a file name too.
var principalRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)

// ExportKDC writes what an external (MIT or Heimdal) KDC needs to do
// PKINIT for this station's users: a KDC certificate from the CA's "kdc"
// template (id-pkinit-san krbtgt/REALM@REALM, the KDC EKU, the KDC's host
// name) and its key, the trust anchors, a freshly signed CRL, keytabs of
// the requested services, and kdc.conf and krb5.conf snippets naming
// them. A KDC certificate already in Dir is kept while it is valid,
// matches its key and the host name, is not revoked and has more than 30
// days to run; otherwise a new key is made, a certificate issued, and the
// one it replaces revoked as superseded. A bad request is refused before
// anything is issued or written; each file is replaced atomically.
func (s *Station) ExportKDC(ctx context.Context, opts KDCExportOptions) (*KDCExport, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("%w: no output directory", ErrBadExport)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	host := opts.Hostname
	if host == "" {
		host = s.Config.Services.Hostname
	}
	if len(host) > 253 || !hostnameRE.MatchString(host) {
		return nil, fmt.Errorf("%w: %q is not a DNS host name", ErrBadExport, host)
	}
	// Keytabs first: an unknown service refuses the export before the CA
	// issues or signs anything.
	keytabs := map[string][]byte{}
	var keytabFiles []string
	for _, p := range opts.Principals {
		name, realm, hasRealm := strings.Cut(p, "@")
		if hasRealm && realm != s.Config.Realm {
			return nil, fmt.Errorf("%w: %s is not in the realm %s", ErrBadExport, p, s.Config.Realm)
		}
		if !principalRE.MatchString(name) || strings.Contains(name, "..") {
			return nil, fmt.Errorf("%w: %q is not a principal name", ErrBadExport, p)
		}
		file := strings.ReplaceAll(name, "/", "_") + ".keytab"
		if _, dup := keytabs[file]; dup {
			continue
		}
		kt, err := s.exportKeytab(name)
		if err != nil {
			return nil, err
		}
		keytabs[file] = kt
		keytabFiles = append(keytabFiles, file)
	}
	anchors, err := s.CAChain()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	out := &KDCExport{Dir: dir}
	write := func(name string, data []byte, mode os.FileMode) error {
		if err := atomicfile.Write(filepath.Join(dir, name), data, mode); err != nil {
			return err
		}
		out.Files = append(out.Files, name)
		return nil
	}
	chain, old, err := s.exportedKDCIdentity(dir, host, anchors)
	if err != nil {
		s.Log.Info("issuing a KDC certificate for the external KDC", "host", host, "reason", err)
		var key crypto.Signer
		if chain, key, err = s.issueExternalKDC(ctx, host, opts.Passphrase); err != nil {
			return nil, err
		}
		out.Issued = true
		// Key first: a certificate without its key is useless, a key
		// without a certificate is replaced next time.
		keyPEM, err := pki.MarshalPrivateKey(key)
		if err == nil {
			err = write(ExportKDCKey, keyPEM, 0o600)
		}
		if err == nil {
			err = write(ExportKDCCert, exportCertFile(chain), 0o644)
		}
		if err != nil {
			// Issued but not delivered: no valid certificate is left
			// without a holder.
			if _, rerr := s.revoke(chain[0].SerialNumber, pki.ReasonCessationOfOperation, false); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return nil, err
		}
		if old != nil {
			if _, err := s.revoke(old.SerialNumber, pki.ReasonSuperseded, false); err != nil {
				return nil, fmt.Errorf("station: revoking the replaced KDC certificate %x: %w", old.SerialNumber, err)
			}
			out.Superseded = old
		}
	}
	out.Certificate = chain[0]
	crl, err := s.PublishCRL(opts.Passphrase)
	if err != nil {
		return nil, err
	}
	out.CRL = crl
	if err := write(ExportAnchors, encodeCerts(anchors...), 0o644); err != nil {
		return nil, err
	}
	if err := write(ExportCRL, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.Raw}), 0o644); err != nil {
		return nil, err
	}
	for _, f := range keytabFiles {
		if err := write(f, keytabs[f], 0o600); err != nil {
			return nil, err
		}
	}
	if err := write(ExportKDCConf, []byte(s.exportKDCConf(dir, host, keytabFiles)), 0o644); err != nil {
		return nil, err
	}
	if err := write(ExportKrb5Conf, []byte(s.exportKrb5Conf(dir, host)), 0o644); err != nil {
		return nil, err
	}
	s.Log.Info("external KDC files exported", "dir", dir, "host", host, "serial", fmt.Sprintf("%x", chain[0].SerialNumber), "issued", out.Issued, "keytabs", len(keytabFiles))
	return out, nil
}

// exportKeytab is a service's keytab, as scstation kdc keytab writes it.
func (s *Station) exportKeytab(name string) ([]byte, error) {
	kt, err := s.ServiceKeytab(name)
	if errors.Is(err, kdc.ErrUnknownPrincipal) {
		return nil, fmt.Errorf("%w: no principal %s@%s in the KDC (scstation kdc service %s creates a service)", ErrBadExport, name, s.Config.Realm, name)
	}
	return kt, err
}

// exportCertFile is the KDC certificate and the intermediates a client may
// need, without the self-signed root (that is in the anchors).
func exportCertFile(chain []*x509.Certificate) []byte {
	certs := chain
	if n := len(certs); n > 1 && bytes.Equal(certs[n-1].RawIssuer, certs[n-1].RawSubject) {
		certs = certs[:n-1]
	}
	return encodeCerts(certs...)
}

// exportedKDCIdentity returns the KDC certificate chain already exported
// to dir when it can be kept, else why not, and the certificate itself
// when it is a valid one of this CA that a new one should supersede.
func (s *Station) exportedKDCIdentity(dir, host string, anchors []*x509.Certificate) (chain []*x509.Certificate, old *x509.Certificate, err error) {
	certs, key, err := s.loadKDCIdentity(filepath.Join(dir, ExportKDCKey), filepath.Join(dir, ExportKDCCert))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, errors.New("none exported yet")
	}
	if err != nil {
		return nil, nil, err
	}
	leaf := certs[0]
	db, err := s.CADB()
	if err != nil {
		return nil, nil, err
	}
	rec, err := db.Get(leaf.SerialNumber)
	if err != nil {
		return nil, nil, fmt.Errorf("the certificate is not in the CA database: %w", err)
	}
	if !bytes.Equal(rec.DER, leaf.Raw) || rec.Template != "kdc" {
		return nil, nil, errors.New("the CA database holds another certificate with its serial")
	}
	if rec.Status != pki.StatusValid {
		return nil, nil, fmt.Errorf("the certificate is revoked (%s)", rec.Reason)
	}
	// From here on the certificate is ours and valid: a replacement
	// supersedes it.
	if !publicKeyMatches(leaf, key) {
		return nil, leaf, errors.New("the key does not match the certificate")
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return nil, leaf, fmt.Errorf("the certificate is not for %s", host)
	}
	if !s.Now().Add(kdcRenewBefore).Before(leaf.NotAfter) {
		return nil, leaf, errors.New("the certificate expires within 30 days")
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(anchors[len(anchors)-1])
	for _, c := range anchors[:len(anchors)-1] {
		inters.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: s.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, leaf, fmt.Errorf("the certificate does not verify: %w", err)
	}
	return append([]*x509.Certificate{leaf}, anchors...), nil, nil
}

// publicKeyMatches reports whether key is the certificate's key.
func publicKeyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// issueExternalKDC makes a key and has the CA issue the external KDC's
// certificate from the "kdc" template.
func (s *Station) issueExternalKDC(ctx context.Context, host string, pass PassphraseFunc) ([]*x509.Certificate, crypto.Signer, error) {
	// MIT before 1.22 signs PKINIT replies with RSA only (REFERENCE.md §5):
	// an external KDC gets an RSA key whatever the CA's own algorithm.
	issued, key, err := s.issueKDC(ctx, pki.RSA2048, host, s.actor(), "external KDC", pass)
	if err != nil {
		return nil, nil, err
	}
	return issued.Chain, key, nil
}

// exportKDCConf is the [realms] entry for MIT krb5kdc's kdc.conf.
func (s *Station) exportKDCConf(dir, host string, keytabs []string) string {
	realm := s.Config.Realm
	p := func(name string) string { return filepath.Join(dir, name) }
	var b strings.Builder
	fmt.Fprintf(&b, "# PKINIT for %s on the external KDC %s, written by scstation kdc export.\n", realm, host)
	b.WriteString("# Merge this realm entry into the KDC's kdc.conf (it keeps its own\n" +
		"# database_name, acl_file, key_stash_file), or add \"include " + p(ExportKDCConf) + "\".\n" +
		"# The KDC does not read the station's directory: create each user with\n" +
		"#   kadmin.local -q \"addprinc +requires_preauth -nokey USER\"\n" +
		"# and re-run the export before the CRL's next update (openssl crl -in crl.pem -noout -nextupdate),\n" +
		"# or the KDC refuses every certificate once the CRL has expired.\n")
	if len(keytabs) > 0 {
		b.WriteString("# Keytabs (for the service hosts; the same keys the station's KDC holds):\n")
		for _, k := range keytabs {
			b.WriteString("#   " + p(k) + "\n")
		}
	}
	fmt.Fprintf(&b, "[realms]\n\t%s = {\n", realm)
	fmt.Fprintf(&b, "\t\tpkinit_identity = FILE:%s,%s\n", p(ExportKDCCert), p(ExportKDCKey))
	fmt.Fprintf(&b, "\t\tpkinit_anchors = FILE:%s\n", p(ExportAnchors))
	fmt.Fprintf(&b, "\t\tpkinit_revoke = FILE:%s\n", p(ExportCRL))
	b.WriteString("\t\tpkinit_eku_checking = scLogin\n")
	b.WriteString("\t\tpkinit_allow_upn = true\n")
	fmt.Fprintf(&b, "\t\tsupported_enctypes = %s\n", ExportedEnctypes)
	b.WriteString("\t}\n")
	return b.String()
}

// exportKrb5Conf is the clients' krb5.conf entry for the realm.
func (s *Station) exportKrb5Conf(dir, host string) string {
	realm, domain := s.Config.Realm, strings.ToLower(s.Config.Domain)
	var b strings.Builder
	fmt.Fprintf(&b, "# Clients of %s on the external KDC %s, written by scstation kdc export.\n", realm, host)
	b.WriteString("# On other machines, copy ca.pem and point pkinit_anchors at the copy.\n")
	fmt.Fprintf(&b, "[libdefaults]\n\tdefault_realm = %s\n", realm)
	fmt.Fprintf(&b, "[realms]\n\t%s = {\n\t\tkdc = %s\n\t\tpkinit_anchors = FILE:%s\n\t\tpkinit_kdc_hostname = %s\n\t}\n", realm, host, filepath.Join(dir, ExportAnchors), host)
	fmt.Fprintf(&b, "[domain_realm]\n\t.%s = %s\n\t%s = %s\n", domain, realm, domain, realm)
	return b.String()
}

package kdc

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scstation/scstation/pki"
)

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

// certDescription names a certificate in log lines.
func certDescription(c *x509.Certificate) string {
	return fmt.Sprintf("subject %q serial %s issuer %q", pki.NameString(c.RawSubject),
		c.SerialNumber.Text(16), pki.NameString(c.RawIssuer))
}

// checkClientCertificate checks a PKINIT client certificate: validity,
// chain to a trust anchor, extended key usage, revocation. extra are the
// other certificates the client sent (intermediates).
func (k *KDC) checkClientCertificate(cert *x509.Certificate, extra []*x509.Certificate, now time.Time) *Error {
	desc := certDescription(cert)
	if now.Before(cert.NotBefore) {
		return refuseQuiet(ErrInvalidCertificate, "certificate not yet valid", "client certificate (%s) is not valid before %s", desc, cert.NotBefore.Format(time.RFC3339))
	}
	if now.After(cert.NotAfter) {
		return refuseQuiet(ErrInvalidCertificate, "certificate expired", "client certificate (%s) expired %s", desc, cert.NotAfter.Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	if k.cfg.Intermediates != nil {
		inter = k.cfg.Intermediates.Clone()
	}
	for _, c := range extra {
		if c != cert {
			inter.AddCert(c)
		}
	}
	_, err := cert.Verify(x509.VerifyOptions{
		Roots: k.cfg.Roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return refuseQuiet(ErrInvalidCertificate, "certificate chain expired", "client certificate (%s): %v", desc, err)
		}
		return refuseQuiet(ErrCantVerifyCertificate, "cannot verify certificate", "client certificate (%s) does not chain to a trusted CA: %v", desc, err)
	}
	if !hasEKU(cert, pki.OIDPKINITClientAuth) && !hasEKU(cert, pki.OIDSmartCardLogon) {
		return refuseQuiet(ErrInconsistentKeyPurpose, "certificate not for smart-card logon",
			"client certificate (%s) has neither id-pkinit-KPClientAuth nor smart card logon EKU", desc)
	}
	if k.cfg.Revocation != nil {
		revoked, reason, err := k.cfg.Revocation(cert)
		if err != nil {
			return refuseQuiet(ErrRevocationUnknown, "revocation status unknown", "client certificate (%s): revocation check failed: %v", desc, err)
		}
		if revoked {
			return refuseQuiet(ErrRevokedCertificate, "certificate revoked", "client certificate (%s) is revoked (%s)", desc, reason)
		}
	}
	return nil
}

func hasEKU(c *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	return slices.ContainsFunc(c.UnknownExtKeyUsage, oid.Equal)
}

// mapCertificate checks that the certificate belongs to the account the
// client asked for, the way the Windows KDC does (RFC 4556 §3.2.2 leaves
// the mapping to local policy):
//
//   - the certificate's UPN (MS otherName) equals the account's
//     userPrincipalName, case-insensitively; or one of its id-pkinit-san
//     principals is the account's principal in this realm (login name,
//     case-insensitively) or spells the account's UPN. Otherwise
//     KDC_ERR_CLIENT_NAME_MISMATCH (75).
//   - with mapping not off, a SID extension must equal the account's
//     objectSid; a mismatch is KDC_ERR_CLIENT_NAME_MISMATCH (75) too: the
//     certificate names another account.
//   - with full enforcement, a certificate that is only weakly mapped (no
//     SID extension and no strong altSecurityIdentities entry) is refused
//     with KDC_ERR_CERTIFICATE_MISMATCH (66).
//
// It returns how the certificate was mapped, for the log.
func (k *KDC) mapCertificate(cert *x509.Certificate, acct *Principal) (string, *Error) {
	desc := certDescription(cert)
	san, _, err := pki.SubjectAltNamesOf(cert)
	if err != nil {
		return "", refuseQuiet(ErrInvalidCertificate, "invalid certificate", "client certificate (%s): subjectAltName: %v", desc, err)
	}
	var names []string
	matched := ""
	if san.UPN != "" {
		names = append(names, "upn:"+san.UPN)
		if acct.UPN != "" && strings.EqualFold(san.UPN, acct.UPN) {
			matched = "upn"
		}
	}
	for _, p := range san.Principals {
		names = append(names, "pkinit-san:"+p.String())
		if matched != "" {
			continue
		}
		if strings.EqualFold(p.Realm, k.realm) && len(p.Components) == 1 && strings.EqualFold(p.Components[0], acct.Name) {
			matched = "pkinit-san"
		} else if acct.UPN != "" && strings.EqualFold(strings.Join(p.Components, "/")+"@"+p.Realm, acct.UPN) {
			matched = "pkinit-san"
		}
	}
	if matched == "" {
		return "", refuseQuiet(ErrClientNameMismatch, "client name mismatch",
			"client certificate (%s) names %v, not account %s (UPN %q)", desc, names, acct.Name, acct.UPN)
	}
	if k.cfg.StrongMapping == MappingOff {
		return matched, nil
	}
	sid, hasSID, err := pki.SIDOf(cert)
	if err != nil {
		return "", refuseQuiet(ErrInvalidCertificate, "invalid certificate", "client certificate (%s): SID extension: %v", desc, err)
	}
	if hasSID {
		if acct.SID == "" || !strings.EqualFold(sid, acct.SID) {
			return "", refuseQuiet(ErrClientNameMismatch, "client name mismatch",
				"client certificate (%s) carries SID %s, account %s has objectSid %q", desc, sid, acct.Name, acct.SID)
		}
		return matched + "+sid", nil
	}
	if m := pki.MatchAltSecurityIdentity(cert, acct.AltSecurityIdentities); m != "" {
		return matched + "+altSecurityIdentities:" + m, nil
	}
	if k.cfg.StrongMapping == MappingFull {
		return "", refuseQuiet(ErrCertificateMismatch, "certificate not strongly mapped",
			"client certificate (%s) has no SID extension and account %s no strong altSecurityIdentities for it (full enforcement)", desc, acct.Name)
	}
	k.log.Warn("kdc: weak certificate mapping accepted (compatibility mode)", "account", acct.Name, "certificate", desc, "mapping", matched)
	return matched + "(weak)", nil
}

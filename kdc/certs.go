package kdc

import (
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
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
	return fmt.Sprintf("subject %q serial %s issuer %q", strings.Join(nameRDNs(c.RawSubject), ","),
		c.SerialNumber.Text(16), strings.Join(nameRDNs(c.RawIssuer), ","))
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
	if m := strongAltSecurityIdentity(cert, acct.AltSecurityIdentities); m != "" {
		return matched + "+" + m, nil
	}
	if k.cfg.StrongMapping == MappingFull {
		return "", refuseQuiet(ErrCertificateMismatch, "certificate not strongly mapped",
			"client certificate (%s) has no SID extension and account %s no strong altSecurityIdentities for it (full enforcement)", desc, acct.Name)
	}
	k.log.Warn("kdc: weak certificate mapping accepted (compatibility mode)", "account", acct.Name, "certificate", desc, "mapping", matched)
	return matched + "(weak)", nil
}

// strongAltSecurityIdentity returns which strong altSecurityIdentities
// form names the certificate, or "":
//
//	X509:<I>issuer<SR>serial  issuer DN (either RDN order) and serial in hex,
//	                          byte-reversed as AD writes it (or not)
//	X509:<SKI>hex             the subject key identifier
//	X509:<SHA1-PUKEY>hex      the SHA-1 of the certificate (its thumbprint)
func strongAltSecurityIdentity(cert *x509.Certificate, ids []string) string {
	for _, id := range ids {
		rest, ok := cutPrefixFold(id, "X509:")
		if !ok {
			continue
		}
		switch {
		case hasPrefixFold(rest, "<I>"):
			issuer, serial, ok := strings.Cut(rest[3:], "<SR>")
			if !ok || strings.Contains(issuer, "<S>") {
				continue // <I>…<S>… is a weak mapping
			}
			if serialMatches(cert, serial) && dnMatches(nameRDNs(cert.RawIssuer), issuer) {
				return "altSecurityIdentities:issuer-serial"
			}
		case hasPrefixFold(rest, "<SKI>"):
			if len(cert.SubjectKeyId) > 0 && strings.EqualFold(rest[5:], hex.EncodeToString(cert.SubjectKeyId)) {
				return "altSecurityIdentities:ski"
			}
		case hasPrefixFold(rest, "<SHA1-PUKEY>"):
			sum := sha1.Sum(cert.Raw)
			if strings.EqualFold(rest[12:], hex.EncodeToString(sum[:])) {
				return "altSecurityIdentities:sha1"
			}
		}
	}
	return ""
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if hasPrefixFold(s, prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func serialMatches(cert *x509.Certificate, s string) bool {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) == 0 {
		return false
	}
	want := cert.SerialNumber.Bytes()
	rev := slices.Clone(b)
	slices.Reverse(rev)
	trim := func(x []byte) []byte {
		for len(x) > 1 && x[0] == 0 {
			x = x[1:]
		}
		return x
	}
	return slices.Equal(trim(b), want) || slices.Equal(trim(rev), want)
}

// nameRDNs is a raw Name as "TYPE=value" strings in RFC 4514 order (most
// specific first), with the attribute names AD uses (DC included, which
// pkix.Name.String writes as an OID).
func nameRDNs(raw []byte) []string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) > 0 {
		return nil
	}
	var out []string
	for i := len(seq) - 1; i >= 0; i-- {
		var parts []string
		for _, atv := range seq[i] {
			name, ok := attrNames[atv.Type.String()]
			if !ok {
				name = atv.Type.String()
			}
			parts = append(parts, normRDN(name+"="+fmt.Sprint(atv.Value)))
		}
		out = append(out, strings.Join(parts, "+"))
	}
	return out
}

var attrNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
	"2.5.4.5": "SERIALNUMBER", "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1": "UID", "1.2.840.113549.1.9.1": "EMAILADDRESS",
}

// dnMatches compares a DN in RFC 4514 order with one written in either
// order (AD writes issuers most-significant RDN first), attribute names
// and values case-insensitively.
func dnMatches(a []string, written string) bool {
	b := splitDN(written)
	if len(a) == 0 || len(a) != len(b) {
		return false
	}
	eq := func(x, y []string) bool {
		for i := range x {
			if !strings.EqualFold(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	if eq(a, b) {
		return true
	}
	r := slices.Clone(b)
	slices.Reverse(r)
	return eq(a, r)
}

// splitDN splits at unescaped commas and normalises spaces around '='.
func splitDN(s string) []string {
	var out []string
	var cur strings.Builder
	esc := false
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\':
			cur.WriteRune(r)
			esc = true
		case r == ',':
			out = append(out, normRDN(cur.String()))
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, normRDN(cur.String()))
	}
	return out
}

func normRDN(s string) string {
	t, v, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return strings.TrimSpace(s)
	}
	t = strings.ToUpper(strings.TrimSpace(t))
	switch t { // the names AD and Go disagree on
	case "S":
		t = "ST"
	case "E", "EMAIL":
		t = "EMAILADDRESS"
	}
	return t + "=" + strings.TrimSpace(v)
}

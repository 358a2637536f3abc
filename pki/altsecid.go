package pki

import (
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// MatchAltSecurityIdentity reports which of an account's
// altSecurityIdentities values names cert in one of Active Directory's
// strong forms, or "" when none does:
//
//	X509:<I>issuer<SR>serial  issuer DN (either RDN order) and serial in hex,
//	                          byte-reversed as AD writes it (or not)
//	X509:<SKI>hex             the subject key identifier
//	X509:<SHA1-PUKEY>hex      the SHA-1 of the certificate (its thumbprint)
//
// The weak forms (issuer and subject, subject, RFC822, UPN) never match:
// they name anyone who can get a certificate with that name.
func MatchAltSecurityIdentity(cert *x509.Certificate, ids []string) string {
	for _, id := range ids {
		rest, ok := cutPrefixFold(id, "X509:")
		if !ok {
			continue
		}
		switch {
		case hasPrefixFold(rest, "<I>"):
			i := strings.Index(asciiUpper(rest), "<SR>")
			if i < 3 || strings.Contains(asciiUpper(rest[:i]), "<S>") {
				continue // <I>…<S>… is a weak mapping
			}
			issuer, serial := rest[3:i], rest[i+4:]
			if altSerialMatches(cert, serial) && altDNMatches(altNameRDNs(cert.RawIssuer), issuer) {
				return "issuer-serial"
			}
		case hasPrefixFold(rest, "<SKI>"):
			if len(cert.SubjectKeyId) > 0 && strings.EqualFold(rest[5:], hex.EncodeToString(cert.SubjectKeyId)) {
				return "ski"
			}
		case hasPrefixFold(rest, "<SHA1-PUKEY>"):
			sum := sha1.Sum(cert.Raw)
			if strings.EqualFold(rest[12:], hex.EncodeToString(sum[:])) {
				return "sha1"
			}
		}
	}
	return ""
}

// asciiUpper upper-cases ASCII letters only, so indexes stay valid.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
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

func altSerialMatches(cert *x509.Certificate, s string) bool {
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

// NameString is a DER-encoded Name (such as a certificate's RawSubject or
// RawIssuer) in RFC 4514 order with the attribute names Active Directory
// uses (DC included, which pkix.Name.String writes as an OID), or "" when
// raw does not parse. It is for log lines and messages.
func NameString(raw []byte) string {
	return strings.Join(altNameRDNs(raw), ",")
}

// altNameRDNs is a raw Name as "TYPE=value" strings in RFC 4514 order
// (most specific first), with the attribute names AD uses.
func altNameRDNs(raw []byte) []string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) > 0 {
		return nil
	}
	var out []string
	for i := len(seq) - 1; i >= 0; i-- {
		var parts []string
		for _, atv := range seq[i] {
			name, ok := altAttrNames[atv.Type.String()]
			if !ok {
				name = atv.Type.String()
			}
			parts = append(parts, altNormRDN(name+"="+fmt.Sprint(atv.Value)))
		}
		out = append(out, strings.Join(parts, "+"))
	}
	return out
}

var altAttrNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
	"2.5.4.5": "SERIALNUMBER", "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1": "UID", "1.2.840.113549.1.9.1": "EMAILADDRESS",
}

// altDNMatches compares a DN in RFC 4514 order with one written in either
// order (AD writes issuers most-significant RDN first), attribute names
// and values case-insensitively.
func altDNMatches(a []string, written string) bool {
	b := altSplitDN(written)
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

// altSplitDN splits at unescaped commas and normalises spaces around '='.
func altSplitDN(s string) []string {
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
			out = append(out, altNormRDN(cur.String()))
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, altNormRDN(cur.String()))
	}
	return out
}

func altNormRDN(s string) string {
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

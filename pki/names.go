package pki

// This file encodes and parses the names a smart-card logon certificate
// carries: the subjectAltName extension with its Microsoft UPN and Kerberos
// id-pkinit-san otherNames (which crypto/x509 can neither write nor read),
// the Microsoft strong-mapping SID extension, and the text and binary forms
// of Kerberos principal names and Windows security identifiers.
//
// Everything here is written and read by hand as DER. The parsers accept
// only DER (definite, minimal lengths; the exact tags the ASN.1 modules
// prescribe), reject trailing data at every level, bound every count and
// length, and apply the same validation as the encoders, so that anything
// they accept re-encodes to bytes they read back equal.

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Object identifiers for the names and extended key usages of smart-card
// logon and PKINIT certificates.
var (
	// OIDUPN is szOID_NT_PRINCIPAL_NAME, the otherName type of a Windows
	// userPrincipalName: otherName { OIDUPN, [0] EXPLICIT UTF8String }.
	OIDUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
	// OIDPKINITSAN is id-pkinit-san (RFC 4556 §3.2.2), the otherName type of
	// a Kerberos principal: otherName { OIDPKINITSAN, [0] EXPLICIT
	// KRB5PrincipalName }.
	OIDPKINITSAN = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 2}
	// OIDSIDExtension is szOID_NTDS_CA_SECURITY_EXT, the non-critical
	// extension by which a Windows KDC strongly maps a certificate to the
	// account whose objectSid it carries.
	OIDSIDExtension = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 25, 2}
	// OIDSIDOtherName is szOID_NTDS_OBJECTSID, the otherName type inside
	// the SID extension; its value is the text SID in an OCTET STRING.
	OIDSIDOtherName = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 25, 2, 1}
	// OIDExtensionSubjectAltName is id-ce-subjectAltName (RFC 5280).
	OIDExtensionSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

	// OIDSmartCardLogon is the Microsoft smart-card logon extended key
	// usage (szOID_KP_SMARTCARD_LOGON).
	OIDSmartCardLogon = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}
	// OIDPKINITClientAuth is id-pkinit-KPClientAuth (RFC 4556 §3.2.2).
	OIDPKINITClientAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 4}
	// OIDPKINITKDC is id-pkinit-KPKdc (RFC 4556 §3.2.4), the extended key
	// usage of a KDC certificate.
	OIDPKINITKDC = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 5}
	// OIDCertificateRequestAgent is the Microsoft enrollment agent extended
	// key usage (szOID_ENROLLMENT_AGENT), required of the signer of an
	// enroll-on-behalf-of request.
	OIDCertificateRequestAgent = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 1}
)

// Kerberos principal name types (RFC 4120 §6.2).
const (
	// NameTypePrincipal is NT-PRINCIPAL, the name type of users.
	NameTypePrincipal int32 = 1
	// NameTypeSrvInst is NT-SRV-INST, the name type of service instances
	// such as krbtgt/REALM.
	NameTypeSrvInst int32 = 2
)

// Bounds on what the encoders write and the parsers accept.
const (
	// maxSANNames bounds the GeneralNames in one subjectAltName.
	maxSANNames = 64
	// maxNameLen bounds a UPN, an email address, a DNS name, a URI, a realm
	// and a principal name component, in bytes.
	maxNameLen = 1024
	// maxComponents bounds the components of a Kerberos principal name.
	maxComponents = 16
	// maxOtherValue bounds the DER value of an otherName kept in Other.
	maxOtherValue = 4096
	// maxSANBytes bounds a whole subjectAltName extension value.
	maxSANBytes = 64 << 10
	// maxSubAuthorities is SID_MAX_SUB_AUTHORITIES.
	maxSubAuthorities = 15
	// maxSIDText bounds the text form of a SID; the longest valid one,
	// with a hexadecimal authority and 15 sub-authorities, has 184 bytes.
	maxSIDText = 256
	// maxPrincipalText bounds the text form of a principal name.
	maxPrincipalText = (maxComponents + 1) * 2 * maxNameLen
)

// DER identifier octets used here: class and constructed bits and a tag
// number below 31.
const (
	idInteger         = 0x02
	idOctetString     = 0x04
	idOID             = 0x06
	idUTF8String      = 0x0c
	idGeneralString   = 0x1b
	idSequence        = 0x30
	idCtx0Constructed = 0xa0
	idCtx1Constructed = 0xa1
	idRFC822Name      = 0x81 // [1] IMPLICIT IA5String
	idDNSName         = 0x82 // [2] IMPLICIT IA5String
	idX400Address     = 0xa3 // [3] IMPLICIT ORAddress
	idDirectoryName   = 0xa4 // [4] EXPLICIT Name
	idEDIPartyName    = 0xa5 // [5] IMPLICIT EDIPartyName
	idURI             = 0x86 // [6] IMPLICIT IA5String
	idIPAddress       = 0x87 // [7] IMPLICIT OCTET STRING
	idRegisteredID    = 0x88 // [8] IMPLICIT OBJECT IDENTIFIER
)

// Principal is a Kerberos principal name with its realm, as carried by an
// id-pkinit-san otherName (KRB5PrincipalName, RFC 4556 §3.2.2).
type Principal struct {
	// Realm is the Kerberos realm, such as EXAMPLE.TEST.
	Realm string
	// NameType is the name-type of the PrincipalName, such as
	// NameTypePrincipal.
	NameType int32
	// Components are the name-string components, such as ["alice"] or
	// ["krbtgt", "EXAMPLE.TEST"].
	Components []string
}

// String returns p in the text form of MIT Kerberos, comp1/comp2@REALM,
// with '/', '@' and '\' escaped by a backslash in components and realm.
// Control characters, which a valid Principal never holds, are written as
// MIT writes them (\0, \n, \t, \b) or otherwise as they are.
func (p Principal) String() string {
	var b strings.Builder
	for i, c := range p.Components {
		if i > 0 {
			b.WriteByte('/')
		}
		writeEscapedPrincipalPart(&b, c)
	}
	b.WriteByte('@')
	writeEscapedPrincipalPart(&b, p.Realm)
	return b.String()
}

func writeEscapedPrincipalPart(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '/', '@', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		default:
			b.WriteByte(c)
		}
	}
}

// ParsePrincipal parses the text form of a principal name written by
// Principal.String (MIT Kerberos syntax) and gives it nameType. The realm is
// required. A backslash escapes the next character (\0, \n, \t and \b stand
// for control characters, which are then rejected as invalid); an unescaped
// '/' before the realm separates components, the first unescaped '@' starts
// the realm, and a second unescaped '@' is an error. The result is
// validated as Extension validates it: a non-empty realm and one to 16
// non-empty components of printable UTF-8, each at most 1024 bytes.
func ParsePrincipal(s string, nameType int32) (Principal, error) {
	if len(s) > maxPrincipalText {
		return Principal{}, fmt.Errorf("pki: principal name longer than %d bytes", maxPrincipalText)
	}
	var (
		comps   []string
		cur     []byte
		inRealm bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
			if i == len(s) {
				return Principal{}, fmt.Errorf("pki: principal name %q ends in a backslash", s)
			}
			switch e := s[i]; e {
			case '0':
				cur = append(cur, 0)
			case 'n':
				cur = append(cur, '\n')
			case 't':
				cur = append(cur, '\t')
			case 'b':
				cur = append(cur, '\b')
			default:
				cur = append(cur, e)
			}
		case c == '/' && !inRealm:
			comps = append(comps, string(cur))
			cur = cur[:0]
			if len(comps) > maxComponents {
				return Principal{}, fmt.Errorf("pki: principal name %q has more than %d components", s, maxComponents)
			}
		case c == '@' && !inRealm:
			comps = append(comps, string(cur))
			cur = cur[:0]
			inRealm = true
		case c == '@':
			return Principal{}, fmt.Errorf("pki: principal name %q has an unescaped '@' in its realm", s)
		default:
			cur = append(cur, c)
		}
	}
	if !inRealm {
		return Principal{}, fmt.Errorf("pki: principal name %q has no realm", s)
	}
	p := Principal{Realm: string(cur), NameType: nameType, Components: comps}
	if err := p.validate(); err != nil {
		return Principal{}, fmt.Errorf("pki: principal name %q: %w", s, err)
	}
	return p, nil
}

func (p Principal) validate() error {
	if err := checkKerberosString("realm", p.Realm); err != nil {
		return err
	}
	if len(p.Components) == 0 {
		return errors.New("principal name has no components")
	}
	if len(p.Components) > maxComponents {
		return fmt.Errorf("principal name has more than %d components", maxComponents)
	}
	for _, c := range p.Components {
		if err := checkKerberosString("principal name component", c); err != nil {
			return err
		}
	}
	return nil
}

// checkKerberosString checks a realm or a name component, which is written
// as a GeneralString: non-empty, at most maxNameLen bytes of valid UTF-8
// with only printable characters (spaces included).
func checkKerberosString(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("%s longer than %d bytes", what, maxNameLen)
	}
	if !printableUTF8(s) {
		return fmt.Errorf("%s %q is not printable UTF-8", what, s)
	}
	return nil
}

func printableUTF8(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// SubjectAltNames is what the CA writes in (and a KDC reads from) the SAN
// extension.
//
// Extension writes the names in a fixed order: the UPN, then Principals,
// Other, Emails, DNSNames and URIs, each list in its own order; parsing
// gives them back in these fields in the order they come. GeneralNames of
// the kinds this type has no field for (x400Address, directoryName,
// ediPartyName, iPAddress, registeredID) are checked for their tag and then
// skipped when parsing.
type SubjectAltNames struct {
	// UPN is the Windows userPrincipalName, at most one, such as
	// alice@example.test.
	UPN string
	// Principals are the Kerberos principal names (id-pkinit-san).
	Principals []Principal
	// Emails are rfc822Name addresses, such as alice@example.test.
	Emails []string
	// DNSNames are dNSName host names.
	DNSNames []string
	// URIs are uniformResourceIdentifier names.
	URIs []string
	// Other are otherNames of types other than OIDUPN and OIDPKINITSAN,
	// kept as they come when parsing.
	Other []OtherName
}

// OtherName is an otherName of a type this package does not interpret.
type OtherName struct {
	// TypeID is the type-id of the otherName.
	TypeID asn1.ObjectIdentifier
	// Value is the DER of the [0] EXPLICIT content: exactly one complete
	// TLV, at most 4096 bytes.
	Value []byte
}

func (s SubjectAltNames) count() int {
	n := len(s.Principals) + len(s.Emails) + len(s.DNSNames) + len(s.URIs) + len(s.Other)
	if s.UPN != "" {
		n++
	}
	return n
}

func (s SubjectAltNames) validate() error {
	n := s.count()
	if n == 0 {
		return errors.New("subjectAltName has no names")
	}
	if n > maxSANNames {
		return fmt.Errorf("subjectAltName has %d names, more than %d", n, maxSANNames)
	}
	if s.UPN != "" {
		if err := checkUPN(s.UPN); err != nil {
			return err
		}
	}
	for _, p := range s.Principals {
		if err := p.validate(); err != nil {
			return err
		}
	}
	for _, o := range s.Other {
		if err := o.validate(); err != nil {
			return err
		}
	}
	for _, e := range s.Emails {
		if err := checkEmail(e); err != nil {
			return err
		}
	}
	for _, d := range s.DNSNames {
		if err := checkDNSName(d); err != nil {
			return err
		}
	}
	for _, u := range s.URIs {
		if err := checkURI(u); err != nil {
			return err
		}
	}
	return nil
}

// checkUPN checks a userPrincipalName: printable UTF-8 of at most
// maxNameLen bytes with an '@' that has something on either side.
func checkUPN(u string) error {
	if len(u) > maxNameLen {
		return fmt.Errorf("UPN longer than %d bytes", maxNameLen)
	}
	if !printableUTF8(u) {
		return fmt.Errorf("UPN %q is not printable UTF-8", u)
	}
	if i := strings.LastIndexByte(u, '@'); i <= 0 || i == len(u)-1 {
		return fmt.Errorf("UPN %q is not of the form name@suffix", u)
	}
	return nil
}

// checkIA5 checks that s is a non-empty IA5String of at most maxNameLen
// visible ASCII characters (no spaces, no controls).
func checkIA5(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("%s longer than %d bytes", what, maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return fmt.Errorf("%s %q holds a character that is not visible ASCII", what, s)
		}
	}
	return nil
}

func checkEmail(e string) error {
	if err := checkIA5("email address", e); err != nil {
		return err
	}
	if i := strings.LastIndexByte(e, '@'); i <= 0 || i == len(e)-1 {
		return fmt.Errorf("email address %q is not of the form local@domain", e)
	}
	return nil
}

// checkDNSName allows letters, digits, '-', '_', '.' and '*' (for
// wildcards), and no empty labels at either end.
func checkDNSName(d string) error {
	if err := checkIA5("DNS name", d); err != nil {
		return err
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '*') {
			return fmt.Errorf("DNS name %q holds %q", d, c)
		}
	}
	if d[0] == '.' || strings.Contains(d, "..") {
		return fmt.Errorf("DNS name %q has an empty label", d)
	}
	return nil
}

// checkURI requires an IA5 string with a scheme (RFC 5280 §4.2.1.6 wants an
// absolute URI).
func checkURI(u string) error {
	if err := checkIA5("URI", u); err != nil {
		return err
	}
	colon := strings.IndexByte(u, ':')
	if colon <= 0 {
		return fmt.Errorf("URI %q has no scheme", u)
	}
	for i := 0; i < colon; i++ {
		c := u[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !letter || !(letter || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return fmt.Errorf("URI %q has an invalid scheme", u)
		}
	}
	return nil
}

func (o OtherName) validate() error {
	if o.TypeID.Equal(OIDUPN) || o.TypeID.Equal(OIDPKINITSAN) {
		return fmt.Errorf("otherName of type %v belongs in its own field, not in Other", o.TypeID)
	}
	if _, err := marshalOID(o.TypeID); err != nil {
		return err
	}
	if len(o.Value) > maxOtherValue {
		return fmt.Errorf("otherName %v value longer than %d bytes", o.TypeID, maxOtherValue)
	}
	_, rest, err := readElement(o.Value)
	if err != nil {
		return fmt.Errorf("otherName %v value: %w", o.TypeID, err)
	}
	if len(rest) > 0 {
		return fmt.Errorf("otherName %v value has trailing data", o.TypeID)
	}
	return nil
}

// Extension returns the non-critical subjectAltName extension holding s,
// for the ExtraExtensions of a certificate template (crypto/x509 then adds
// no subjectAltName of its own). It fails if s holds no name, more than 64,
// or an invalid one: an email address or UPN without an '@', a character
// that is not visible ASCII in an email address, DNS name or URI, an empty
// or non-printable realm or component, an otherName value that is not one
// DER element. RFC 5280 wants the extension critical when the subject is
// empty; a caller issuing such a certificate sets Critical itself.
func (s SubjectAltNames) Extension() (pkix.Extension, error) {
	if err := s.validate(); err != nil {
		return pkix.Extension{}, fmt.Errorf("pki: subjectAltName: %w", err)
	}
	var names []byte
	var err error
	if s.UPN != "" {
		names, err = appendOtherName(names, OIDUPN, appendTLV(nil, idUTF8String, []byte(s.UPN)))
	}
	for _, p := range s.Principals {
		if err == nil {
			names, err = appendOtherName(names, OIDPKINITSAN, marshalKRB5PrincipalName(p))
		}
	}
	for _, o := range s.Other {
		if err == nil {
			names, err = appendOtherName(names, o.TypeID, o.Value)
		}
	}
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("pki: subjectAltName: %w", err)
	}
	for _, e := range s.Emails {
		names = appendTLV(names, idRFC822Name, []byte(e))
	}
	for _, d := range s.DNSNames {
		names = appendTLV(names, idDNSName, []byte(d))
	}
	for _, u := range s.URIs {
		names = appendTLV(names, idURI, []byte(u))
	}
	return pkix.Extension{
		Id:    cloneOID(OIDExtensionSubjectAltName),
		Value: appendTLV(nil, idSequence, names),
	}, nil
}

// marshalKRB5PrincipalName encodes a validated p:
//
//	KRB5PrincipalName ::= SEQUENCE {
//	    realm         [0] Realm,          -- GeneralString
//	    principalName [1] PrincipalName }
//	PrincipalName ::= SEQUENCE {
//	    name-type   [0] Int32,
//	    name-string [1] SEQUENCE OF KerberosString }
//
// with the explicit tagging of RFC 4120.
func marshalKRB5PrincipalName(p Principal) []byte {
	var comps []byte
	for _, c := range p.Components {
		comps = appendTLV(comps, idGeneralString, []byte(c))
	}
	var pn []byte
	pn = appendTLV(pn, idCtx0Constructed, appendTLV(nil, idInteger, int32Bytes(p.NameType)))
	pn = appendTLV(pn, idCtx1Constructed, appendTLV(nil, idSequence, comps))
	var kpn []byte
	kpn = appendTLV(kpn, idCtx0Constructed, appendTLV(nil, idGeneralString, []byte(p.Realm)))
	kpn = appendTLV(kpn, idCtx1Constructed, appendTLV(nil, idSequence, pn))
	return appendTLV(nil, idSequence, kpn)
}

// appendOtherName appends otherName [0] IMPLICIT { type-id, [0] EXPLICIT
// value } for a value that is one DER element.
func appendOtherName(dst []byte, typeID asn1.ObjectIdentifier, value []byte) ([]byte, error) {
	oid, err := marshalOID(typeID)
	if err != nil {
		return nil, err
	}
	content := append(oid, appendTLV(nil, idCtx0Constructed, value)...)
	return appendTLV(dst, idCtx0Constructed, content), nil
}

// ParseSubjectAltNames parses the value of a subjectAltName extension. It
// accepts only DER, rejects trailing data, an empty GeneralNames, more than
// 64 names, more than one UPN, and any name that Extension would refuse to
// write, so that what it returns re-encodes with Extension.
func ParseSubjectAltNames(ext []byte) (SubjectAltNames, error) {
	var s SubjectAltNames
	if len(ext) > maxSANBytes {
		return s, fmt.Errorf("pki: subjectAltName longer than %d bytes", maxSANBytes)
	}
	names, rest, err := expect(ext, idSequence)
	if err != nil {
		return s, fmt.Errorf("pki: subjectAltName: %w", err)
	}
	if len(rest) > 0 {
		return s, errors.New("pki: subjectAltName has trailing data")
	}
	if len(names) == 0 {
		return s, errors.New("pki: subjectAltName has no names")
	}
	for n := 1; len(names) > 0; n++ {
		if n > maxSANNames {
			return SubjectAltNames{}, fmt.Errorf("pki: subjectAltName has more than %d names", maxSANNames)
		}
		var e element
		e, names, err = readElement(names)
		if err != nil {
			return SubjectAltNames{}, fmt.Errorf("pki: subjectAltName name %d: %w", n, err)
		}
		if err := s.addGeneralName(e); err != nil {
			return SubjectAltNames{}, fmt.Errorf("pki: subjectAltName name %d: %w", n, err)
		}
	}
	return s, nil
}

func (s *SubjectAltNames) addGeneralName(e element) error {
	if e.highTag {
		return fmt.Errorf("unexpected tag [%d]", e.tag)
	}
	switch e.id {
	case idCtx0Constructed:
		return s.addOtherName(e.content)
	case idRFC822Name:
		v := string(e.content)
		if err := checkEmail(v); err != nil {
			return err
		}
		s.Emails = append(s.Emails, v)
	case idDNSName:
		v := string(e.content)
		if err := checkDNSName(v); err != nil {
			return err
		}
		s.DNSNames = append(s.DNSNames, v)
	case idURI:
		v := string(e.content)
		if err := checkURI(v); err != nil {
			return err
		}
		s.URIs = append(s.URIs, v)
	case idX400Address, idDirectoryName, idEDIPartyName, idIPAddress, idRegisteredID:
		// Well-formed kinds of GeneralName with no field here: skipped.
	default:
		return fmt.Errorf("unexpected identifier octet 0x%02x", e.id)
	}
	return nil
}

// addOtherName parses the content of otherName [0] IMPLICIT SEQUENCE {
// type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY }.
func (s *SubjectAltNames) addOtherName(b []byte) error {
	typeID, value, err := parseOtherName(b)
	if err != nil {
		return err
	}
	switch {
	case typeID.Equal(OIDUPN):
		if s.UPN != "" {
			return errors.New("more than one UPN otherName")
		}
		upn, rest, err := expect(value, idUTF8String)
		if err != nil {
			return fmt.Errorf("UPN: %w", err)
		}
		if len(rest) > 0 {
			return errors.New("UPN has trailing data")
		}
		if err := checkUPN(string(upn)); err != nil {
			return err
		}
		s.UPN = string(upn)
	case typeID.Equal(OIDPKINITSAN):
		p, err := parseKRB5PrincipalName(value)
		if err != nil {
			return err
		}
		s.Principals = append(s.Principals, p)
	default:
		o := OtherName{TypeID: typeID, Value: append([]byte(nil), value...)}
		if err := o.validate(); err != nil {
			return err
		}
		s.Other = append(s.Other, o)
	}
	return nil
}

// parseOtherName splits the content of an otherName into its type-id and
// the single DER element inside its [0] EXPLICIT value.
func parseOtherName(b []byte) (asn1.ObjectIdentifier, []byte, error) {
	oidElem, b, err := readElement(b)
	if err != nil {
		return nil, nil, fmt.Errorf("otherName type-id: %w", err)
	}
	if oidElem.highTag || oidElem.id != idOID {
		return nil, nil, errors.New("otherName type-id is not an OBJECT IDENTIFIER")
	}
	var typeID asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(oidElem.full, &typeID); err != nil || len(rest) > 0 {
		return nil, nil, errors.New("otherName type-id is not a valid OBJECT IDENTIFIER")
	}
	wrapped, b, err := expect(b, idCtx0Constructed)
	if err != nil {
		return nil, nil, fmt.Errorf("otherName %v value: %w", typeID, err)
	}
	if len(b) > 0 {
		return nil, nil, fmt.Errorf("otherName %v has trailing data", typeID)
	}
	value, rest, err := readElement(wrapped)
	if err != nil {
		return nil, nil, fmt.Errorf("otherName %v value: %w", typeID, err)
	}
	if len(rest) > 0 {
		return nil, nil, fmt.Errorf("otherName %v value has trailing data", typeID)
	}
	return typeID, value.full, nil
}

// parseKRB5PrincipalName parses exactly one KRB5PrincipalName, as
// marshalKRB5PrincipalName writes it.
func parseKRB5PrincipalName(b []byte) (Principal, error) {
	fail := func(what string, err error) (Principal, error) {
		if err == nil {
			return Principal{}, fmt.Errorf("KRB5PrincipalName: %s has trailing data", what)
		}
		return Principal{}, fmt.Errorf("KRB5PrincipalName: %s: %w", what, err)
	}
	kpn, rest, err := expect(b, idSequence)
	if err != nil || len(rest) > 0 {
		return fail("SEQUENCE", err)
	}
	realmWrap, kpn, err := expect(kpn, idCtx0Constructed)
	if err != nil {
		return fail("realm", err)
	}
	realm, rest, err := expect(realmWrap, idGeneralString)
	if err != nil || len(rest) > 0 {
		return fail("realm", err)
	}
	pnWrap, rest, err := expect(kpn, idCtx1Constructed)
	if err != nil || len(rest) > 0 {
		return fail("principalName", err)
	}
	pn, rest, err := expect(pnWrap, idSequence)
	if err != nil || len(rest) > 0 {
		return fail("principalName", err)
	}
	ntWrap, pn, err := expect(pn, idCtx0Constructed)
	if err != nil {
		return fail("name-type", err)
	}
	ntBytes, rest, err := expect(ntWrap, idInteger)
	if err != nil || len(rest) > 0 {
		return fail("name-type", err)
	}
	nameType, err := parseInt32(ntBytes)
	if err != nil {
		return fail("name-type", err)
	}
	nsWrap, rest, err := expect(pn, idCtx1Constructed)
	if err != nil || len(rest) > 0 {
		return fail("name-string", err)
	}
	ns, rest, err := expect(nsWrap, idSequence)
	if err != nil || len(rest) > 0 {
		return fail("name-string", err)
	}
	p := Principal{Realm: string(realm), NameType: nameType}
	for len(ns) > 0 {
		if len(p.Components) == maxComponents {
			return Principal{}, fmt.Errorf("KRB5PrincipalName: more than %d components", maxComponents)
		}
		var c []byte
		c, ns, err = expect(ns, idGeneralString)
		if err != nil {
			return fail("name-string component", err)
		}
		p.Components = append(p.Components, string(c))
	}
	if err := p.validate(); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// SubjectAltNamesOf finds the subjectAltName extension in cert.Extensions
// and parses it. ok is false, with no error, when there is none; more than
// one is an error.
func SubjectAltNamesOf(cert *x509.Certificate) (SubjectAltNames, bool, error) {
	ext, ok, err := findExtension(cert, OIDExtensionSubjectAltName)
	if err != nil || !ok {
		return SubjectAltNames{}, false, err
	}
	s, err := ParseSubjectAltNames(ext.Value)
	if err != nil {
		return SubjectAltNames{}, true, err
	}
	return s, true, nil
}

func findExtension(cert *x509.Certificate, id asn1.ObjectIdentifier) (pkix.Extension, bool, error) {
	var found pkix.Extension
	ok := false
	if cert == nil {
		return found, false, errors.New("pki: nil certificate")
	}
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(id) {
			continue
		}
		if ok {
			return pkix.Extension{}, false, fmt.Errorf("pki: certificate has more than one extension %v", id)
		}
		found, ok = ext, true
	}
	return found, ok, nil
}

// SIDExtension returns the non-critical Microsoft strong-mapping extension
// (OIDSIDExtension) for the account whose objectSid is sid, in text form
// (S-1-5-21-…). The SID is checked with ParseSID and written in its
// canonical text form:
//
//	SEQUENCE { [0] IMPLICIT SEQUENCE {          -- an otherName
//	    OIDSIDOtherName, [0] EXPLICIT OCTET STRING "S-1-5-21-…" } }
func SIDExtension(sid string) (pkix.Extension, error) {
	parsed, err := ParseSID(sid)
	if err != nil {
		return pkix.Extension{}, err
	}
	name, err := appendOtherName(nil, OIDSIDOtherName, appendTLV(nil, idOctetString, []byte(parsed.String())))
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{
		Id:    cloneOID(OIDSIDExtension),
		Value: appendTLV(nil, idSequence, name),
	}, nil
}

// SIDOf finds the strong-mapping SID extension in cert.Extensions and
// returns the SID it carries in canonical text form. ok is false, with no
// error, when there is none. More than one such extension, an extension
// that is not exactly one OIDSIDOtherName otherName holding an OCTET
// STRING, or a SID that ParseSID rejects is an error.
func SIDOf(cert *x509.Certificate) (sid string, ok bool, err error) {
	ext, ok, err := findExtension(cert, OIDSIDExtension)
	if err != nil || !ok {
		return "", false, err
	}
	s, err := parseSIDExtension(ext.Value)
	if err != nil {
		return "", true, err
	}
	return s.String(), true, nil
}

func parseSIDExtension(b []byte) (SID, error) {
	names, rest, err := expect(b, idSequence)
	if err != nil {
		return SID{}, fmt.Errorf("pki: SID extension: %w", err)
	}
	if len(rest) > 0 {
		return SID{}, errors.New("pki: SID extension has trailing data")
	}
	other, rest, err := expect(names, idCtx0Constructed)
	if err != nil {
		return SID{}, fmt.Errorf("pki: SID extension: %w", err)
	}
	if len(rest) > 0 {
		return SID{}, errors.New("pki: SID extension holds more than one name")
	}
	typeID, value, err := parseOtherName(other)
	if err != nil {
		return SID{}, fmt.Errorf("pki: SID extension: %w", err)
	}
	if !typeID.Equal(OIDSIDOtherName) {
		return SID{}, fmt.Errorf("pki: SID extension holds an otherName of type %v", typeID)
	}
	text, _, err := expect(value, idOctetString) // value is exactly one element
	if err != nil {
		return SID{}, fmt.Errorf("pki: SID extension: %w", err)
	}
	return ParseSID(string(text))
}

// SID is a Windows security identifier (MS-DTYP §2.4.2).
type SID struct {
	// Revision is always 1.
	Revision byte
	// Authority is the 48-bit identifier authority, such as 5 for
	// SECURITY_NT_AUTHORITY.
	Authority uint64
	// SubAuthorities are at most 15 sub-authorities, the last of which is
	// the relative identifier of a domain account.
	SubAuthorities []uint32
}

// ParseSID parses the text form of a SID, S-1-5-21-a-b-c-RID, as Windows
// writes it: "S" (or "s"), revision 1, the identifier authority in decimal
// when below 2^32 and otherwise as 0x and 12 hexadecimal digits, and up to
// 15 decimal sub-authorities, with no signs, spaces or leading zeros.
func ParseSID(s string) (SID, error) {
	if len(s) > maxSIDText {
		return SID{}, fmt.Errorf("pki: SID longer than %d bytes", maxSIDText)
	}
	parts := strings.Split(s, "-")
	if len(parts) < 3 || (parts[0] != "S" && parts[0] != "s") {
		return SID{}, fmt.Errorf("pki: %q is not a SID of the form S-1-authority-…", s)
	}
	if parts[1] != "1" {
		return SID{}, fmt.Errorf("pki: SID %q has revision %q, not 1", s, parts[1])
	}
	sid := SID{Revision: 1}
	auth := parts[2]
	if len(auth) > 2 && (auth[:2] == "0x" || auth[:2] == "0X") {
		hex := auth[2:]
		v, err := strconv.ParseUint(hex, 16, 48)
		if err != nil || len(hex) != 12 || v < 1<<32 || !isHex(hex) {
			return SID{}, fmt.Errorf("pki: SID %q has an invalid hexadecimal authority", s)
		}
		sid.Authority = v
	} else {
		v, err := parseDecimal(auth, 32)
		if err != nil {
			return SID{}, fmt.Errorf("pki: SID %q has an invalid authority: %w", s, err)
		}
		sid.Authority = v
	}
	subs := parts[3:]
	if len(subs) > maxSubAuthorities {
		return SID{}, fmt.Errorf("pki: SID %q has more than %d sub-authorities", s, maxSubAuthorities)
	}
	for _, p := range subs {
		v, err := parseDecimal(p, 32)
		if err != nil {
			return SID{}, fmt.Errorf("pki: SID %q has an invalid sub-authority: %w", s, err)
		}
		sid.SubAuthorities = append(sid.SubAuthorities, uint32(v))
	}
	return sid, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// parseDecimal parses digits only, without a sign or leading zeros.
func parseDecimal(s string, bits int) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero", s)
	}
	return strconv.ParseUint(s, 10, bits)
}

func (s SID) valid() bool {
	return s.Authority < 1<<48 && len(s.SubAuthorities) <= maxSubAuthorities
}

// String returns the text form of s: S-1-5-21-a-b-c-RID, with the
// authority in decimal when below 2^32 and otherwise as 0x and 12
// uppercase hexadecimal digits.
func (s SID) String() string {
	var b strings.Builder
	b.WriteString("S-")
	b.WriteString(strconv.Itoa(int(s.Revision)))
	b.WriteByte('-')
	if s.Authority < 1<<32 {
		b.WriteString(strconv.FormatUint(s.Authority, 10))
	} else {
		fmt.Fprintf(&b, "0x%012X", s.Authority)
	}
	for _, v := range s.SubAuthorities {
		b.WriteByte('-')
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	}
	return b.String()
}

// Binary returns the binary form of s, as in objectSid: the revision, the
// sub-authority count, the authority as 6 big-endian bytes and the
// sub-authorities as little-endian 32-bit words. It returns nil when s has
// more than 15 sub-authorities or an authority of 2^48 or more.
func (s SID) Binary() []byte {
	if !s.valid() {
		return nil
	}
	b := make([]byte, 8, 8+4*len(s.SubAuthorities))
	b[0] = s.Revision
	b[1] = byte(len(s.SubAuthorities))
	for i := 0; i < 6; i++ {
		b[2+i] = byte(s.Authority >> (8 * (5 - i)))
	}
	for _, v := range s.SubAuthorities {
		b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	return b
}

// ParseSIDBinary parses the binary form of a SID, as in objectSid: revision
// 1, at most 15 sub-authorities, and exactly as many bytes as the count
// says.
func ParseSIDBinary(b []byte) (SID, error) {
	if len(b) < 8 {
		return SID{}, errors.New("pki: binary SID shorter than 8 bytes")
	}
	if b[0] != 1 {
		return SID{}, fmt.Errorf("pki: binary SID has revision %d, not 1", b[0])
	}
	n := int(b[1])
	if n > maxSubAuthorities {
		return SID{}, fmt.Errorf("pki: binary SID has %d sub-authorities, more than %d", n, maxSubAuthorities)
	}
	if len(b) != 8+4*n {
		return SID{}, fmt.Errorf("pki: binary SID with %d sub-authorities has %d bytes, not %d", n, len(b), 8+4*n)
	}
	sid := SID{Revision: 1}
	for i := 0; i < 6; i++ {
		sid.Authority = sid.Authority<<8 | uint64(b[2+i])
	}
	for i := 0; i < n; i++ {
		w := b[8+4*i:]
		sid.SubAuthorities = append(sid.SubAuthorities,
			uint32(w[0])|uint32(w[1])<<8|uint32(w[2])<<16|uint32(w[3])<<24)
	}
	return sid, nil
}

// --- DER ---

// element is one DER TLV.
type element struct {
	id      byte   // first identifier octet: class, constructed bit, low tag
	highTag bool   // tag number in the high-tag-number form
	tag     uint32 // tag number
	content []byte // contents octets
	full    []byte // the whole TLV
}

var errTruncated = errors.New("truncated DER")

// readElement reads one DER element from the front of b, with a definite
// length in its minimal form, and returns it and what follows.
func readElement(b []byte) (element, []byte, error) {
	var e element
	if len(b) < 2 {
		return e, nil, errTruncated
	}
	e.id = b[0]
	e.tag = uint32(b[0] & 0x1f)
	i := 1
	if e.tag == 0x1f {
		e.highTag = true
		e.tag = 0
		for n := 0; ; n++ {
			if i >= len(b) {
				return e, nil, errTruncated
			}
			if n == 4 {
				return e, nil, errors.New("DER tag number too large")
			}
			c := b[i]
			i++
			if n == 0 && c == 0x80 {
				return e, nil, errors.New("DER tag number not minimally encoded")
			}
			e.tag = e.tag<<7 | uint32(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
		if e.tag < 0x1f {
			return e, nil, errors.New("DER tag number not minimally encoded")
		}
	}
	if i >= len(b) {
		return e, nil, errTruncated
	}
	l := b[i]
	i++
	var length uint64
	switch {
	case l < 0x80:
		length = uint64(l)
	case l == 0x80:
		return e, nil, errors.New("indefinite length (not DER)")
	default:
		n := int(l & 0x7f)
		if n > 4 {
			return e, nil, errors.New("DER length too large")
		}
		if len(b)-i < n {
			return e, nil, errTruncated
		}
		if b[i] == 0 {
			return e, nil, errors.New("DER length not minimally encoded")
		}
		for j := 0; j < n; j++ {
			length = length<<8 | uint64(b[i+j])
		}
		i += n
		if length < 0x80 {
			return e, nil, errors.New("DER length not minimally encoded")
		}
	}
	if length > uint64(len(b)-i) {
		return e, nil, errTruncated
	}
	end := i + int(length)
	e.content = b[i:end]
	e.full = b[:end]
	return e, b[end:], nil
}

// expect reads one element that must have identifier octet id (low tag
// form) and returns its content and what follows.
func expect(b []byte, id byte) (content, rest []byte, err error) {
	e, rest, err := readElement(b)
	if err != nil {
		return nil, nil, err
	}
	if e.highTag || e.id != id {
		return nil, nil, fmt.Errorf("got identifier octet 0x%02x, want 0x%02x", e.id, id)
	}
	return e.content, rest, nil
}

// appendTLV appends a DER element with identifier octet id.
func appendTLV(dst []byte, id byte, content []byte) []byte {
	dst = append(dst, id)
	n := len(content)
	switch {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n <= 0xff:
		dst = append(dst, 0x81, byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	case n <= 0xffffff:
		dst = append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, content...)
}

// int32Bytes returns the minimal two's-complement contents of an INTEGER.
func int32Bytes(v int32) []byte {
	b := []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	for len(b) > 1 && (b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 != 0) {
		b = b[1:]
	}
	return b
}

// parseInt32 parses the minimal contents of an INTEGER that fits in int32.
func parseInt32(b []byte) (int32, error) {
	if len(b) == 0 {
		return 0, errors.New("empty INTEGER")
	}
	if len(b) > 4 {
		return 0, errors.New("INTEGER does not fit in 32 bits")
	}
	if len(b) > 1 && (b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 != 0) {
		return 0, errors.New("INTEGER not minimally encoded")
	}
	v := int32(int8(b[0]))
	for _, c := range b[1:] {
		v = v<<8 | int32(c)
	}
	return v, nil
}

// wellKnownOIDs are the otherName type IDs the CA writes into every
// certificate, encoded once (with no spare capacity, so appending to one
// copies it).
var wellKnownOIDs = func() (m []struct {
	oid asn1.ObjectIdentifier
	der []byte
}) {
	for _, oid := range []asn1.ObjectIdentifier{OIDUPN, OIDPKINITSAN, OIDSIDOtherName} {
		if der, err := asn1.Marshal(oid); err == nil {
			m = append(m, struct {
				oid asn1.ObjectIdentifier
				der []byte
			}{cloneOID(oid), slices.Clip(der)})
		}
	}
	return m
}()

func marshalOID(oid asn1.ObjectIdentifier) ([]byte, error) {
	for _, k := range wellKnownOIDs {
		if k.oid.Equal(oid) {
			return k.der, nil
		}
	}
	for _, arc := range oid {
		if arc < 0 {
			return nil, fmt.Errorf("invalid OBJECT IDENTIFIER %v: negative arc", oid)
		}
	}
	b, err := asn1.Marshal(oid)
	if err != nil {
		return nil, fmt.Errorf("invalid OBJECT IDENTIFIER %v: %w", oid, err)
	}
	// encoding/asn1 writes arcs it cannot read back (above 2^31-1): write
	// only what reads back the same.
	var back asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(b, &back); err != nil || len(rest) > 0 || !back.Equal(oid) {
		return nil, fmt.Errorf("OBJECT IDENTIFIER %v out of range", oid)
	}
	return b, nil
}

func cloneOID(oid asn1.ObjectIdentifier) asn1.ObjectIdentifier {
	return append(asn1.ObjectIdentifier(nil), oid...)
}

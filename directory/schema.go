package directory

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The built-in schema: a small set of attribute types and object classes
// with the names Active Directory uses for the things the station needs,
// plus the standard LDAP ones tools expect (RFC 4512, 4517, 4519, 2798).
// Differences from the RFCs, all as in Active Directory: person needs only
// cn (sn is optional), inetOrgPerson derives from user, and memberOf and
// objectGUID are allowed on every entry.

// matchKind selects how values are compared and normalized.
type matchKind uint8

const (
	matchNone       matchKind = iota // no equality rule: assertions are Undefined
	matchCaseIgnore                  // caseIgnoreMatch / caseIgnoreIA5Match
	matchCaseExact                   // caseExactMatch / caseExactIA5Match
	matchOctet                       // octetStringMatch
	matchInteger                     // integerMatch
	matchDN                          // distinguishedNameMatch
	matchOID                         // objectIdentifierMatch
	matchTime                        // generalizedTimeMatch
	matchBoolean                     // booleanMatch
)

// syntaxKind is an attribute's value syntax.
type syntaxKind uint8

const (
	synDirectoryString syntaxKind = iota
	synIA5String
	synOID
	synDN
	synOctetString
	synCertificate
	synInteger
	synGeneralizedTime
	synBoolean
	synSID
	synGUID
	synTelephone
)

var syntaxInfo = map[syntaxKind]struct{ oid, desc string }{
	synDirectoryString: {"1.3.6.1.4.1.1466.115.121.1.15", "Directory String"},
	synIA5String:       {"1.3.6.1.4.1.1466.115.121.1.26", "IA5 String"},
	synOID:             {"1.3.6.1.4.1.1466.115.121.1.38", "OID"},
	synDN:              {"1.3.6.1.4.1.1466.115.121.1.12", "Distinguished Name"},
	synOctetString:     {"1.3.6.1.4.1.1466.115.121.1.40", "Octet String"},
	synCertificate:     {"1.3.6.1.4.1.1466.115.121.1.8", "Certificate"},
	synInteger:         {"1.3.6.1.4.1.1466.115.121.1.27", "Integer"},
	synGeneralizedTime: {"1.3.6.1.4.1.1466.115.121.1.24", "Generalized Time"},
	synBoolean:         {"1.3.6.1.4.1.1466.115.121.1.7", "Boolean"},
	synTelephone:       {"1.3.6.1.4.1.1466.115.121.1.50", "Telephone Number"},
	// AD keeps SIDs and GUIDs as octet strings; the checks are ours.
	synSID:  {"1.3.6.1.4.1.1466.115.121.1.40", "Octet String"},
	synGUID: {"1.3.6.1.4.1.1466.115.121.1.40", "Octet String"},
}

// AttributeType describes one attribute of the built-in schema.
type AttributeType struct {
	OID   string
	Names []string // Names[0] is the canonical name
	// Stored attributes are kept in entries; the others are computed
	// (entryDN, hasSubordinates, the root DSE's and subschema's).
	syntax      syntaxKind
	equality    matchKind
	ordering    bool // values have an order (ordering rule)
	substr      bool // substring matching applies
	SingleValue bool
	// NoUserModification attributes are maintained by the directory.
	NoUserModification bool
	// Operational attributes are returned only when asked for by name or "+".
	Operational bool
	// Binary attributes travel with the ;binary option (RFC 4522).
	Binary bool
	// Public attributes may be read by anonymous clients.
	Public bool
	// Secret attributes are never returned and never match a filter.
	Secret bool
	// Indexed attributes have an equality index (which also answers
	// presence and initial-substring assertions).
	Indexed bool
	// Unique attributes may not have the same value on two entries.
	Unique  bool
	virtual bool
	maxLen  int
}

// Name is the canonical name.
func (a *AttributeType) Name() string { return a.Names[0] }

// ObjectClass describes one object class of the built-in schema.
type ObjectClass struct {
	OID   string
	Names []string
	Sup   string
	Kind  string // "ABSTRACT", "STRUCTURAL" or "AUXILIARY"
	Must  []string
	May   []string
	// virtual classes describe computed entries and cannot be stored.
	virtual bool
}

// Name is the canonical name.
func (c *ObjectClass) Name() string { return c.Names[0] }

const (
	ub         = 1024 // upper bound for ordinary string values
	ubCert     = 64 << 10
	ubPassword = 512
)

var attributeTypes = []*AttributeType{
	{OID: "2.5.4.0", Names: []string{"objectClass"}, syntax: synOID, equality: matchOID, Public: true, Indexed: true, maxLen: 128},
	{OID: "2.5.4.3", Names: []string{"cn", "commonName"}, syntax: synDirectoryString, equality: matchCaseIgnore, ordering: true, substr: true, Public: true, Indexed: true, maxLen: 256},
	{OID: "2.5.4.4", Names: []string{"sn", "surname"}, syntax: synDirectoryString, equality: matchCaseIgnore, ordering: true, substr: true, Public: true, Indexed: true, maxLen: 256},
	{OID: "2.5.4.42", Names: []string{"givenName", "gn"}, syntax: synDirectoryString, equality: matchCaseIgnore, ordering: true, substr: true, Public: true, Indexed: true, maxLen: 256},
	{OID: "2.16.840.1.113730.3.1.241", Names: []string{"displayName"}, syntax: synDirectoryString, equality: matchCaseIgnore, ordering: true, substr: true, SingleValue: true, Public: true, Indexed: true, maxLen: 256},
	{OID: "0.9.2342.19200300.100.1.1", Names: []string{"uid", "userid"}, syntax: synDirectoryString, equality: matchCaseIgnore, substr: true, Public: true, Indexed: true, maxLen: 256},
	{OID: "0.9.2342.19200300.100.1.3", Names: []string{"mail", "rfc822Mailbox"}, syntax: synIA5String, equality: matchCaseIgnore, substr: true, Public: true, Indexed: true, maxLen: 256},
	{OID: "1.2.840.113556.1.4.656", Names: []string{"userPrincipalName"}, syntax: synDirectoryString, equality: matchCaseIgnore, substr: true, SingleValue: true, Public: true, Indexed: true, Unique: true, maxLen: 1024},
	{OID: "1.2.840.113556.1.4.221", Names: []string{"sAMAccountName"}, syntax: synDirectoryString, equality: matchCaseIgnore, substr: true, SingleValue: true, Public: true, Indexed: true, Unique: true, maxLen: 256},
	{OID: "1.2.840.113556.1.4.146", Names: []string{"objectSid"}, syntax: synSID, equality: matchOctet, SingleValue: true, NoUserModification: true, Indexed: true},
	{OID: "1.2.840.113556.1.4.2", Names: []string{"objectGUID"}, syntax: synGUID, equality: matchOctet, SingleValue: true, NoUserModification: true, Public: true},
	{OID: "2.5.4.36", Names: []string{"userCertificate"}, syntax: synCertificate, equality: matchOctet, Binary: true, Public: true, maxLen: ubCert},
	{OID: "1.2.840.113556.1.4.867", Names: []string{"altSecurityIdentities"}, syntax: synDirectoryString, equality: matchCaseIgnore, substr: true, Indexed: true},
	{OID: "1.2.840.113556.1.4.771", Names: []string{"servicePrincipalName"}, syntax: synDirectoryString, equality: matchCaseIgnore, substr: true, Indexed: true},
	{OID: "1.2.840.113556.1.4.8", Names: []string{"userAccountControl"}, syntax: synInteger, equality: matchInteger, ordering: true, SingleValue: true},
	{OID: "2.5.4.31", Names: []string{"member"}, syntax: synDN, equality: matchDN, Public: true, Indexed: true},
	{OID: "1.2.840.113556.1.2.102", Names: []string{"memberOf"}, syntax: synDN, equality: matchDN, NoUserModification: true, Public: true, Indexed: true},
	{OID: "2.5.4.35", Names: []string{"userPassword"}, syntax: synOctetString, equality: matchNone, Secret: true, maxLen: ubPassword},
	// A service account's Kerberos long-term keys, sealed by the KDC under
	// its master key (kdc.Store.SealKeys): like MIT's krbPrincipalKey, but
	// one opaque blob. Set only through the typed API (SetServiceKeys),
	// never returned or matched over LDAP, never exported to LDIF.
	{OID: KerberosKeysOID, Names: []string{"scstationKerberosKeys"}, syntax: synOctetString, equality: matchNone, SingleValue: true, NoUserModification: true, Secret: true, maxLen: 16 << 10},
	{OID: "2.5.4.13", Names: []string{"description"}, syntax: synDirectoryString, equality: matchCaseIgnore, substr: true, Public: true},
	{OID: "2.5.4.12", Names: []string{"title"}, syntax: synDirectoryString, equality: matchCaseIgnore, substr: true, Public: true, maxLen: 256},
	{OID: "2.5.4.20", Names: []string{"telephoneNumber"}, syntax: synTelephone, equality: matchCaseIgnore, substr: true, Public: true, maxLen: 64},
	{OID: "2.5.4.34", Names: []string{"seeAlso"}, syntax: synDN, equality: matchDN, Public: true},
	{OID: "2.5.4.10", Names: []string{"o", "organizationName"}, syntax: synDirectoryString, equality: matchCaseIgnore, substr: true, Public: true, maxLen: 256},
	{OID: "2.5.4.11", Names: []string{"ou", "organizationalUnitName"}, syntax: synDirectoryString, equality: matchCaseIgnore, substr: true, Public: true, maxLen: 256},
	{OID: "0.9.2342.19200300.100.1.25", Names: []string{"dc", "domainComponent"}, syntax: synIA5String, equality: matchCaseIgnore, substr: true, SingleValue: true, Public: true, maxLen: 63},

	// Operational attributes kept in entries.
	{OID: "2.5.18.1", Names: []string{"createTimestamp"}, syntax: synGeneralizedTime, equality: matchTime, ordering: true, SingleValue: true, NoUserModification: true, Operational: true, Public: true},
	{OID: "2.5.18.2", Names: []string{"modifyTimestamp"}, syntax: synGeneralizedTime, equality: matchTime, ordering: true, SingleValue: true, NoUserModification: true, Operational: true, Public: true},
	{OID: "2.5.18.3", Names: []string{"creatorsName"}, syntax: synDN, equality: matchDN, SingleValue: true, NoUserModification: true, Operational: true, Public: true},
	{OID: "2.5.18.4", Names: []string{"modifiersName"}, syntax: synDN, equality: matchDN, SingleValue: true, NoUserModification: true, Operational: true, Public: true},

	// Computed operational attributes.
	{OID: "1.3.6.1.1.20", Names: []string{"entryDN"}, syntax: synDN, equality: matchDN, SingleValue: true, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "2.5.18.10", Names: []string{"subschemaSubentry"}, syntax: synDN, equality: matchDN, SingleValue: true, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "2.5.18.9", Names: []string{"hasSubordinates"}, syntax: synBoolean, equality: matchBoolean, SingleValue: true, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "2.5.21.9", Names: []string{"structuralObjectClass"}, syntax: synOID, equality: matchOID, SingleValue: true, NoUserModification: true, Operational: true, Public: true, virtual: true},

	// The root DSE (RFC 4512 §5.1).
	{OID: "1.3.6.1.4.1.1466.101.120.5", Names: []string{"namingContexts"}, syntax: synDN, equality: matchDN, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "1.3.6.1.4.1.1466.101.120.13", Names: []string{"supportedControl"}, syntax: synOID, equality: matchOID, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "1.3.6.1.4.1.1466.101.120.7", Names: []string{"supportedExtension"}, syntax: synOID, equality: matchOID, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "1.3.6.1.4.1.4203.1.3.5", Names: []string{"supportedFeatures"}, syntax: synOID, equality: matchOID, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "1.3.6.1.4.1.1466.101.120.15", Names: []string{"supportedLDAPVersion"}, syntax: synInteger, equality: matchInteger, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "1.3.6.1.4.1.1466.101.120.14", Names: []string{"supportedSASLMechanisms"}, syntax: synDirectoryString, equality: matchCaseIgnore, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "1.3.6.1.1.4", Names: []string{"vendorName"}, syntax: synDirectoryString, equality: matchCaseExact, SingleValue: true, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "1.3.6.1.1.5", Names: []string{"vendorVersion"}, syntax: synDirectoryString, equality: matchCaseExact, SingleValue: true, NoUserModification: true, Operational: true, Public: true, virtual: true},

	// The subschema entry (RFC 4512 §4.2).
	{OID: "2.5.21.5", Names: []string{"attributeTypes"}, syntax: synDirectoryString, equality: matchOID, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "2.5.21.6", Names: []string{"objectClasses"}, syntax: synDirectoryString, equality: matchOID, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "2.5.21.4", Names: []string{"matchingRules"}, syntax: synDirectoryString, equality: matchOID, NoUserModification: true, Operational: true, Public: true, virtual: true},
	{OID: "1.3.6.1.4.1.1466.101.120.16", Names: []string{"ldapSyntaxes"}, syntax: synDirectoryString, equality: matchOID, NoUserModification: true, Operational: true, Public: true, virtual: true},
}

var objectClasses = []*ObjectClass{
	{OID: "2.5.6.0", Names: []string{"top"}, Kind: "ABSTRACT", Must: []string{"objectClass"}, May: []string{"objectGUID", "memberOf", "description"}},
	{OID: "0.9.2342.19200300.100.4.13", Names: []string{"domain"}, Sup: "top", Kind: "STRUCTURAL", Must: []string{"dc"}, May: []string{"o", "objectSid", "seeAlso"}},
	{OID: "1.3.6.1.4.1.1466.344", Names: []string{"dcObject"}, Sup: "top", Kind: "AUXILIARY", Must: []string{"dc"}},
	{OID: "2.5.6.4", Names: []string{"organization"}, Sup: "top", Kind: "STRUCTURAL", Must: []string{"o"}, May: []string{"seeAlso", "telephoneNumber"}},
	{OID: "2.5.6.5", Names: []string{"organizationalUnit"}, Sup: "top", Kind: "STRUCTURAL", Must: []string{"ou"}, May: []string{"seeAlso", "telephoneNumber"}},
	{OID: "1.2.840.113556.1.3.23", Names: []string{"container"}, Sup: "top", Kind: "STRUCTURAL", Must: []string{"cn"}},
	{OID: "2.5.6.6", Names: []string{"person"}, Sup: "top", Kind: "STRUCTURAL", Must: []string{"cn"}, May: []string{"sn", "userPassword", "telephoneNumber", "seeAlso"}},
	{OID: "2.5.6.7", Names: []string{"organizationalPerson"}, Sup: "person", Kind: "STRUCTURAL", May: []string{"title", "ou", "o", "givenName"}},
	{OID: "1.2.840.113556.1.5.9", Names: []string{"user"}, Sup: "organizationalPerson", Kind: "STRUCTURAL",
		May: []string{"userPrincipalName", "sAMAccountName", "objectSid", "displayName", "mail", "uid", "userCertificate", "altSecurityIdentities", "servicePrincipalName", "userAccountControl", "scstationKerberosKeys"}},
	{OID: "2.16.840.1.113730.3.2.2", Names: []string{"inetOrgPerson"}, Sup: "user", Kind: "STRUCTURAL"},
	{OID: "1.2.840.113556.1.5.8", Names: []string{"group"}, Sup: "top", Kind: "STRUCTURAL", Must: []string{"cn"},
		May: []string{"member", "sAMAccountName", "objectSid", "mail", "displayName", "seeAlso", "o", "ou"}},
	// OpenLDAP's way to give inetOrgPerson entries a UPN (OpenLDAPSchema).
	{OID: UPNPrincipalOID, Names: []string{"upnPrincipal"}, Sup: "top", Kind: "AUXILIARY", May: []string{"userPrincipalName"}},
	{OID: "2.5.6.9", Names: []string{"groupOfNames"}, Sup: "top", Kind: "STRUCTURAL", Must: []string{"cn", "member"}, May: []string{"o", "ou", "seeAlso"}},
	{OID: "2.5.17.0", Names: []string{"subentry"}, Sup: "top", Kind: "STRUCTURAL", Must: []string{"cn"}, virtual: true},
	{OID: "2.5.20.1", Names: []string{"subschema"}, Kind: "AUXILIARY", May: []string{"attributeTypes", "objectClasses", "matchingRules", "ldapSyntaxes"}, virtual: true},
}

var matchingRuleInfo = []struct{ oid, name, syntax string }{
	{"2.5.13.0", "objectIdentifierMatch", "1.3.6.1.4.1.1466.115.121.1.38"},
	{"2.5.13.1", "distinguishedNameMatch", "1.3.6.1.4.1.1466.115.121.1.12"},
	{"2.5.13.2", "caseIgnoreMatch", "1.3.6.1.4.1.1466.115.121.1.15"},
	{"2.5.13.3", "caseIgnoreOrderingMatch", "1.3.6.1.4.1.1466.115.121.1.15"},
	{"2.5.13.4", "caseIgnoreSubstringsMatch", "1.3.6.1.4.1.1466.115.121.1.58"},
	{"2.5.13.5", "caseExactMatch", "1.3.6.1.4.1.1466.115.121.1.15"},
	{"2.5.13.13", "booleanMatch", "1.3.6.1.4.1.1466.115.121.1.7"},
	{"2.5.13.14", "integerMatch", "1.3.6.1.4.1.1466.115.121.1.27"},
	{"2.5.13.15", "integerOrderingMatch", "1.3.6.1.4.1.1466.115.121.1.27"},
	{"2.5.13.17", "octetStringMatch", "1.3.6.1.4.1.1466.115.121.1.40"},
	{"2.5.13.27", "generalizedTimeMatch", "1.3.6.1.4.1.1466.115.121.1.24"},
	{"2.5.13.28", "generalizedTimeOrderingMatch", "1.3.6.1.4.1.1466.115.121.1.24"},
	{"1.2.840.113556.1.4.803", "bitwiseAnd", "1.3.6.1.4.1.1466.115.121.1.27"},
	{"1.2.840.113556.1.4.804", "bitwiseOr", "1.3.6.1.4.1.1466.115.121.1.27"},
	{"1.2.840.113556.1.4.1941", "inChain", "1.3.6.1.4.1.1466.115.121.1.12"},
}

var (
	attrByName  = map[string]*AttributeType{} // lower-case names and OIDs
	classByName = map[string]*ObjectClass{}
)

func init() {
	for _, a := range attributeTypes {
		if a.maxLen == 0 {
			a.maxLen = ub
		}
		attrByName[a.OID] = a
		for _, n := range a.Names {
			attrByName[strings.ToLower(n)] = a
		}
	}
	for _, c := range objectClasses {
		classByName[c.OID] = c
		for _, n := range c.Names {
			classByName[strings.ToLower(n)] = c
		}
	}
	// The schema must be closed: every name a class uses is defined.
	for _, c := range objectClasses {
		for _, n := range append(append([]string{}, c.Must...), c.May...) {
			if attrByName[strings.ToLower(n)] == nil {
				panic("directory: schema: class " + c.Name() + " uses undefined attribute " + n)
			}
		}
		if c.Sup != "" && classByName[strings.ToLower(c.Sup)] == nil {
			panic("directory: schema: class " + c.Name() + " has undefined superclass " + c.Sup)
		}
	}
}

// LookupAttribute finds an attribute type by name or OID, case-insensitively.
func LookupAttribute(name string) *AttributeType {
	return attrByName[strings.ToLower(name)]
}

// LookupObjectClass finds an object class by name or OID.
func LookupObjectClass(name string) *ObjectClass {
	return classByName[strings.ToLower(name)]
}

// attrDesc is a parsed attribute description: type plus options (RFC 4512
// §2.5). The only option the directory knows is "binary".
type attrDesc struct {
	typ    *AttributeType
	binary bool
	// unknownOpt is set when an option other than ;binary was given.
	unknownOpt bool
}

func parseAttrDesc(s string) (attrDesc, bool) {
	name, opts, _ := strings.Cut(s, ";")
	t := LookupAttribute(name)
	if t == nil {
		return attrDesc{}, false
	}
	d := attrDesc{typ: t}
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ";")
		if strings.EqualFold(o, "binary") && t.Binary {
			d.binary = true
		} else {
			d.unknownOpt = true
		}
	}
	return d, true
}

// wireName is how an attribute is named in results: certificates always
// carry ;binary, as slapd does.
func (a *AttributeType) wireName() string {
	if a.Binary {
		return a.Names[0] + ";binary"
	}
	return a.Names[0]
}

// ---- syntax checks -------------------------------------------------------

// validate checks one value against the attribute's syntax and bounds.
func (a *AttributeType) validate(v []byte) error {
	if len(v) > a.maxLen {
		return fmt.Errorf("a value of %s is longer than %d bytes", a.Name(), a.maxLen)
	}
	switch a.syntax {
	case synDirectoryString, synTelephone:
		if len(v) == 0 {
			return fmt.Errorf("%s: empty value", a.Name())
		}
		if !utf8.Valid(v) || bytes.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("%s: not a UTF-8 string", a.Name())
		}
		if len(bytes.TrimSpace(v)) == 0 {
			return fmt.Errorf("%s: a value made only of spaces", a.Name())
		}
		if a.syntax == synTelephone && strings.ContainsAny(string(v), "\r\n") {
			return fmt.Errorf("%s: not a telephone number", a.Name())
		}
	case synIA5String:
		if len(v) == 0 {
			return fmt.Errorf("%s: empty value", a.Name())
		}
		for _, c := range v {
			if c == 0 || c >= 0x80 {
				return fmt.Errorf("%s: not an IA5 (ASCII) string", a.Name())
			}
		}
	case synOID:
		if !isDescr(string(v)) && !isNumericOID(string(v)) {
			return fmt.Errorf("%s: %q is not an object identifier", a.Name(), v)
		}
	case synDN:
		if _, err := ParseDN(string(v)); err != nil {
			return fmt.Errorf("%s: %v", a.Name(), err)
		}
	case synOctetString:
	case synCertificate:
		if !isCertificateDER(v) {
			return fmt.Errorf("%s: not a DER certificate", a.Name())
		}
	case synInteger:
		if _, ok := parseInteger(v); !ok {
			return fmt.Errorf("%s: %q is not an integer", a.Name(), v)
		}
	case synGeneralizedTime:
		if _, err := parseGeneralizedTime(string(v)); err != nil {
			return fmt.Errorf("%s: %v", a.Name(), err)
		}
	case synBoolean:
		if string(v) != "TRUE" && string(v) != "FALSE" {
			return fmt.Errorf("%s: want TRUE or FALSE", a.Name())
		}
	case synSID:
		if _, err := SIDString(v); err != nil {
			return fmt.Errorf("%s: %v", a.Name(), err)
		}
	case synGUID:
		if len(v) != 16 {
			return fmt.Errorf("%s: a GUID has 16 bytes", a.Name())
		}
	}
	return nil
}

func isDescr(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !('0' <= c && c <= '9') && c != '-' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isNumericOID(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 1 && p[0] == '0' {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// isCertificateDER checks the outer structure of an X.509 certificate:
// SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE,
// signature BIT STRING } and nothing after it.
func isCertificateDER(v []byte) bool {
	in := cryptobyte.String(v)
	var cert, tbs, alg cryptobyte.String
	var sig []byte
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !in.Empty() {
		return false
	}
	if !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) || !cert.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!cert.ReadASN1Bytes(&sig, cbasn1.BIT_STRING) || !cert.Empty() {
		return false
	}
	return len(tbs) > 0 && len(alg) > 0
}

func parseInteger(v []byte) (*big.Int, bool) {
	s := string(v)
	if s == "" || len(s) > 64 {
		return nil, false
	}
	if s == "0" {
		return new(big.Int), true
	}
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || digits[0] == '0' {
		return nil, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return nil, false
		}
	}
	n, ok := new(big.Int).SetString(s, 10)
	return n, ok
}

// parseGeneralizedTime reads the GeneralizedTime forms LDAP uses
// (YYYYMMDDHH[MM[SS[.f]]](Z|±hhmm)).
func parseGeneralizedTime(s string) (time.Time, error) {
	for _, layout := range []string{"20060102150405Z0700", "20060102150405.999999999Z0700", "200601021504Z0700", "2006010215Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a GeneralizedTime", s)
}

func formatGeneralizedTime(t time.Time) string { return t.UTC().Format("20060102150405Z") }

// ---- normalization -------------------------------------------------------

// normalize returns the form values are compared in for equality, or false
// when the value cannot be compared (wrong syntax for an assertion, or no
// equality rule).
func (a *AttributeType) normalize(v []byte) ([]byte, bool) {
	return normalizeKind(a.equality, a.syntax, v)
}

func normalizeKind(k matchKind, syn syntaxKind, v []byte) ([]byte, bool) {
	switch k {
	case matchCaseIgnore:
		if !utf8.Valid(v) {
			return nil, false
		}
		return []byte(strings.ToLower(collapseSpaces(string(v)))), true
	case matchCaseExact:
		if !utf8.Valid(v) {
			return nil, false
		}
		return []byte(collapseSpaces(string(v))), true
	case matchOctet:
		if syn == synSID {
			// A SID may be asserted in its text form, as AD allows.
			if bytes.HasPrefix(v, []byte("S-")) || bytes.HasPrefix(v, []byte("s-")) {
				b, err := ParseSID(string(v))
				if err != nil {
					return nil, false
				}
				return b, true
			}
		}
		return v, true
	case matchInteger:
		n, ok := parseInteger(v)
		if !ok {
			return nil, false
		}
		return []byte(n.String()), true
	case matchDN:
		dn, err := ParseDN(string(v))
		if err != nil {
			return nil, false
		}
		return []byte(dn.Norm()), true
	case matchOID:
		s := strings.ToLower(strings.TrimSpace(string(v)))
		if c := classByName[s]; c != nil {
			return []byte(strings.ToLower(c.Name())), true
		}
		if t := attrByName[s]; t != nil {
			return []byte(strings.ToLower(t.Name())), true
		}
		if isDescr(s) || isNumericOID(s) {
			return []byte(s), true
		}
		return nil, false
	case matchTime:
		t, err := parseGeneralizedTime(string(v))
		if err != nil {
			return nil, false
		}
		return []byte(t.Format("20060102150405.000000000Z")), true
	case matchBoolean:
		if s := string(v); s == "TRUE" || s == "FALSE" {
			return v, true
		}
		return nil, false
	}
	return nil, false
}

// collapseSpaces drops leading and trailing spaces and folds runs of spaces
// into one (RFC 4518 insignificant space handling).
func collapseSpaces(s string) string {
	if !strings.Contains(s, "  ") && !strings.HasPrefix(s, " ") && !strings.HasSuffix(s, " ") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// substrNormalize prepares a value or substring assertion part for
// substring matching: like equality, without dropping edge spaces from the
// parts.
func (a *AttributeType) substrNormalize(v []byte) (string, bool) {
	if !utf8.Valid(v) {
		return "", false
	}
	s := strings.Join(strings.Fields(string(v)), " ")
	if a.equality == matchCaseIgnore {
		s = strings.ToLower(s)
	}
	return s, true
}

// compareOrdered compares two normalized values for ordering rules.
func (a *AttributeType) compareOrdered(x, y []byte) int {
	if a.equality == matchInteger {
		nx, _ := new(big.Int).SetString(string(x), 10)
		ny, _ := new(big.Int).SetString(string(y), 10)
		if nx == nil || ny == nil {
			return bytes.Compare(x, y)
		}
		return nx.Cmp(ny)
	}
	return bytes.Compare(x, y)
}

// ---- SIDs and GUIDs ------------------------------------------------------

// ParseSID converts S-1-5-21-… to the binary form (revision, sub-authority
// count, 6-byte big-endian authority, little-endian 32-bit sub-authorities).
func ParseSID(s string) ([]byte, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || !strings.EqualFold(parts[0], "S") || parts[1] != "1" || len(parts)-3 > 15 {
		return nil, fmt.Errorf("%q is not a SID", s)
	}
	auth, err := strconv.ParseUint(parts[2], 10, 48)
	if err != nil {
		return nil, fmt.Errorf("%q is not a SID", s)
	}
	out := []byte{1, byte(len(parts) - 3), 0, 0, 0, 0, 0, 0}
	for i := 0; i < 6; i++ {
		out[2+i] = byte(auth >> (8 * (5 - i)))
	}
	for _, p := range parts[3:] {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a SID", s)
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(n))
	}
	return out, nil
}

// SIDString converts a binary SID to its text form.
func SIDString(b []byte) (string, error) {
	if len(b) < 8 || b[0] != 1 || int(b[1]) > 15 || len(b) != 8+4*int(b[1]) {
		return "", fmt.Errorf("not a binary SID")
	}
	var auth uint64
	for _, c := range b[2:8] {
		auth = auth<<8 | uint64(c)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "S-1-%d", auth)
	for i := 0; i < int(b[1]); i++ {
		fmt.Fprintf(&sb, "-%d", binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	return sb.String(), nil
}

// GUIDString formats objectGUID bytes the way Windows does: the first three
// fields are little-endian.
func GUIDString(b []byte) string {
	if len(b) != 16 {
		return fmt.Sprintf("%x", b)
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]), binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// ---- object class checks -------------------------------------------------

// expandClasses resolves objectClass values to classes and adds every
// superclass, as Active Directory stores them. It returns the classes in
// schema order (top first) and the most specific structural class.
func expandClasses(values [][]byte) ([]*ObjectClass, *ObjectClass, error) {
	set := map[*ObjectClass]bool{}
	for _, v := range values {
		c := LookupObjectClass(strings.TrimSpace(string(v)))
		if c == nil {
			return nil, nil, &Error{Code: ResultObjectClassViolation, Message: fmt.Sprintf("unknown object class %q", v)}
		}
		if c.virtual {
			return nil, nil, &Error{Code: ResultObjectClassViolation, Message: fmt.Sprintf("object class %s cannot be stored", c.Name())}
		}
		for ; c != nil; c = superclass(c) {
			set[c] = true
		}
	}
	var out []*ObjectClass
	var structural []*ObjectClass
	for _, c := range objectClasses {
		if set[c] {
			out = append(out, c)
			if c.Kind == "STRUCTURAL" {
				structural = append(structural, c)
			}
		}
	}
	if len(structural) == 0 {
		return nil, nil, &Error{Code: ResultObjectClassViolation, Message: "no structural object class"}
	}
	// All structural classes must form one chain: the most specific one
	// has every other as an ancestor.
	var most *ObjectClass
	for _, c := range structural {
		n := 0
		for _, d := range structural {
			if isAncestor(d, c) {
				n++
			}
		}
		if n == len(structural) {
			most = c
		}
	}
	if most == nil {
		names := make([]string, len(structural))
		for i, c := range structural {
			names[i] = c.Name()
		}
		return nil, nil, &Error{Code: ResultObjectClassViolation, Message: "structural object classes " + strings.Join(names, ", ") + " do not form one chain"}
	}
	return out, most, nil
}

func superclass(c *ObjectClass) *ObjectClass {
	if c.Sup == "" {
		return nil
	}
	return LookupObjectClass(c.Sup)
}

// isAncestor reports whether a is c or one of c's superclasses.
func isAncestor(a, c *ObjectClass) bool {
	for ; c != nil; c = superclass(c) {
		if c == a {
			return true
		}
	}
	return false
}

// checkClasses checks an entry's attributes against its object classes:
// every MUST is present and every user attribute is allowed by some class.
// It returns the expanded class list to store.
func checkClasses(e *Entry) ([][]byte, error) {
	oc := e.Get("objectClass")
	if oc == nil {
		return nil, &Error{Code: ResultObjectClassViolation, Message: "the entry has no objectClass"}
	}
	classes, _, err := expandClasses(oc.Values)
	if err != nil {
		return nil, err
	}
	allowed := map[*AttributeType]bool{}
	for _, c := range classes {
		for _, n := range c.Must {
			t := LookupAttribute(n)
			allowed[t] = true
			if e.Get(t.Name()) == nil {
				return nil, &Error{Code: ResultObjectClassViolation, Message: fmt.Sprintf("object class %s requires %s", c.Name(), t.Name())}
			}
		}
		for _, n := range c.May {
			allowed[LookupAttribute(n)] = true
		}
	}
	for _, a := range e.Attrs {
		if a.typ.Operational {
			continue
		}
		if !allowed[a.typ] {
			return nil, &Error{Code: ResultObjectClassViolation, Message: fmt.Sprintf("attribute %s is not allowed by the entry's object classes", a.typ.Name())}
		}
	}
	out := make([][]byte, len(classes))
	for i, c := range classes {
		out[i] = []byte(c.Name())
	}
	return out, nil
}

// ---- the subschema entry's values (RFC 4512 §4.1) ------------------------

func quoteNames(names []string) string {
	if len(names) == 1 {
		return "'" + names[0] + "'"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	return "( " + strings.Join(q, " ") + " )"
}

func oidList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return "( " + strings.Join(names, " $ ") + " )"
}

var equalityRuleName = map[matchKind]string{
	matchCaseIgnore: "caseIgnoreMatch", matchCaseExact: "caseExactMatch", matchOctet: "octetStringMatch",
	matchInteger: "integerMatch", matchDN: "distinguishedNameMatch", matchOID: "objectIdentifierMatch",
	matchTime: "generalizedTimeMatch", matchBoolean: "booleanMatch",
}

func (a *AttributeType) description() string {
	var b strings.Builder
	fmt.Fprintf(&b, "( %s NAME %s", a.OID, quoteNames(a.Names))
	if r := equalityRuleName[a.equality]; r != "" {
		fmt.Fprintf(&b, " EQUALITY %s", r)
	}
	if a.ordering {
		switch a.equality {
		case matchInteger:
			b.WriteString(" ORDERING integerOrderingMatch")
		case matchTime:
			b.WriteString(" ORDERING generalizedTimeOrderingMatch")
		default:
			b.WriteString(" ORDERING caseIgnoreOrderingMatch")
		}
	}
	if a.substr {
		b.WriteString(" SUBSTR caseIgnoreSubstringsMatch")
	}
	fmt.Fprintf(&b, " SYNTAX %s", syntaxInfo[a.syntax].oid)
	if a.SingleValue {
		b.WriteString(" SINGLE-VALUE")
	}
	if a.NoUserModification {
		b.WriteString(" NO-USER-MODIFICATION")
	}
	if a.Operational {
		b.WriteString(" USAGE directoryOperation")
	}
	b.WriteString(" )")
	return b.String()
}

func (c *ObjectClass) description() string {
	var b strings.Builder
	fmt.Fprintf(&b, "( %s NAME %s", c.OID, quoteNames(c.Names))
	if c.Sup != "" {
		fmt.Fprintf(&b, " SUP %s", c.Sup)
	}
	fmt.Fprintf(&b, " %s", c.Kind)
	if len(c.Must) > 0 {
		fmt.Fprintf(&b, " MUST %s", oidList(c.Must))
	}
	if len(c.May) > 0 {
		fmt.Fprintf(&b, " MAY %s", oidList(c.May))
	}
	b.WriteString(" )")
	return b.String()
}

func subschemaValues() map[string][][]byte {
	out := map[string][][]byte{}
	for _, a := range attributeTypes {
		out["attributeTypes"] = append(out["attributeTypes"], []byte(a.description()))
	}
	for _, c := range objectClasses {
		out["objectClasses"] = append(out["objectClasses"], []byte(c.description()))
	}
	for _, m := range matchingRuleInfo {
		out["matchingRules"] = append(out["matchingRules"], []byte(fmt.Sprintf("( %s NAME '%s' SYNTAX %s )", m.oid, m.name, m.syntax)))
	}
	seen := map[string]bool{}
	var syn []string
	for _, s := range syntaxInfo {
		if !seen[s.oid] {
			seen[s.oid] = true
			syn = append(syn, fmt.Sprintf("( %s DESC '%s' )", s.oid, s.desc))
		}
	}
	sort.Strings(syn)
	for _, s := range syn {
		out["ldapSyntaxes"] = append(out["ldapSyntaxes"], []byte(s))
	}
	return out
}

// SubschemaDN names the subschema entry (RFC 4512 §4.2).
const SubschemaDN = "cn=Subschema"

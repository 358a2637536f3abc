package directory

// UPNPrincipalOID is the OID of the upnPrincipal auxiliary class. It is
// under 1.3.6.1.4.1.32473, the enterprise number RFC 5612 sets aside for
// examples: a site with its own arc may use that instead, in both places.
const UPNPrincipalOID = "1.3.6.1.4.1.32473.1.2.1"

// KerberosKeysOID is the attribute type scstationKerberosKeys (sealed
// service keys), in the same arc.
const KerberosKeysOID = "1.3.6.1.4.1.32473.1.1.1"

// OpenLDAPSchema is a slapd.conf schema that lets OpenLDAP hold the
// station's users (ProfileOpenLDAP): userPrincipalName with Active
// Directory's OID and an equality rule (so it can be indexed; Debian's
// msuser.schema has none), and upnPrincipal, an auxiliary class that adds
// it to inetOrgPerson entries. The embedded directory knows the class too,
// so LDIF moves both ways.
const OpenLDAPSchema = `# scstation: userPrincipalName for inetOrgPerson entries
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( ` + UPNPrincipalOID + ` NAME 'upnPrincipal'
	DESC 'an entry with a userPrincipalName'
	SUP top AUXILIARY MAY ( userPrincipalName ) )
`

// Package directory is the station's directory: a store of entries in
// bbolt, modelled on OpenLDAP's back-mdb, and an LDAP v3 server over it.
//
// # Store
//
// Open creates or opens the store for a domain; the base DN follows it
// (example.test → dc=example,dc=test). A new store holds the base entry
// (objectClass domain, objectSid = the domain SID), ou=people for users
// (uid=NAME), ou=groups for groups (cn=NAME), and the group cn=admins,
// whose members may write over LDAP (objectSid RID 512, as Domain
// Admins). A store from the first, JSON layout is migrated on open,
// keeping SIDs, GUIDs and certificates.
//
// Buckets (see store.go): id2entry (entry ID → entry), dn2id (parent ID ‖
// normalized RDN → ID; one-level and subtree scopes walk it, never scan),
// idx/ATTR (one key per value and entry; equality, presence and initial
// substrings come from it) for objectClass, uid, cn, sn, givenName,
// displayName, mail, userPrincipalName, sAMAccountName, member, memberOf,
// objectSid, altSecurityIdentities and servicePrincipalName. A search
// takes candidates from the indexes (AND intersects, OR unites, anything
// unindexed falls back to the scope) and re-tests every candidate against
// the whole filter. Each write is one bbolt transaction: a refused change
// changes nothing.
//
// The schema (schema.go) is small and built in, with Active Directory's
// names: userPrincipalName (case-insensitive, single-valued, unique),
// sAMAccountName (unique), uid, mail, cn, sn, givenName, displayName,
// objectSid and objectGUID (assigned at creation, binary on the wire),
// userCertificate (;binary), altSecurityIdentities, servicePrincipalName,
// userAccountControl, member and memberOf (kept consistent both ways,
// through renames and deletes), and userPassword, stored as an argon2id
// hash ({ARGON2}, as OpenLDAP's pw-argon2 writes it; imported {SSHA512}
// and {SSHA256} values are accepted) and never returned to anyone.
// Unknown attributes, wrong syntax, object class violations and duplicate
// UPNs are refused with the LDAP result code a server would send (*Error).
//
// The typed API (users.go) is what the station uses: AddUser/CreateUser,
// User (by login name, UPN or DN), Users, FindUsers (search as you type),
// DeleteUser, AddCertificate, SetPassword, and groups (AddGroup, Group,
// Groups, DeleteGroup, AddMember, RemoveMember, IsAdmin). Names are
// looked up through the indexes as octet strings, or in filters built
// with Eq, Prefix, And and Or: never by pasting user input into filter
// syntax.
//
// # Server
//
// NewServer serves the store over LDAP v3 (RFC 4511) on go-asn1-ber and
// go-ldap's helpers: simple and anonymous bind (a name with an empty
// password is an unauthenticated bind and is refused), search with every
// filter type, scopes base/one/sub/children, attribute selection (*, +,
// 1.1, ;binary), size and time limits and the paged-results control
// (1.2.840.113556.1.4.319), compare, add, modify (including increment),
// delete, modify DN (subtrees too), abandon, unbind, and the extended
// operations StartTLS, WhoAmI and Password Modify (RFC 3062). LDAPS and
// StartTLS use the tls.Config given (the station's CA issues it). The
// root DSE and the subschema entry (cn=Subschema) describe the server.
// Access control is in ops.go.
//
// With Config.ClientCAs (the station CA), TLS handshakes ask for a client
// certificate (tls.VerifyClientCertIfGiven) and a SASL EXTERNAL bind over
// LDAPS or StartTLS authenticates as the user the certificate maps to
// (Store.CertificateUser: UPN SAN, id-pkinit-san, or a strong
// altSecurityIdentities mapping, as the KDC maps logon certificates; a
// SID extension must match), after Config.Revocation says it is not
// revoked. An authorization identity ("dn:…" or "u:…") must name that
// same user, else inappropriateAuthentication; EXTERNAL without TLS or
// without a certificate is inappropriateAuthentication too, and other
// SASL mechanisms are authMethodNotSupported.
//
// Limits (Limits) are hard: clients cannot raise them. A request must
// fit in MaxPDU bytes (1 MiB) and MaxElements BER elements, nest at most
// 48 deep (filters 32); connections, operations per connection, entries
// per search (1000 without paging; pages of at most 1000 with it, as in
// AD) and time per operation are bounded. A malformed request closes only
// its connection, after a notice of disconnection with protocolError.
//
// Importing this package lowers go-asn1-ber's process-wide
// ber.MaxPacketLengthBytes from 2 GiB to 1 MiB (in init, before any
// goroutine reads it): no BER length a peer sends can ask for more, in
// the server or in go-ldap clients in the same process.
//
// # One client API
//
// Directory (directory.go) is what the CA, the KDC and the station use:
// users by login name, UPN or DN, by mail, search as you type, listings,
// publishing and reading certificates, groups and (nested) membership.
// *Store implements it in-process; *Client (client.go) implements it over
// LDAP with go-ldap, against the embedded server, OpenLDAP or Active
// Directory. A ClientConfig names the URLs (tried in order; ldaps:// or
// StartTLS with a configurable CA pool), the bind DN (its password from
// an environment variable or a file), the base DN, and an AttributeMap:
// profiles ad (sAMAccountName, objectSid, memberOf), openldap
// (inetOrgPerson + uid, userPrincipalName through the upnPrincipal
// auxiliary class of OpenLDAPSchema, groupOfNames, groups searched rather
// than memberOf) and embedded. Filters are built from the checked
// attribute names and values escaped with ldap.EscapeFilter; listings use
// the paged-results control; referrals and continuation references are
// reported as *ReferralError (ErrReferral), never followed. Instead of a
// bind DN and password, a client certificate (ClientCert/ClientKey) binds
// with SASL EXTERNAL over ldaps:// or StartTLS.
//
// # LDIF
//
// Store.ImportLDIF and Store.ExportLDIF (ldifio.go) move the directory in
// and out as RFC 2849 LDIF (package directory/ldif reads and writes the
// format): imports commit in batches, keep objectSid/objectGUID, and take
// groups after their members; exports write parents before children and
// groups after their members, or, with the openldap profile, entries
// OpenLDAP's standard schema accepts.
//
// Package directory/ldaptest starts a server for tests, as httptest does,
// and a real OpenLDAP slapd (NewSlapd) for interoperability tests; package
// directory/ldapbench is the load generator behind scstation bench ldap.
package directory

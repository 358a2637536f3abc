// Package directory keeps the station's users and their published
// certificates.
//
// Today it is a small bbolt store of user entries (login name, UPN, mail,
// objectSid, objectGUID, userCertificate). The LDAP v3 server and the
// client for external directories build on it; the CA and the KDC reach it
// only through interfaces they define themselves.
package directory
